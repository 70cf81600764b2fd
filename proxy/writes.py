"""The proxy's control events (an alert, a budget refusal, a journal note), written within a
deadline that holds.

A write runs on a worker thread (SQLite blocks). When the store does not answer -- another
holder of its lock or its file that never lets go -- the request the event is about must
not wait for it: past :data:`WRITE_SECONDS` the caller goes on and the thread is abandoned
(``appliance.threads``), to land its write when the store answers, or log its failure then.
The writes take one token of their own, so abandoned ones hold up only the next write (which
waits within its own deadline), never the proxy's reads of the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import trio

from appliance.threads import on_thread

log = logging.getLogger(__name__)

#: How long a control event's write may take before its caller goes on without it.
WRITE_SECONDS = 10.0


class Writes:
    def __init__(self) -> None:
        self._limiter = trio.CapacityLimiter(1)

    async def __call__(self, fn: Callable[[], object]) -> None:
        """``fn()`` (one event's write), given up on after :data:`WRITE_SECONDS`."""
        with trio.move_on_after(WRITE_SECONDS) as scope:
            await on_thread(partial(_logged, fn), limiter=self._limiter, abandon=True)
        if scope.cancelled_caught:
            log.warning("a control event was not written within %s s: the database did not "
                        "answer", WRITE_SECONDS)


def _logged(fn: Callable[[], object]) -> None:
    """``fn()``, its failure logged here: an abandoned thread's error reaches no one."""
    try:
        fn()
    except Exception:
        log.exception("cannot record a control event")
