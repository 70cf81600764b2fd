"""A session's timeline from real components: the agent in its real container (uid 1000, the
agent image) writes its transcript, makes a request through the real proxy to a fake model
API on loopback, commits on its branch; a hook changes its status. The timeline shows the
four in order, between the session's lifecycle events, and plays the hostile agent: escapes
in a forged line and in a commit message come back as inert text, forged times hide
nothing, and a huge transcript keeps the answer bounded.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance import timeline
from tests.conftest import AGENT_UID
from tests.support.agent_app import as_agent, create, through_fake_models
from tests.support.appliance import BIN, Appliance
from tests.support.fake_models import FakeModels

ESCAPES = "\x1b]0;pwned\x07\x1b[2J<img src=x onerror=alert(1)><script>alert(2)</script>"
#: The same, as printf writes it in the container.
ESCAPES_PRINTF = r"\033]0;pwned\007\033[2J<img src=x onerror=alert(1)><script>alert(2)</script>"


@pytest.fixture
def app(tmp_path: Path, agent_image: str, fake: FakeModels) -> Iterator[Appliance]:
    with through_fake_models(tmp_path / "home", agent_image, fake) as a:
        yield a


def transcript_line(text: str, ts: str) -> str:
    return json.dumps({"type": "assistant", "timestamp": ts,
                       "message": {"role": "assistant",
                                   "content": [{"type": "text", "text": text}]}})


LOG = "/home/agent/.claude/projects/-workspace/{sid}.jsonl"
APPEND = 'open(my $f, ">>", shift) or die "$!"; print $f map { "$_\\n" } @ARGV'


def append(app: Appliance, session: dict[str, Any], *lines: str) -> None:
    [c] = app.containers(session["id"])
    path = LOG.format(sid=session["id"])
    c.exec_run(["mkdir", "-p", path.rsplit("/", 1)[0]], user=f"{AGENT_UID}:{AGENT_UID}")
    code, out = c.exec_run(["perl", "-e", APPEND, path, *lines],
                           user=f"{AGENT_UID}:{AGENT_UID}")
    assert code == 0, out


def say(app: Appliance, session: dict[str, Any], text: str) -> None:
    """A transcript line, as Claude Code writes one, stamped with the container's clock."""
    now = as_agent(app, session, "date -u +%Y-%m-%dT%H:%M:%S.%3NZ").strip()
    append(app, session, transcript_line(text, now))


