"""The hostile agent drowning the person's view of the audit trail, from inside a real session
container as uid 1000.

Every request the proxy answers is a line of ``audit.jsonl``, every session's in one file,
and requests on a connection are not limited. The person's view of a session's lines (the
audit route, the timeline) searched only the file's last window: an agent sending a few
thousand refused requests with long paths pushed every other session's lines out of it, and
the neighbour's view went empty though the file still held its lines. The API now finds a
session's lines through an index of where they are, kept as the file grows and rotates.

A flood past the log's rotation size (set small here) had the real shipper rotate it: the
index started again on the new file, and the neighbour's line, now in the rotated one, left
its views. The index now holds the newest rotated files open and reads through them, and
keeps a few lines of each session from the files it lets go, so a flood that rotates the
log again and again leaves the neighbours' recent lines in view.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from appliance import audit_index
from appliance.shipper.archive import ArchiveSink
from appliance.shipper.ship_loop import Shipper
from tests.integration.test_shipper_files import SignalReopener
from tests.support.agent_app import behind_proxy, create, in_container
from tests.support.appliance import Appliance, wait_for

#: Names that never resolve; the proxy refuses them before it would look them up.
VICTIM_HOST = "victims-request.invalid"
FLOOD_HOST = "flood.invalid"
#: Refused requests the flooder sends on one connection: with paths the proxy records 2 KiB
#: of, more than the 16 MiB the timeline used to search a page (the route searched 8).
FLOOD = 8000
#: The rotation size of the test with the shipper: a few hundred refused requests pass it.
ROTATE_BYTES = 512 * 1024
#: Rotations the flood causes: more than the index holds rotated files open.
ROTATIONS = audit_index.ROTATED + 2


@pytest.fixture
def app(tmp_path: Path, agent_image: str) -> Iterator[Appliance]:
    """Proxy (every host unlisted is refused: nothing leaves), API and reconciler."""
    with behind_proxy(tmp_path / "home", agent_image, "deny_unlisted = true\n") as a:
        yield a


def in_file(app: Appliance, host: str) -> list[dict[str, Any]]:
    path = app.settings.audit_path
    if not path.exists():
        return []
    return [line for line in map(json.loads, path.read_text().splitlines())
            if line.get("host") == host]


def rotations(app: Appliance) -> int:
    """Files the log was rotated to (each read, compressed, or both at once)."""
    return len({p.name.removesuffix(".gz") for p in app.home.glob("audit.jsonl.*")
                if not p.name.endswith(".part")})


@contextmanager
def shipping(app: Appliance, archive: ArchiveSink | None = None) -> Iterator[Shipper]:
    """The real shipper on the appliance's home, rotating its log past ``rotate_bytes`` and
    telling the real proxy to reopen it with SIGHUP, as supervisord does for it
    (``archive``: the archive sink, its clock the test's)."""
    shipper = Shipper(app.settings, archive=archive or ArchiveSink(app.settings.archive_dir),
                      reopener=SignalReopener(app.procs["proxy"].pid))
    started = threading.Event()
    running: list[tuple[trio.lowlevel.TrioToken, trio.Event]] = []

    async def run() -> None:
        stop = trio.Event()
        running.append((trio.lowlevel.current_trio_token(), stop))
        async with trio.open_nursery() as nursery:
            await nursery.start(shipper.serve)
            started.set()
            await stop.wait()
            await shipper.drain(5)

    thread = threading.Thread(target=trio.run, args=(run,))
    thread.start()
    try:
        assert started.wait(30), "the shipper did not start"
        yield shipper
    finally:
        for token, stop in running:
            trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(30)
        assert not thread.is_alive(), "the shipper did not stop"


def flood(app: Appliance, session: dict[str, Any], count: int) -> None:
    """``count`` refused requests from ``session``'s container on one connection, each with
    a path that fills the 2 KiB the proxy records."""
    _, out = in_container(app, session, f"""
        pad=$(head -c 2100 /dev/zero | tr '\\0' a)
        for i in $(seq {count}); do echo "url = \\"http://{FLOOD_HOST}/$i/$pad\\""; \\
          echo "output = /dev/null"; done > /tmp/urls
        curl -s -K /tmp/urls -w '%{{http_code}}\\n' | sort | uniq -c""")
    assert out.split() == [str(count), "403"], out


def test_a_flood_of_one_sessions_requests_leaves_its_neighbours_lines_in_view(
        app: Appliance, repo: Path) -> None:
    flooder = create(app, repo, "flooder")
    victim = create(app, repo, "victim")
    _, out = in_container(app, victim, f"curl -s -o /dev/null -w '%{{http_code}}\\n' "
                                       f"http://{VICTIM_HOST}/mine")
    assert out.split() == ["403"], out
    wait_for(lambda: in_file(app, VICTIM_HOST), what="the victim's line in the audit log")
    # One curl, one config of URLs, one keep-alive connection.
    flood(app, flooder, FLOOD)
    wait_for(lambda: len(in_file(app, FLOOD_HOST)) == FLOOD, what="the flood in the audit log")
    assert app.settings.audit_path.stat().st_size > 16 * 2**20
    assert [line["path"] for line in in_file(app, VICTIM_HOST)] == ["/mine"]  # still there
    http = app.http()  # the web UI's way in
    seen = http.get(f"/api/sessions/{victim['id']}/audit").json()["lines"]
    assert [(line["host"], line["path"]) for line in seen] == [(VICTIM_HOST, "/mine")], seen
    timeline = http.get(f"/api/sessions/{victim['id']}/timeline").json()
    assert VICTIM_HOST in json.dumps(timeline), json.dumps(timeline)[:300]
    # The flooder's own view holds its newest lines, the flood's last.
    own = http.get(f"/api/sessions/{flooder['id']}/audit", params={"limit": "2"}).json()["lines"]
    assert [line["path"].split("/")[1] for line in own] == [str(FLOOD - 1), str(FLOOD)]


@pytest.fixture
def rotating(tmp_path: Path, agent_image: str) -> Iterator[Appliance]:
    with behind_proxy(tmp_path / "home", agent_image, "deny_unlisted = true\n",
                      config=f"[shipper]\nrotate_bytes = {ROTATE_BYTES}\n"
                             "poll_seconds = 0.05\n") as a:
        yield a


def looked_at_once(app: Appliance, repo: Path, path: str
                   ) -> tuple[dict[str, Any], dict[str, Any], httpx.Client]:
    """A flooder and a victim session; the victim asked for ``path`` (refused, audited) and
    the person looked at its lines once (the API's index follows the log from then on)."""
    flooder = create(app, repo, "flooder")
    victim = create(app, repo, "victim")
    http = app.http()
    _, out = in_container(app, victim, f"curl -s -o /dev/null -w '%{{http_code}}\\n' "
                                       f"http://{VICTIM_HOST}{path}")
    assert out.split() == ["403"], out
    wait_for(lambda: in_file(app, VICTIM_HOST), what="the victim's line in the audit log")
    seen = http.get(f"/api/sessions/{victim['id']}/audit").json()["lines"]
    assert [line["path"] for line in seen] == [path], seen
    return flooder, victim, http


def test_a_flood_that_rotates_the_log_leaves_its_neighbours_lines_in_view(
        rotating: Appliance, repo: Path) -> None:
    app = rotating
    flooder, victim, http = looked_at_once(app, repo, "/mine")
    with shipping(app):
        # Some 2.3 KiB a line: past the rotation size, again and again (more rotations than
        # the index holds rotated files open), then a few in the new file.
        for done in range(1, ROTATIONS + 1):
            flood(app, flooder, ROTATE_BYTES // 2300 + 10)
            wait_for(lambda n=done: rotations(app) >= n, what=f"rotation {done}")
            # Renamed; the writer made the next file once it reopened.
            wait_for(app.settings.audit_path.exists, what="the writer's new file")
            # The person's view, open meanwhile, asks again; the index follows each file.
            http.get(f"/api/sessions/{victim['id']}/audit").raise_for_status()
        flood(app, flooder, 10)
        wait_for(lambda: in_file(app, FLOOD_HOST), what="the flood in the new live file")
    assert rotations(app) == ROTATIONS
    assert in_file(app, VICTIM_HOST) == []  # its line is in a rotated file now
    seen = http.get(f"/api/sessions/{victim['id']}/audit").json()["lines"]
    assert [(line["host"], line["path"]) for line in seen] == [(VICTIM_HOST, "/mine")], seen
    timeline = http.get(f"/api/sessions/{victim['id']}/timeline").json()
    assert VICTIM_HOST in json.dumps(timeline), json.dumps(timeline)[:300]
    own = http.get(f"/api/sessions/{flooder['id']}/audit", params={"limit": "1"}).json()
    assert [line["path"].split("/")[1] for line in own["lines"]] == ["10"]


def test_a_neighbours_line_in_a_file_rotated_twice_over_between_two_looks_stays_in_view(
        rotating: Appliance, repo: Path) -> None:
    """The index reads only when a person looks: the victim's line went to a file the flood
    rotated away, and rotated again past, before anyone looked; that file was never read,
    and the line was in no view (only in the archive)."""
    app = rotating
    flooder, victim, http = looked_at_once(app, repo, "/first")
    with shipping(app):
        flood(app, flooder, ROTATE_BYTES // 2300 + 10)
        wait_for(lambda: rotations(app) >= 1, what="the first rotation")
        wait_for(app.settings.audit_path.exists, what="the writer's new file")
        # The victim's line, in the second file, which nobody looks at before it rotates too.
        _, out = in_container(app, victim, f"curl -s -o /dev/null -w '%{{http_code}}\\n' "
                                           f"http://{VICTIM_HOST}/mine")
        assert out.split() == ["403"], out
        wait_for(lambda: in_file(app, VICTIM_HOST), what="the victim's second line")
        flood(app, flooder, ROTATE_BYTES // 2300 + 10)
        wait_for(lambda: rotations(app) >= 2, what="the second rotation")
        wait_for(app.settings.audit_path.exists, what="the writer's new file")
        # Compressed, as the shipper leaves them.
        wait_for(lambda: len(list(app.home.glob("audit.jsonl.*.gz"))) == 2,
                 what="both rotated files compressed")
    assert in_file(app, VICTIM_HOST) == []  # its line is in the second rotated file now
    seen = http.get(f"/api/sessions/{victim['id']}/audit").json()["lines"]
    assert [line["path"] for line in seen] == ["/first", "/mine"], seen
    timeline = http.get(f"/api/sessions/{victim['id']}/timeline").json()
    assert "/mine" in json.dumps(timeline), json.dumps(timeline)[:300]
