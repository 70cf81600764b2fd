"""A costly measure's answer is reused for its while, shared by callers at once, and
measured again after (trio's clock, jumped: no real waiting)."""

from __future__ import annotations

import trio
import trio.testing

from api.recent import Recent


async def test_one_measure_serves_its_while(autojump_clock: trio.testing.MockClock) -> None:
    runs: list[float] = []

    async def measure() -> int | None:
        runs.append(trio.current_time())
        await trio.sleep(5)  # a slow census
        return None if len(runs) == 1 else len(runs)  # None is an answer too

    recent: Recent[int | None] = Recent(30)
    answers: list[int | None] = []

    async def ask() -> None:
        answers.append(await recent.get(measure))

    async with trio.open_nursery() as nursery:
        for _ in range(3):  # three pages at once: one measure
            nursery.start_soon(ask)
    assert answers == [None, None, None] and len(runs) == 1
    await trio.sleep(20)  # 20 s after it was measured: still kept
    assert await recent.get(measure) is None and len(runs) == 1
    await trio.sleep(10)  # 30 s after: measured again
    assert await recent.get(measure) == 2 and len(runs) == 2
