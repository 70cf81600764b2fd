"""Exchanges that last: in the audit log once they outlast a short bound.

A request's one audit line is written as it ends. One that goes on (a download that
trickles, an upload that does, a long poll) would leave no trace while it lasts, and none
at all if the proxy were killed meanwhile. So every exchange is entered here as it starts
(with when it is due: its start plus ``ProxyConfig.long_after``) and left as it ends; one
task of the server writes the opening line (``Meter.open``) of each still here when it is
due. A short request costs a dict entry and no line.

Theory of operation: entries are kept in the order they started, and with one bound they
fall due in that order, so the task sleeps until the oldest one's time only, not on a
poll (an entry due sooner after a reload that shortened the bound waits for the one
ahead of it).
"""

from __future__ import annotations

import trio

from proxy.relay import Meter


class Lasting:
    def __init__(self) -> None:
        # Keyed by the meter's id: a meter is its exchange's, and leaves as it ends.
        self._running: dict[int, tuple[Meter, float]] = {}
        self._wake = trio.Event()

    def begin(self, meter: Meter, due: float) -> None:
        """``meter``'s exchange started; its opening line is due at ``due`` (trio time)."""
        self._running[id(meter)] = (meter, due)
        self._wake.set()

    def end(self, meter: Meter) -> None:
        self._running.pop(id(meter), None)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        task_status.started()
        while True:
            if not self._running:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            key, (meter, due) = next(iter(self._running.items()))
            await trio.sleep_until(due)
            if self._running.get(key, (None, 0.0))[0] is meter:
                del self._running[key]
                meter.open()
