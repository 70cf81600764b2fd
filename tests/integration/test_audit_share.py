"""The hostile agent filling the disk with audit lines, from inside a real session container
as uid 1000, through the real proxy.

Every request is a line of the audit log, a refused one too (some 2.3 KiB with a long
path), and the shipper archives every line and never prunes: an agent sending refused
requests as fast as it can grew the log and its archive without bound, until the disk was
below the audit reserve and the proxy refused every session's requests. A session's lines
of a day are now held to ``audit_bytes_per_day`` (set small here): past it its requests get
a 429 saying why and are counted one summary line a minute, and its neighbours go on.

When the audit lines are what filled the disk, the person was not told whose they were: the
disk view named the sessions with the largest workspaces and containers, and a flood's
comes from a session whose workspace is tiny. It now counts each session's lines with it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.audit import AUDIT_RESERVE_BYTES, room_at
from cli import calls
from tests.integration.test_audit_flood import FLOOD_HOST, VICTIM_HOST
from tests.support.agent_app import behind_proxy, create, in_container

#: The bound of the test: some hundred refused requests with long paths reach it.
BOUND = 256 * 1024
#: Refused requests the flooder sends on one connection: some 1.4 MiB of lines unbounded.
FLOOD = 600


@pytest.fixture
def app(tmp_path: Path, agent_image: str) -> Iterator[Any]:
    """Proxy (every host unlisted is refused: nothing leaves), API and reconciler."""
    with behind_proxy(tmp_path / "home", agent_image,
                      f"deny_unlisted = true\naudit_bytes_per_day = {BOUND}\n") as a:
        yield a


def lines_of(app: Any, session_id: str | None) -> list[tuple[bytes, dict[str, Any]]]:
    """The session's lines in the live log, each as written and as read."""
    raw = app.settings.audit_path.read_bytes().splitlines(keepends=True)
    return [(line, doc) for line, doc in ((line, json.loads(line)) for line in raw)
            if doc.get("session") == session_id]


def answers(app: Any, session: dict[str, Any], count: int, host: str,
            *, curl: str = "") -> dict[str, int]:
    """``count`` requests with 2 KiB paths from ``session``'s container on one connection
    (their list piped, so the container keeps nothing of it): how many got each status.
    ``curl``: more of its options."""
    _, out = in_container(app, session, f"""
        pad=$(head -c 2100 /dev/zero | tr '\\0' a)
        for i in $(seq {count}); do echo "url = \\"http://{host}/$i/$pad\\""; \\
          echo "output = /dev/null"; done | curl -s {curl} -K - -w '%{{http_code}}\\n' \\
          | sort | uniq -c""")
    words = out.split()
    return {code: int(n) for n, code in zip(words[::2], words[1::2], strict=True)}


def test_a_session_flooding_the_audit_log_is_held_to_its_share_and_the_others_go_on(
        app: Any, repo: Path) -> None:
    flooder = create(app, repo, "flooder")
    victim = create(app, repo, "victim")

    codes = answers(app, flooder, FLOOD, FLOOD_HOST)
    mine = lines_of(app, flooder["id"])
    spent = sum(len(line) for line, _ in mine)
    # What one refused request costs the log: its line, the path cut to what is recorded.
    each = max(len(line) for line, _ in mine)
    assert 2048 < each < 3072, each
    # The flood's lines stop at the bound (the line that reached it is the last one).
    assert spent < BOUND + each, (spent, codes)
    assert codes.get("403", 0) >= BOUND // each and sum(codes.values()) == FLOOD, codes
    refused = codes["429"]
    assert refused == FLOOD - codes["403"], codes
    # The refusal says why and what to do.
    _, out = in_container(app, flooder, f"curl -s -w '\\n%{{http_code}}' http://{FLOOD_HOST}/x")
    body, _, status = out.rpartition("\n")
    assert status == "429" and "reached 256 KiB (`audit_bytes_per_day`" in body, out
    assert "the other sessions go on" in body, body
    # The person hears of it in the session's journal (once a minute at most).
    events = app.client().get(f"/api/sessions/{flooder['id']}/events")["events"]
    assert [e["payload"] for e in events if e["kind"] == "audit_share_spent"] == \
        [{"bytes_per_day": BOUND}], events[-5:]

    # The neighbour goes on: its request gets its own answer and its line.
    _, out = in_container(app, victim, f"curl -s -o /dev/null -w '%{{http_code}}\\n' "
                                       f"http://{VICTIM_HOST}/mine")
    assert out.split() == ["403"], out
    assert [doc["host"] for _, doc in lines_of(app, victim["id"])] == [VICTIM_HOST]

    # Every refusal is counted, a summary line a minute (the last written as the proxy
    # stops), and no other line of the flooder's was written past the bound.
    app.stop("proxy")
    after = lines_of(app, flooder["id"])
    summaries = [doc for _, doc in after if doc["error"] == "AUDIT_SHARE"]
    assert summaries and len(after) == len(mine) + len(summaries), after[-3:]
    assert sum(int(doc["note"].split()[0]) for doc in summaries) == refused + 1, summaries
    assert all(doc["status"] == 429 and doc["host"] == "-" for doc in summaries), summaries


