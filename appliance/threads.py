"""Blocking work on a worker thread, under the caller's deadline when that is safe.

trio cannot stop a thread. ``trio.to_thread.run_sync`` without ``abandon_on_cancel`` waits
for its thread however late it is, so a ``move_on_after`` or ``fail_after`` around it holds
nothing: the caller waits for the library's own timeout (the Docker SDK's is 60 s).

``on_thread(..., abandon=True)`` lets the deadline hold: the caller is cancelled at once,
the thread runs on to its own end and its answer (or error) is dropped. Only for work whose
answer can be dropped (a read, a ping, a measure); a write left running would land after
its caller was told it failed, and one holding a lock would hold it past its caller.

The thread keeps its ``limiter`` token until it really ends, so abandoned threads still
count: a call that is abandoned often (a ping, a measure) takes a limiter of its own with
one token, so that at most one of its kind runs and the next waits for it (within its own
deadline, since waiting for a token is cancellable) instead of starving everyone else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio

T = TypeVar("T")


async def on_thread(fn: Callable[[], T], *, limiter: trio.CapacityLimiter | None = None,
                    abandon: bool = False) -> T:
    """``fn()`` on a worker thread; with ``abandon``, given up on when the caller is
    cancelled (the thread is left to finish, holding its ``limiter`` token till then)."""
    return await trio.to_thread.run_sync(fn, limiter=limiter, abandon_on_cancel=abandon)
