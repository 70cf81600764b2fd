"""Read-ahead slots: a session's third body waits for one of its two; others never wait."""

from __future__ import annotations

import trio
import trio.testing

from proxy.readahead import ReadAhead


async def test_a_session_waits_for_its_own_slots_only() -> None:
    slots = ReadAhead(per_session=2)
    release = trio.Event()
    took: list[str] = []

    async def hold(session: str) -> None:
        async with slots.slot(session):
            took.append(session)
            await release.wait()

    async with trio.open_nursery() as nursery:
        for session in ("a", "a", "a", "b"):
            nursery.start_soon(hold, session)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(took) == ["a", "a", "b"]  # a's third waits; b has slots of its own
        assert (slots.held("a"), slots.held("b"), slots.in_use()) == (2, 1, 2)
        release.set()
    assert sorted(took) == ["a", "a", "a", "b"]
    assert (slots.in_use(), slots.held("a")) == (0, 0)  # nothing kept once all let go


async def test_a_cancelled_wait_leaves_nothing_behind() -> None:
    slots = ReadAhead(per_session=1)

    async def wait_for_one() -> None:
        async with slots.slot("a"):
            raise AssertionError("the one slot is held")

    async with slots.slot("a"), trio.open_nursery() as nursery:
        nursery.start_soon(wait_for_one)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()  # the upload hung up while it waited
    assert slots.in_use() == 0
