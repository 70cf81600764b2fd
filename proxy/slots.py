"""The model calls a session under a budget has running at once (I/O shell: trio waits).

The budget is checked as a call starts and counted as it ends, so the calls running when
it runs out spend past it: :data:`MAX_IN_FLIGHT` at most, where a flood of parallel calls
each passed the check. A call past them waits for one to end, then is checked.
"""

from __future__ import annotations

from collections import Counter

import trio

from proxy.sides import hung_up

MAX_IN_FLIGHT = 8
SLOT_POLL_SECONDS = 0.5


class Slots:
    def __init__(self) -> None:
        self._flying: Counter[str] = Counter()
        self._queued: Counter[str] = Counter()
        self._freed = trio.Event()

    async def take(self, session_id: str, client: trio.abc.Stream, patience: float) -> str:
        """One of the session's :data:`MAX_IN_FLIGHT` slots: ``taken``, ``gone`` (the client
        hung up while it waited) or ``busy`` (none freed in ``patience``)."""
        self._queued[session_id] += 1
        try:
            with trio.move_on_after(patience):
                while self._flying[session_id] >= MAX_IN_FLIGHT:
                    with trio.move_on_after(SLOT_POLL_SECONDS):
                        await self._freed.wait()
                    if hung_up(client):
                        return "gone"
                self._flying[session_id] += 1
                return "taken"
            return "busy"
        finally:
            self._queued[session_id] -= 1
            if not self._queued[session_id]:
                del self._queued[session_id]

    def free(self, session_id: str) -> None:
        self._flying[session_id] -= 1
        if self._flying[session_id] <= 0:
            del self._flying[session_id]
        self._freed.set()
        self._freed = trio.Event()

    def in_flight(self, session_id: str) -> tuple[int, int]:
        """The session's model calls running under its budget, and those waiting to."""
        return self._flying[session_id], self._queued[session_id]