@contextmanager
def trio_free_timeout(seconds: float) -> Iterator[None]:
    """Fail (never hang) a blocking read that takes longer than ``seconds``."""
    def expired(_signum: int, _frame: object) -> None:
        raise AssertionError(f"nothing came within {seconds:.0f}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def when(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["ts"])


def everything(http: httpx.Client, sid: str, limit: int = 200) -> list[dict[str, Any]]:
    """Every item, paging back from the newest; each page's answer checked."""
    items: list[dict[str, Any]] = []
    before = None
    for _ in range(1000):
        r = http.get(f"/api/sessions/{sid}/timeline",
                     params={"limit": str(limit), **({"before": before} if before else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        items = page["items"] + items
        if not page["more"]:
            return items
        before = page["cursor"]
    raise AssertionError("paging did not end")


def test_message_request_commit_and_status_show_in_order(app: Appliance, repo: Path,
                                                         fake: FakeModels) -> None:
    s = create(app, repo, "tl")
    say(app, s, "I will call the API, then commit")
    time.sleep(1.1)  # spacing, not a check: commit times have whole seconds
    code = as_agent(app, s, 'curl -s -o /dev/null -w "%{http_code}" '
                            "https://api.anthropic.com/v1/timeline-probe")
    assert code == "404"  # the fake answered, through the proxy
    assert any(r.path == "/v1/timeline-probe" for r in fake.seen)
    time.sleep(1.1)
    as_agent(app, s, "git -c user.name=Agent -c user.email=a@x commit -q --allow-empty "
                     "-m 'ran the tests'")
    time.sleep(1.1)
    app.hook("tl", "Stop")  # the agent waits for the user

    http = app.http(timeout=15)
    items = everything(http, s["id"])
    wanted = [
        next(i for i in items if i["source"] == "message" and "call the API" in i["title"]),
        next(i for i in items if i["source"] == "audit" and "timeline-probe" in i["title"]),
        next(i for i in items if i["source"] == "commit" and i["title"] == "ran the tests"),
        next(i for i in items if i["source"] == "event" and i["title"] == "hook Stop"),
    ]
    order = [items.index(w) for w in wanted]
    assert order == sorted(order), [items[i]["key"] for i in order]
    assert "waiting_input" in wanted[3]["text"]
    assert wanted[1]["trusted_time"] and not wanted[2]["trusted_time"]
    created = next(i for i in items if i["source"] == "event" and i["kind"] == "created")
    assert items.index(created) < order[0]
    # The items are ordered by time, all of them.
    times = [when(i) for i in items]
    assert times == sorted(times)

    # The CLI shows the same, one line an item; -f prints what comes next, once.
    out = app.cli("timeline", "tl").stdout
    assert "MSG" in out and "NET" in out and "GIT" in out and "hook Stop" in out
    follower = subprocess.Popen([str(BIN / "clauderon"), "timeline", "tl", "-f"],
                                env=app.env, stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        shown = [line for line in out.splitlines() if not line.startswith("(older")]
        lines = [follower.stdout.readline() for _ in shown]
        assert any("hook Stop" in line for line in lines)
        as_agent(app, s, "git -c user.name=Agent -c user.email=a@x commit -q --allow-empty "
                         "-m 'followed live'")
        with trio_free_timeout(60):
            new = follower.stdout.readline()
            while "followed live" not in new:
                assert "ran the tests" not in new and "hook Stop" not in new  # not twice
                new = follower.stdout.readline()
    finally:
        follower.terminate()
        follower.communicate(timeout=10)


def test_hostile_agent_cannot_inject_hide_or_inflate(app: Appliance, repo: Path) -> None:
    s = create(app, repo, "evil")
    http = app.http(timeout=15)
    before = everything(http, s["id"])
    assert before  # at least its lifecycle events

    # Escapes in a forged transcript line and in a commit message; times in the far future
    # and the far past.
    append(app, s, transcript_line("FUTURE " + ESCAPES, "9999-12-31T23:59:59Z"),
           transcript_line("PAST", "1970-01-01T00:00:00Z"))
    as_agent(app, s, f"printf '{ESCAPES_PRINTF}' > /tmp/msg && "
                     "GIT_COMMITTER_DATE='2099-01-01T00:00:00Z' git -c user.name=A "
                     "-c user.email=a@x commit -q --allow-empty -F /tmp/msg")
    items = everything(http, s["id"], limit=3)
    asked = datetime.now(UTC)
    keys = [i["key"] for i in items]
    assert len(keys) == len(set(keys))  # nothing served twice across pages
    assert {i["key"] for i in before} <= set(keys)  # and nothing hidden
    future = next(i for i in items if i["title"].startswith("FUTURE"))
    past = next(i for i in items if i["title"] == "PAST")
    commit = next(i for i in items if i["source"] == "commit")
    for item in (future, commit):
        for field in ("title", "text"):
            assert "\x1b" not in item[field] and "\x07" not in item[field]
        assert "<script>alert(2)</script>" in item["title"] + item["text"]  # text, as is
    # Forged times are clamped to [created, now]: the future is now, the past the creation.
    assert when(future) <= asked and when(commit) <= asked
    assert when(past) == datetime.fromisoformat(s["created_at"])
    assert not future["trusted_time"] and not commit["trusted_time"]

    # A huge transcript (a 256 MiB line, sparse, and lines after it): the answer is
    # bounded; the lines after it are shown, the huge one never.
    path = LOG.format(sid=s["id"])
    as_agent(app, s, f"printf '{{\"type\":\"user\",\"message\":{{\"content\":\"' >> {path} "
                     f"&& truncate -s +256M {path} && printf '\"}}}}\\n' >> {path}")
    append(app, s, transcript_line("after the huge one", "2026-01-01T00:00:00Z"))
    r = http.get(f"/api/sessions/{s['id']}/timeline", params={"limit": "200"})
    assert r.status_code == 200
    assert len(r.content) < 1024 * 1024
    first = r.json()
    assert any(i["title"] == "after the huge one" for i in first["items"])
    assert all(len(i["text"]) <= timeline.MAX_TEXT for i in first["items"])
    r = http.get(f"/api/sessions/{s['id']}/timeline",
                 params={"before": "m" + "9" * 18 + ".a" + "9" * 18 + ".c" + "9" * 18 +
                         ".e" + "9" * 18})
    assert r.status_code == 200, r.text  # the largest cursor: an answer, not a 500
    for bad in ("x", "m1.m1", "e" + "9" * 19):
        r = http.get(f"/api/sessions/{s['id']}/timeline", params={"before": bad})
        assert r.status_code == 400 and r.json()["field"] == "before"
    r = http.get(f"/api/sessions/{s['id']}/timeline", params={"limit": "100000"})
    assert r.status_code == 400 and r.json()["field"] == "limit"
    assert first["notes"] == []

    # The agent makes its transcript unreadable (a FIFO where it should be): the timeline
    # still answers, says why the transcript is missing, and shows the rest (the requests,
    # commits and events that say what the agent did).
    as_agent(app, s, f"rm {path} && mkfifo {path}")
    r = http.get(f"/api/sessions/{s['id']}/timeline", params={"limit": "200"})
    assert r.status_code == 200, r.text
    page = r.json()
    assert len(page["notes"]) == 1 and "transcript is not shown" in page["notes"][0]
    assert {i["source"] for i in page["items"]} == {"commit", "event"}
