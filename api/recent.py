"""The last answer of a costly measure, reused for a while (a census of the disk).

A full disk makes ``/api/health`` measure who holds it (``du`` over every workspace, the
engine's size of every container): seconds of I/O. Every open web UI asks every 30 s, so
without this a few tabs would keep the disk busy measuring itself. One measure runs at a
time; callers that arrive meanwhile wait for it and share its answer, which is kept for
``keep`` seconds of trio's clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Recent(Generic[T]):
    def __init__(self, keep: float) -> None:
        self.keep = keep
        self._lock = trio.Lock()
        #: When the kept answer was measured, and the answer (None among them).
        self._kept: tuple[float, T] | None = None

    async def get(self, measure: Callable[[], Awaitable[T]]) -> T:
        """``measure``'s answer, measured now unless one younger than ``keep`` is kept."""
        async with self._lock:
            if self._kept is None or trio.current_time() - self._kept[0] >= self.keep:
                value = await measure()
                self._kept = (trio.current_time(), value)
            return self._kept[1]
