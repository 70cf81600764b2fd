"""``appliance.threads.on_thread``: whether a caller's deadline holds over a thread that
does not end. Real threads, really blocked on a ``threading.Event`` the test sets
afterwards (so no thread is left behind); the deadline is made to pass once the thread is
known to run (the scope's deadline set to now), so nothing here is timed."""

from __future__ import annotations

import threading

import pytest
import trio

from appliance.threads import on_thread


@pytest.mark.parametrize(("abandon", "answered_while_held"), [
    (True, True),     # a read, a ping, a measure: the caller is free at its deadline
    (False, False),   # a write: the caller waits for the thread, deadline or not
])
async def test_a_deadline_holds_over_a_thread_only_when_it_may_be_abandoned(
        abandon: bool, answered_while_held: bool) -> None:
    release, ended = threading.Event(), threading.Event()
    running = trio.Event()
    limiter = trio.CapacityLimiter(1)
    token = trio.lowlevel.current_trio_token()

    def held() -> str:
        trio.from_thread.run_sync(running.set, trio_token=token)
        release.wait()
        ended.set()
        return "late"

    returned = trio.Event()

    async def call(scope: trio.CancelScope) -> None:
        with scope:
            await on_thread(held, limiter=limiter, abandon=abandon)
        returned.set()

    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()
        nursery.start_soon(call, scope)
        await running.wait()
        scope.deadline = trio.current_time()  # the caller's deadline passes
        await trio.testing.wait_all_tasks_blocked()  # the caller has done what it will
        answered = returned.is_set()
        # Abandoned or not, the thread holds its token until it really ends.
        assert limiter.borrowed_tokens == 1
        release.set()
    assert answered is answered_while_held, "the deadline did not hold over the thread"
    await trio.to_thread.run_sync(ended.wait)
    async with limiter:  # given back once the thread ended
        pass
