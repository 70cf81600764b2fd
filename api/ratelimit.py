"""Attempts limited per key and in all, in a sliding window (pure).

Failed sign-in attempts, per client address and in all (``api/signin_routes.py``): secrets here
are 256 bits, so guessing is hopeless anyway, and a failure writes nothing; past the limit a
failure is answered 429. Only failures count and a good secret is never refused, so a
neighbour's guesses (behind ``tailscale serve`` every client is 127.0.0.1) cannot lock the
person out.

Hook events, per session only (an agent flooding its hook must not use up another
session's room): every hook writes the session and an event, so an agent posting in a loop
would fill the database as fast as the API can write. A busy agent sends a few a second.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import trio

PER_CLIENT = 10
GLOBAL = 60
WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000
#: Hook events one session may send in :data:`HOOK_WINDOW_SECONDS`.
HOOKS_PER_SESSION = 200
HOOK_WINDOW_SECONDS = 10.0
#: A session's hook events past ``keep_hook_events`` are trimmed from the journal once in
#: this many it writes (and at its first after the API starts).
HOOK_TRIM_EVERY = 100


class Every:
    """True once in ``n`` calls for each key, the first call included (pure); at most
    ``keys`` keys remembered, the one called least recently forgotten first."""

    def __init__(self, n: int, *, keys: int = 4096) -> None:
        self.n = max(n, 1)
        self.keys = keys
        self._calls: dict[str, int] = {}

    def __call__(self, key: str) -> bool:
        count = self._calls.pop(key, 0)
        self._calls[key] = (count + 1) % self.n
        if len(self._calls) > self.keys:
            del self._calls[next(iter(self._calls))]
        return count == 0


class WindowLimiter:
    """At most ``per_client`` attempts per key and ``overall`` in all (None: no bound in
    all) in any ``window`` seconds."""

    def __init__(self, *, per_client: int, overall: int | None, window: float,
                 clock: Callable[[], float] = trio.current_time) -> None:
        self.per_client = per_client
        self.overall = overall
        self.window = window
        self.clock = clock
        self._clients: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    @classmethod
    def sign_in(cls) -> WindowLimiter:
        return cls(per_client=PER_CLIENT, overall=GLOBAL, window=WINDOW_SECONDS)

    @classmethod
    def hooks(cls) -> WindowLimiter:
        return cls(per_client=HOOKS_PER_SESSION, overall=None, window=HOOK_WINDOW_SECONDS)

    def _trim(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window:
            times.popleft()

    def allow(self, client: str) -> float | None:
        """None when this attempt may go ahead (and counts it); else seconds to wait."""
        now = self.clock()
        self._trim(self._all, now)
        times = self._clients.get(client)
        if times is not None:
            self._trim(times, now)
        if len(self._clients) > MAX_CLIENTS:  # bounded memory under a spray of addresses
            self._clients = {k: v for k, v in self._clients.items() if v}
        if self.overall is not None and len(self._all) >= self.overall:
            return self._all[0] + self.window - now
        if times is not None and len(times) >= self.per_client:
            return times[0] + self.window - now
        self._clients.setdefault(client, deque()).append(now)
        if self.overall is not None:
            self._all.append(now)
        return None
