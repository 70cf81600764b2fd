"""How often a session's alerts write an event (pure but for the clock).

Once a minute per cause, and :data:`ALERTS_PER_MINUTE` a minute per session whatever the
causes: an agent leaking to a new host on every request would write an event each.
"""

from __future__ import annotations

import time
from collections.abc import Callable

ALERT_EVERY_SECONDS = 60.0
#: Events a session's alerts write in a minute, whatever their causes.
ALERTS_PER_MINUTE = 10


class AlertPace:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._alerted: dict[tuple[str, str], float] = {}
        self._recent: dict[str, list[float]] = {}

    def due(self, session_id: str, cause: str) -> bool:
        """Whether to write an event for ``cause`` now."""
        now = self._clock()
        last = self._alerted.get((session_id, cause))
        if last is not None and now - last < ALERT_EVERY_SECONDS:
            return False
        recent = [t for t in self._recent.get(session_id, ()) if now - t < ALERT_EVERY_SECONDS]
        if len(recent) >= ALERTS_PER_MINUTE:
            self._recent[session_id] = recent
            return False
        if len(self._alerted) > 10_000:
            self._alerted.clear()
            self._recent.clear()
        self._alerted[(session_id, cause)] = now
        self._recent[session_id] = [*recent, now]
        return True
