"""The event hub wakes viewers of ``/ws/events`` (a real store on disk)."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from api.events import EventHub
from appliance.config import Settings
from appliance.store import AsyncStore, Event, Store
from tests.unit.test_hook_race import api, running

#: Longer than any test: the tailer looks once at its start and never again.
NEVER = 3600.0


async def _viewer(hub: EventHub, store: AsyncStore, cursor: int, waiting: trio.Event
                  ) -> list[Event]:
    """What ``/ws/events`` does: read after the cursor, else wait on the hub."""
    while True:
        events = await store.run(store.sync.events_after, cursor)
        if events:
            return events
        waiting.set()
        await hub.wait_beyond(cursor)


async def test_the_apis_own_write_reaches_a_viewer_without_the_tailers_poll(
        tmp_path: Path) -> None:
    """A hook's event is written by the API itself, which pokes the hub: a waiting viewer
    reads it at once. Before, it waited for the tailer's next poll to move ``latest``."""
    sync = Store.open(tmp_path / "db.sqlite")
    store = AsyncStore(sync)
    hub = EventHub(store, poll_seconds=NEVER)
    got: list[Event] = []
    waiting, viewed = trio.Event(), trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.serve)

            async def view() -> None:
                got.extend(await _viewer(hub, store, hub.latest, waiting))
                viewed.set()

            # A bound against a hang, not a speed: the tailer would look only in an hour.
            with trio.fail_after(30):
                nursery.start_soon(view)
                await waiting.wait()  # the viewer is parked on the hub
                written = await store.run(sync.append_event, None, "hook", {"hook": "Stop"})
                hub.poke()
                await viewed.wait()
            nursery.cancel_scope.cancel()
    finally:
        sync.close()
    assert [e.id for e in got] == [written]
    assert got[0].payload == {"hook": "Stop"}


async def test_a_viewer_past_latest_returns_without_waiting(tmp_path: Path) -> None:
    """The other way in: an event another process wrote, once the tailer saw it."""
    sync = Store.open(tmp_path / "db.sqlite")
    store = AsyncStore(sync)
    hub = EventHub(store, poll_seconds=NEVER)
    try:
        first = await store.run(sync.append_event, None, "hook", {"hook": "Stop"})
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.serve)
            assert hub.latest == first
            with trio.fail_after(30):
                await hub.wait_beyond(first - 1)
            nursery.cancel_scope.cancel()
    finally:
        sync.close()


async def test_a_stream_says_the_newest_event_as_the_database_has_it(tmp_path: Path) -> None:
    """``/ws/events`` greets with ``latest``, to which a resuming page replays before it
    judges its notes: read from the hub, a poll behind the database (here: never, its
    tailer not running), a hook journaled just before was taken for a live one and its
    wait told although it was over."""
    settings = Settings(home=tmp_path / "home")
    settings.ensure_layout()
    store = Store.open(settings.db_path)
    try:
        running(store)
        store.append_event(None, "hook", {"hook": "Stop"})
        async with api(tmp_path, store).test_client().websocket("/ws/events?after=0") as ws:
            hello = json.loads(await ws.receive())
        assert hello == {"type": "connected", "latest": store.last_event_id(), "after": 0}
        assert hello["latest"] > 0
    finally:
        store.close()
