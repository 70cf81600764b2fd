"""The TUI's pure rules: filters, keys, search, rows, folding events, fuzzy match, path
completion. Sessions are the wire model's JSON of real records, so the filters and the keys
follow the API's ``filters`` and ``actions`` as they are computed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from appliance import wire
from appliance.sessions import AgentStatus, Desired, Phase, Session, SessionId
from cli.tui.create import complete_path
from cli.tui.detail import detail_text
from cli.tui.reconcile import problem_cells
from cli.tui.terminal import attach_notice
from cli.tui.tui_model import (
    KEY_VERBS,
    Filter,
    apply_event,
    detail_moved,
    fuzzy_rank,
    fuzzy_score,
    keep,
    key_works,
    next_access_mode,
    row,
    visible,
)

NOW = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)


def session(name: str, **kw: Any) -> dict[str, Any]:
    """The API's JSON of a real session record (``kw``: record fields by their JSON names,
    phase, status and desired as strings)."""
    fields: dict[str, Any] = {
        "id": SessionId(f"id-{name}"), "name": name, "repo_path": "/src/app",
        "worktree_path": f"/w/{name}", "branch": f"clauderon/{name}", "base_ref": "main",
        "image": "img", "proxy_token_hash": "a" * 64, "hook_token_hash": "b" * 64,
        "created_at": NOW - timedelta(minutes=5), "updated_at": NOW, "backend_id": "c1",
        "phase": Phase.RUNNING, "desired": Desired.RUNNING}
    for key, value in kw.items():
        fields[key] = {"phase": Phase, "agent_status": AgentStatus,
                       "desired": Desired}.get(key, lambda v: v)(value)
    if fields["created_at"] and isinstance(fields["created_at"], str):
        fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    return wire.session_json(Session(**fields))


def test_filters_are_the_apis() -> None:
    run, arch = session("run"), session("arch", phase="archived", desired="archived")
    fail = session("fail", phase="failed")
    wait = session("wait", agent_status="waiting_approval")
    idle = session("idle", agent_status="idle")
    stopped = session("stopped", phase="stopped", desired="stopped",
                      agent_status="waiting_input")
    gone = session("gone", agent_status="exited")
    every = [run, arch, fail, wait, idle, stopped, gone]
    assert [s["name"] for s in every if keep(s, Filter.ACTIVE)] == \
        ["run", "wait", "idle", "stopped", "gone"]
    assert [s["name"] for s in every if keep(s, Filter.ARCHIVED)] == ["arch"]
    assert [s["name"] for s in every if keep(s, Filter.FAILED)] == ["fail"]
    assert [s["name"] for s in every if keep(s, Filter.WAITING)] == ["wait", "idle", "gone"]
    assert len([s for s in every if keep(s, Filter.ALL)]) == 7
    assert [f.next() for f in Filter] == [*list(Filter)[1:], Filter.ACTIVE]
    # Each filter but "all" is exactly the API's field: a session the API puts under no
    # filter is under none here, whatever its phase says.
    for f in Filter:
        if f is not Filter.ALL:
            assert [s["name"] for s in every if keep(s, f)] == \
                [s["name"] for s in every if str(f) in s["filters"]]
    assert not keep({**run, "filters": []}, Filter.ACTIVE)


def test_keys_follow_the_sessions_actions() -> None:
    def working(s: dict[str, Any] | None) -> set[str]:
        return {a for a in KEY_VERBS if key_works(s, a)}

    assert working(None) == set()
    assert working(session("run")) == {"archive", "delete", "access_mode", "attach"}
    # Stopped: attach starts it first; archive still works.
    assert working(session("s", phase="stopped", desired="stopped")) == \
        {"archive", "delete", "access_mode", "attach"}
    # Archived: archive again would do nothing, so it is not offered; attach unarchives.
    assert working(session("a", phase="archived", desired="archived")) == \
        {"unarchive", "delete", "access_mode", "attach"}
    assert working(session("f", phase="failed")) == {"delete", "access_mode"}
    assert working(session("c", phase="creating", backend_id=None)) == \
        {"delete", "access_mode"}
    assert working(session("d", phase="deleting", desired="deleted")) == {"delete"}
    assert working({**session("run"), "actions": []}) == set()


def test_search_matches_every_word_in_name_branch_repo_or_prompt() -> None:
    s = session("flaky", initial_prompt="Fix the flaky test")
    assert keep(s, Filter.ACTIVE, "flaky")
    assert keep(s, Filter.ACTIVE, "src  TEST")
    assert not keep(s, Filter.ACTIVE, "flaky docs")


def test_visible_is_newest_first_and_stable() -> None:
    old = session("old", created_at=(NOW - timedelta(hours=2)).isoformat())
    assert [s["name"] for s in visible([old, session("b"), session("a")], Filter.ALL)] == \
        ["a", "b", "old"]


def test_row_and_age() -> None:
    assert row(session("x", agent_status="waiting_input"), NOW) == \
        ("x", "running", "waiting-input", "claude", "docker", "clauderon/x", "5m")
    assert row(session("y", phase="creating", status_reason="boom", backend_id=None),
               NOW)[1] == "creating!"
    # An agent that exited is flagged; the detail pane says what to do.
    assert row(session("z", agent_status="exited"), NOW)[:3] == ("! z", "running", "exited")


def test_detail_says_how_to_bring_an_exited_agent_back() -> None:
    none: dict[str, Any] = {"files": None, "audit": None, "events": None}
    gone = detail_text(session("z", agent_status="exited"), none, NOW).plain
    assert "status    exited" in gone
    assert "exited: nothing more happens until it is restarted (h: Health" in gone
    # Stopped, it has no agent to restart: starting it starts one.
    stopped = detail_text(session("z", phase="stopped", desired="stopped",
                                  agent_status="exited"), none, NOW).plain
    assert "restarted" not in stopped
    assert "restarted" not in detail_text(session("w", agent_status="working"), none, NOW).plain


def test_events_fold_into_the_list() -> None:
    sessions = {"id-a": session("a")}
    assert apply_event(sessions, {"kind": "updated",
                                  "payload": {"session": session("a", phase="stopped")}})
    assert sessions["id-a"]["phase"] == "stopped"
    assert not apply_event(sessions, {"kind": "updated",
                                      "payload": {"session": session("a", phase="stopped")}})
    assert not apply_event(sessions, {"kind": "progress", "payload": {"step": "worktree"}})
    assert apply_event(sessions, {"kind": "created", "payload": {"session": session("b")}})
    assert apply_event(sessions, {"kind": "deleted", "payload": {"id": "id-a", "name": "a"}})
    assert list(sessions) == ["id-b"]
    assert not apply_event(sessions, {"kind": "deleted", "payload": {"id": "id-a"}})


def test_an_events_view_keeps_the_prompt_the_list_gave() -> None:
    """An event's view of a session leaves the prompt out (every hook journals one); what
    the list gave stays, and a session first seen in such a view has none, not a crash."""
    listed = session("a", initial_prompt="write the tests")
    sessions = {"id-a": listed}
    seen = {k: v for k, v in session("a", agent_status="working").items()
            if k not in wire.EVENT_OMITS}
    assert "initial_prompt" not in seen
    assert apply_event(sessions, {"kind": "hook", "payload": {"session": seen}})
    assert sessions["id-a"]["initial_prompt"] == "write the tests"
    assert sessions["id-a"]["agent_status"] == "working"
    assert not apply_event(sessions, {"kind": "hook", "payload": {"session": seen}})
    fresh = {**seen, "id": "id-b", "name": "b"}
    assert apply_event(sessions, {"kind": "hook", "payload": {"session": fresh}})
    assert sessions["id-b"]["initial_prompt"] == ""


def test_fuzzy_prefers_word_starts_and_runs() -> None:
    paths = ["/home/me/src/other/clauderon-api", "/home/me/src/clauderon/api",
             "/srv/nothing"]
    assert fuzzy_score("xyz", paths[0]) is None
    assert fuzzy_rank("cl/api", paths)[0] == "/home/me/src/clauderon/api"
    assert "/srv/nothing" not in fuzzy_rank("cl", paths)
    assert fuzzy_rank("", paths) == paths


def test_path_completion(tmp_path: Path) -> None:
    (tmp_path / "apple").mkdir()
    (tmp_path / "apricot").mkdir()
    (tmp_path / "apex.txt").write_text("")
    (tmp_path / ".hidden").mkdir()
    assert complete_path(f"{tmp_path}/apr") == f"{tmp_path}/apricot/"
    assert complete_path(f"{tmp_path}/ap") == f"{tmp_path}/apple/"
    assert complete_path(f"{tmp_path}/") == f"{tmp_path}/apple/"
    assert complete_path(f"{tmp_path}/zzz") is None
    assert complete_path(f"{tmp_path}/nowhere/x") is None
    assert complete_path("") is None


def test_access_mode_toggles() -> None:
    assert next_access_mode("read-write") == "read-only"
    assert next_access_mode("read-only") == "read-write"


def test_detail_shows_extras_only_when_the_api_has_them() -> None:
    s = session("d", skip_permissions=True, status_reason="engine said no")
    bare = detail_text(s, {"files": None, "audit": None, "events": None}, NOW).plain
    assert "created 5m ago" in bare and "perms     bypass" in bare
    assert "engine said no" in bare
    assert "Changed files" not in bare and "Recent requests" not in bare
    # The extras as the typed calls give them: the diff's body, the audit lines, the events.
    files = [{"path": "src/a.py", "status": "M"}, {"path": "README.md", "status": "?"}]
    full = detail_text(s, {
        "files": {"files": files, "repos": [{"name": "app", "files": files}]},
        "audit": [{"ts": "2025-01-02T11:59:01Z", "method": "POST",
                   "host": "api.anthropic.com", "path": "/v1/messages",
                   "status": 200, "decision": "intercept"},
                  # A WebSocket: its opening, then its end (one exchange, two lines).
                  {"ts": "2025-01-02T11:59:02.5Z", "method": "GET", "host": "ws.test",
                   "path": "/live", "status": 101, "decision": "passed", "phase": "open",
                   "stream": "s1", "duration_ms": 3.0},
                  {"ts": "2025-01-02T11:59:40Z", "method": "GET", "host": "ws.test",
                   "path": "/live", "status": 101, "decision": "passed", "phase": "end",
                   "stream": "s1", "duration_ms": 37500.0},
                  # One a killed proxy left open: no end line will come.
                  {"ts": "2025-01-02T11:59:50Z", "method": "GET", "host": "ws.test",
                   "path": "/dead", "status": 101, "decision": "passed", "phase": "open",
                   "stream": "r0.s2", "duration_ms": 0.0, "cut_off": True}],
        "events": [{"kind": "progress", "payload": {"step": "worktree"}},
                   {"kind": "progress", "payload": {"step": "container"}}],
    }, NOW).markup
    assert "Changed files[/b] (2)" in full
    assert "M src/a.py" in full and "? README.md" in full
    assert "11:59:01 POST api.anthropic.com/v1/messages 200 intercept" in full
    assert "11:59:02 GET ws.test/live open since 11:59:02 passed" in full
    assert "11:59:40 GET ws.test/live ended 101 after 37.5 s passed" in full
    assert "11:59:50 GET ws.test/dead cut off (the proxy restarted) passed" in full
    assert "Progress[/b] worktree > container" in full


def test_attach_notice_tells_a_detach_from_a_failure() -> None:
    assert attach_notice(0, "") is None
    # ``docker attach`` ends a detach with status 1 and says so on stderr.
    assert attach_notice(1, "read escape sequence\n") is None
    assert attach_notice(1, "Error response from daemon: You cannot attach to a stopped "
                            "container, start it first\n") == (
        "attach ended with status 1: Error response from daemon: You cannot attach to a "
        "stopped container, start it first")
    assert attach_notice(137, "") == "attach ended with status 137"


def test_a_problem_is_shown_as_text_never_as_markup() -> None:
    """A failed session's reason may quote what its agent wrote: markup in it (a click
    action, a link, a style) is shown as written and acts on nothing."""
    hostile = "git: bad ref [@click=app.quit]main[/] [link=https://x.example]here[/link] [b]x"
    cells = problem_cells({"session": "s", "problem": "failed", "detail": hostile})
    assert [c.plain for c in cells] == ["s", "failed", hostile]
    assert all(not c.spans and not c.style for c in cells)


def test_a_hook_that_changes_nothing_shown_redraws_nothing() -> None:
    """A hostile agent floods ``PreToolUse`` while already working (~200 hooks a 10 s):
    each journals its session's view with only ``updated_at`` moved, which no screen of the
    TUI shows. The view is kept (the newest stamp), but the table is not rebuilt for it;
    a hook that moves the status still is."""
    working = session("a", agent_status="working")
    sessions = {"id-a": working}
    for n in range(1, 4):
        again = {**working, "updated_at": f"2025-01-02T12:00:0{n}+00:00"}
        assert not apply_event(sessions, {"kind": "hook", "payload": {"session": again}})
        assert sessions["id-a"]["updated_at"] == again["updated_at"]
    waiting = {**working, "agent_status": "waiting_input",
               "updated_at": "2025-01-02T12:00:09+00:00"}
    assert apply_event(sessions, {"kind": "hook", "payload": {"session": waiting}})
    assert sessions["id-a"]["agent_status"] == "waiting_input"


@pytest.mark.parametrize(("kind", "changed", "moved"), [
    ("hook", False, False),  # an agent's hook that moved only updated_at: nothing to read
    ("hook", True, True),  # its status moved
    ("progress", False, True),  # the pane shows the progress steps from the history
    ("created", False, True),
    (None, False, True),
])
def test_the_detail_is_read_again_only_when_the_event_may_have_moved_it(
        kind: str | None, changed: bool, moved: bool) -> None:
    assert detail_moved({"kind": kind}, changed) is moved