def test_requests_no_session_proves_are_held_to_a_share_for_each_address(
        app: Any, repo: Path) -> None:
    """The same flood with a wrong proxy token: each a 407 and a line of no session's. Those
    lines are held to a share for each address they come from (each container has its own,
    and cannot send from another): past it the flooder's 407s go on, counted a line a
    minute, and another container's wrong token still gets its line in full. One share for
    all let one agent leave every other container's probing requests only counted."""
    flooder = create(app, repo, "flooder")
    victim = create(app, repo, "victim")
    wrong = '-x "http://nobody:wrong@${http_proxy##*@}"'
    codes = answers(app, flooder, FLOOD, FLOOD_HOST, curl=wrong)
    assert codes == {"407": FLOOD}, codes
    flood = [(line, doc) for line, doc in lines_of(app, None) if doc["host"] == FLOOD_HOST]
    spent = sum(len(line) for line, _ in flood)
    assert spent < BOUND + max(len(line) for line, _ in flood), spent
    # Another container's wrong token, after the flood: its 407 and its own line in full.
    _, out = in_container(app, victim, f"curl -s -o /dev/null -w '%{{http_code}}\\n' {wrong} "
                                       f"http://{VICTIM_HOST}/probe")
    assert out.split() == ["407"], out
    assert [doc["path"] for _, doc in lines_of(app, None) if doc["host"] == VICTIM_HOST] == \
        ["/probe"]
    # A session proving itself goes on.
    _, out = in_container(app, victim, f"curl -s -o /dev/null -w '%{{http_code}}\\n' "
                                       f"http://{VICTIM_HOST}/mine")
    assert out.split() == ["403"], out
    assert [doc["host"] for _, doc in lines_of(app, victim["id"])] == [VICTIM_HOST]
    app.stop("proxy")
    raw = app.settings.audit_path.read_bytes().splitlines()
    summaries = [doc for doc in map(json.loads, raw)
                 if str(doc.get("session")).startswith("(unproven) ")]
    # All the flooder's, from its one address.
    assert len({doc["session"] for doc in summaries}) == 1, summaries
    assert sum(int(doc["note"].split()[0]) for doc in summaries) == FLOOD - len(flood), \
        summaries


@pytest.fixture
def unbounded(small_disk: Path, agent_image: str) -> Iterator[Any]:
    """The appliance on a small disk of its own, every session's lines unbounded."""
    with behind_proxy(small_disk / "home", agent_image,
                      "deny_unlisted = true\naudit_bytes_per_day = 0\n") as a:
        yield a


def test_the_session_whose_requests_filled_the_disk_is_named_by_its_audit_lines(
        unbounded: Any, repo: Path, small_disk: Path) -> None:
    app = unbounded
    flooder = create(app, repo, "flooder")
    calm = create(app, repo, "calm")
    # The disk nearly full of the appliance's own (no session's): 2 MiB above the reserve.
    with (app.home / "ballast").open("wb") as ballast:
        os.posix_fallocate(ballast.fileno(), 0,
                           room_at(small_disk).free_bytes - AUDIT_RESERVE_BYTES - (2 << 20))
    assert not room_at(small_disk).full
    # Refused requests until the audit log takes the disk below the reserve.
    codes = answers(app, flooder, 2000, FLOOD_HOST)
    assert codes == {"403": 2000}, codes
    assert room_at(small_disk).full

    disk = app.client().get("/api/disk")
    top = disk["largest"][0]
    assert top["name"] == flooder["name"] and top.get("audit_bytes", 0) >= 2 << 20, disk
    assert top["bytes"] == top["workspace_bytes"] + top["container_bytes"] + \
        top["audit_bytes"], top
    text = app.cli("status", check=False).stdout
    assert f"largest sessions: {flooder['name']} " in text and \
        f"{top['audit_bytes'] >> 20} MiB of its requests' audit lines" in text, text
    assert calm["name"] in text, text
    health = app.client().run(calls.health())
    assert health["disk"]["largest"][0]["name"] == flooder["name"], health["disk"]
