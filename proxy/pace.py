"""Pacing: how fast one session may spend a credential. Pure: times in, verdicts out.

Theory of operation. A credential's owner has a quota at its service (a GitHub token: 5,000
requests an hour, shared by the person's own tools and every session), and each session
spends it through the proxy. An agent stuck in a loop -- or one that means harm -- could
spend it all in minutes, and the person's tools and the other sessions would be refused by
GitHub for the rest of the hour. So a credential may carry a *pace* (``proxy.toml``
``[paces]``): the requests an hour each session may send with it.

The pace is the generic cell rate algorithm: one number a session and credential, the
*theoretical arrival time* (TAT) its next request would be due at if requests came exactly
at the pace. A request is on time when it comes no more than the *burst* ahead of it (by
default a tenth of the hourly pace, at least 10: an agent's burst of ``gh`` calls is never
slowed).
A request ahead of that is *held* until it is on time, up to ``hold`` seconds, so a client
that comes too fast is slowed, not failed; one that would wait longer is refused (429, with
``Retry-After``) and spends nothing. Held requests are counted when they are admitted, so
concurrent ones queue up one interval apart.

:class:`Pacer` keeps the TATs; one whose time has passed says nothing more than a missing
one, so the table is swept of those whenever it grows past :data:`SWEEP_AT`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Sessions times credentials: past this many entries, the ones no longer ahead are dropped.
SWEEP_AT = 4096


@dataclass(frozen=True, slots=True)
class Pace:
    per_hour: int
    #: Requests that may go at once; 0: a tenth of the hourly pace, at least 10.
    burst: int = 0

    def __post_init__(self) -> None:
        if not self.burst:
            object.__setattr__(self, "burst", max(10, self.per_hour // 10))

    @property
    def interval(self) -> float:
        return 3600.0 / self.per_hour


@dataclass(frozen=True, slots=True)
class Admission:
    """``wait``: seconds to hold the request before it goes (0: at once); ``refused``: it
    must not go; ``retry_after``: whole seconds until a request would be on time again."""

    wait: float = 0.0
    refused: bool = False
    retry_after: int = 0


def admit(tat: float | None, now: float, pace: Pace, hold: float
          ) -> tuple[float | None, Admission]:
    """The next TAT (None: unchanged) and the verdict for one request at ``now``."""
    due = now if tat is None else max(tat, now)
    early = due - (pace.burst - 1) * pace.interval - now
    if early <= 0:
        return due + pace.interval, Admission()
    if early <= hold:
        return due + pace.interval, Admission(wait=early)
    return None, Admission(refused=True, retry_after=math.ceil(early))


@dataclass(slots=True)
class Pacer:
    """The TATs of every (session, credential) that has a pace."""

    due: dict[tuple[str, str], float] = field(default_factory=dict)

    def take(self, key: tuple[str, str], now: float, pace: Pace, hold: float) -> Admission:
        tat, admission = admit(self.due.get(key), now, pace, hold)
        if tat is not None:
            self.due[key] = tat
            if len(self.due) > SWEEP_AT:
                self.due = {k: t for k, t in self.due.items() if t > now}
        return admission
