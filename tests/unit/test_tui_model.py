"""The TUI's pure rules: filters, search, rows, folding events, fuzzy match, path completion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cli.tui.create import complete_path
from cli.tui.detail import detail_text
from cli.tui.model import (
    Filter,
    apply_event,
    fuzzy_rank,
    fuzzy_score,
    keep,
    next_access_mode,
    row,
    visible,
)
from cli.tui.terminal import attach_notice

NOW = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)


def session(name: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": f"id-{name}", "name": name, "phase": "running",
                            "agent_status": "unknown", "agent": "claude",
                            "branch": f"clauderon/{name}", "repo_path": "/src/app",
                            "created_at": (NOW - timedelta(minutes=5)).isoformat(),
                            "access_mode": "read-write"}
    return {**base, **kw}


def test_filters() -> None:
    run, arch = session("run"), session("arch", phase="archived")
    fail = session("fail", phase="failed")
    wait = session("wait", agent_status="waiting_approval")
    every = [run, arch, fail, wait]
    assert [s["name"] for s in every if keep(s, Filter.ACTIVE)] == ["run", "wait"]
    assert [s["name"] for s in every if keep(s, Filter.ARCHIVED)] == ["arch"]
    assert [s["name"] for s in every if keep(s, Filter.FAILED)] == ["fail"]
    assert [s["name"] for s in every if keep(s, Filter.WAITING)] == ["wait"]
    assert len([s for s in every if keep(s, Filter.ALL)]) == 4
    assert [f.next() for f in Filter] == [*list(Filter)[1:], Filter.ACTIVE]


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
        ("x", "running", "waiting-input", "claude", "clauderon/x", "5m")
    assert row(session("y", phase="creating", status_reason="boom"), NOW)[1] == "creating!"


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
    bare = detail_text(s, {"files": None, "audit": None, "events": None}, NOW)
    assert "created 5m ago" in bare and "perms     bypass" in bare
    assert "engine said no" in bare
    assert "Changed files" not in bare and "Recent requests" not in bare
    full = detail_text(s, {
        "files": {"files": [{"path": "src/a.py", "status": "modified", "additions": 3,
                             "deletions": 1}, "README.md"]},
        "audit": {"audit": [{"ts": "2025-01-02T11:59:01Z", "method": "POST",
                             "host": "api.anthropic.com", "path": "/v1/messages",
                             "status": 200, "decision": "intercept"}]},
        "events": {"events": [{"kind": "progress", "payload": {"step": "worktree"}},
                              {"kind": "progress", "payload": {"step": "container"}}]},
    }, NOW)
    assert "Changed files[/b] (2)" in full
    assert "M src/a.py" in full and "+3" in full and "README.md" in full
    assert "11:59:01 POST api.anthropic.com/v1/messages 200 intercept" in full
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
