"""A control event's write gives up at its own deadline when the store does not answer.

The agent's request that trips a note (paced, audit share spent, an alert) waits for that
note's write; a store held by another caller that never lets go (here: a thread of the test
holding the store's lock, as a stalled disk would) must not hold the agent's request, nor
the proxy, past the write's deadline. Real: the store (SQLite), :class:`Controls`, trio's
threads. The clock is trio's autojump clock, so the deadline passes without waiting it out;
the assertion is on what the store holder saw, not on a time.
"""

from __future__ import annotations

import threading
from pathlib import Path

import trio
import trio.testing

from appliance.store import Store
from proxy.controls import Controls
from proxy.directory import AccessMode, SessionAuth
from tests.unit import test_hook_race

store = test_hook_race.store  # the fixture: a real store
#: Only so the bug fails instead of hanging: far above the write's deadline.
HANG = 3600


def _holding(store: Store, held: threading.Event, release: threading.Event) -> None:
    with store._lock:
        held.set()
        release.wait()


async def test_a_note_goes_on_at_its_deadline_while_the_store_is_held(
        tmp_path: Path, store: Store, autojump_clock: trio.testing.MockClock) -> None:
    s = test_hook_race.running(store)
    auth = SessionAuth(session_id=s.id, name=s.name, access_mode=AccessMode.READ_WRITE,
                       proxy_token_hash="p" * 64)
    controls = Controls(store=store, key=b"k" * 32)
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_holding, args=(store, held, release))
    holder.start()
    answered = trio.Event()
    got: dict[str, bool] = {}

    async def note() -> None:
        await controls.note(auth, "paced", {"credential": "first"})
        got["held"] = not release.is_set()
        answered.set()

    try:
        await trio.to_thread.run_sync(held.wait)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(note)
            with trio.move_on_after(HANG):
                await answered.wait()
            release.set()
    finally:
        release.set()
        await trio.to_thread.run_sync(holder.join)
    assert got["held"], "the note waited for the store past its write's deadline"
    # The write given up on still lands; the next one waits for it, then writes too (the
    # clock now real, so that wait is not jumped past the next write's own deadline).
    autojump_clock.autojump_threshold = float("inf")
    await controls.note(auth, "paced", {"credential": "second"})
    kinds = [row[0] for row in store.rows(
        "SELECT payload FROM events WHERE kind = 'paced' ORDER BY id")]
    assert len(kinds) == 2 and "first" in kinds[0] and "second" in kinds[1], kinds
