"""The hostile agent drowning the person's view of the audit trail, from inside a real session
container as uid 1000.

Every request the proxy answers is a line of ``audit.jsonl``, every session's in one file,
and requests on a connection are not limited. The person's view of a session's lines (the
audit route, the timeline) searched only the file's last window: an agent sending a few
thousand refused requests with long paths pushed every other session's lines out of it, and
the neighbour's view went empty though the file still held its lines. The API now finds a
session's lines through an index of where they are, kept as the file grows and rotates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent_app import behind_proxy, create, in_container
from tests.support.appliance import Appliance, wait_for

#: Names that never resolve; the proxy refuses them before it would look them up.
VICTIM_HOST = "victims-request.invalid"
FLOOD_HOST = "flood.invalid"
#: Refused requests the flooder sends on one connection: with paths the proxy records 2 KiB
#: of, more than the 16 MiB the timeline used to search a page (the route searched 8).
FLOOD = 8000


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


def test_a_flood_of_one_sessions_requests_leaves_its_neighbours_lines_in_view(
        app: Appliance, repo: Path) -> None:
    flooder = create(app, repo, "flooder")
    victim = create(app, repo, "victim")
    _, out = in_container(app, victim, f"curl -s -o /dev/null -w '%{{http_code}}\\n' "
                                       f"http://{VICTIM_HOST}/mine")
    assert out.split() == ["403"], out
    wait_for(lambda: in_file(app, VICTIM_HOST), what="the victim's line in the audit log")
    # One curl, one config of URLs, one keep-alive connection: each a refused request whose
    # path fills the 2 KiB the proxy records.
    _, out = in_container(app, flooder, f"""
        pad=$(head -c 2100 /dev/zero | tr '\\0' a)
        for i in $(seq {FLOOD}); do echo "url = \\"http://{FLOOD_HOST}/$i/$pad\\""; \\
          echo "output = /dev/null"; done > /tmp/urls
        curl -s -K /tmp/urls -w '%{{http_code}}\\n' | sort | uniq -c""")
    assert out.split() == [str(FLOOD), "403"], out
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
