"""``/ws/events``: live events from the journal, resumable by event id (real services)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.support.appliance import Appliance, wait_for


async def collect(url: str, until: str, name: str, headers: list[tuple[bytes, bytes]],
                  connected: trio.Event | None = None,
                  phase: str = "running") -> list[dict[str, Any]]:
    """Events from ``url`` until one of kind ``until`` for session ``name`` arrives;
    ``connected`` is set once the server said hello."""
    out: list[dict[str, Any]] = []
    with trio.fail_after(60):
        async with open_websocket_url(url, extra_headers=headers) as ws:
            hello = json.loads(await ws.get_message())
            assert hello["type"] == "connected"
            if connected is not None:
                connected.set()
            while True:
                msg = json.loads(await ws.get_message())
                assert msg["type"] == "event"
                out.append(msg["event"])
                payload = msg["event"]["payload"]
                session = payload.get("session", payload)
                if msg["event"]["kind"] == until and session.get("name") == name and (
                    until != "updated" or session.get("phase") == phase
                ):
                    return out


async def test_events_stream_live_and_resume(appliance: Appliance, repo: Path) -> None:
    base = f"ws://127.0.0.1:{appliance.http_port}/ws/events"
    async with trio.open_nursery() as nursery:
        live: list[dict[str, Any]] = []

        connected = trio.Event()

        async def watch() -> None:
            live.extend(await collect(base + "?after=0", "updated", "live",
                                      appliance.ws_headers("read-only"), connected))

        nursery.start_soon(watch)
        await connected.wait()
        await trio.to_thread.run_sync(
            lambda: appliance.cli("create", "--repo", str(repo), "--name", "live"))
    kinds = [e["kind"] for e in live]
    assert kinds[0] == "created"
    steps = [e["payload"]["step"] for e in live if e["kind"] == "progress"]
    assert steps == ["worktree", "container", "start"]
    ids = [e["id"] for e in live]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    # Resume from the middle: exactly the events after that id, in order.
    middle = ids[1]
    await trio.to_thread.run_sync(lambda: appliance.cli("delete", "live", "--force"))
    resumed = await collect(f"{base}?after={middle}", "deleted", "live",
                            appliance.ws_headers("read-only"))
    assert [e["id"] for e in resumed][: len(ids) - 2] == ids[2:]
    assert resumed[-1]["kind"] == "deleted"
    assert any(e["kind"] == "progress" and e["payload"]["step"] == "worktree"
               for e in resumed[len(ids) - 2:])


UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


@pytest.mark.parametrize("cursor", ["nope", "-1", "1e3", "9" * 40, "%00"])
async def test_bad_cursor_is_rejected(appliance: Appliance, cursor: str) -> None:
    """A cursor that is not an event id is refused before the upgrade, naming the field."""
    http = appliance.http("read-only")
    r = await trio.to_thread.run_sync(lambda: http.get(
        f"/ws/events?after={cursor}",
        headers={**UPGRADE, "Origin": f"http://127.0.0.1:{appliance.http_port}"}))
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "after" and r.json()["code"] == "invalid_input"


async def test_a_good_cursor_is_taken(appliance: Appliance) -> None:
    """The positive control: a cursor an earlier answer could give is accepted."""
    url = f"ws://127.0.0.1:{appliance.http_port}/ws/events?after=0"
    with trio.fail_after(30):
        async with open_websocket_url(url, extra_headers=appliance.ws_headers("read-only")
                                      ) as ws:
            assert json.loads(await ws.get_message())["type"] == "connected"


def _journal(app: Appliance) -> list[int]:
    with closing(sqlite3.connect(app.settings.db_path)) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM events ORDER BY id")]


async def test_the_reconciler_prunes_old_events_and_readers_go_on(appliance: Appliance,
                                                                  repo: Path) -> None:
    """Events older than ``keep_events_days`` (30 by default) go when the reconciler
    starts; the newest stays (readers resume after it) and new events follow it."""
    appliance.cli("create", "--repo", str(repo), "--name", "aged", "--prompt", "p")
    appliance.wait_phase("aged", "running")
    appliance.stop("reconciler")
    ids = _journal(appliance)
    assert len(ids) > 3
    with closing(sqlite3.connect(appliance.settings.db_path)) as conn, conn:
        conn.execute("UPDATE events SET ts = '2020-01-01T00:00:00+00:00' WHERE id < ?",
                     (ids[-2],))
    appliance.start("reconciler")
    wait_for(lambda: _journal(appliance)[:2] == ids[-2:], what="the old events to go")
    appliance.cli("stop", "aged")
    url = f"ws://127.0.0.1:{appliance.http_port}/ws/events?after=0"
    seen = await collect(url, "updated", "aged", appliance.ws_headers("read-only"),
                         phase="stopped")
    assert [e["id"] for e in seen][:2] == ids[-2:]
    assert all(e["id"] > ids[-1] for e in seen[2:]) and len(seen) > 2
