"""What the CLI prints while it follows a session through the events stream."""

from __future__ import annotations

from typing import Any

import pytest

from cli.live import follow_session

SESSION = {"id": "s1", "name": "work", "phase": "deleting"}


def event(kind: str, payload: dict[str, Any], session_id: str = "s1") -> dict[str, Any]:
    return {"type": "event", "event": {"session_id": session_id, "kind": kind,
                                       "payload": payload}}


def test_a_delete_says_where_a_workspace_was_kept(capsys: pytest.CaptureFixture[str]) -> None:
    stream = iter([
        None,
        {"type": "connected"},
        event("progress", {"step": "syncing"}),
        event("workspace_kept", {"path": "/h/kept/other", "reason": "x"}, session_id="s2"),
        event("workspace_kept", {"path": "/h/kept/work-s1", "reason": "no .git"}),
        event("progress", {"step": "removing"}),
        event("deleted", {"id": "s1"}),
    ])
    assert follow_session(stream, SESSION, until=set(), label="work  deleting") is None
    assert capsys.readouterr().out.splitlines() == [
        "work  deleting  syncing ▸ removing ▸ gone",
        "  workspace kept at /h/kept/work-s1 (no .git): take what you need, then remove it"]


def test_a_follow_ends_at_the_phase_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    running = {**SESSION, "phase": "running"}
    stream = iter([event("progress", {"step": "container"}),
                   event("updated", {"session": running})])
    assert follow_session(stream, {**SESSION, "phase": "creating"}, until={"running"},
                          label="work") == running
    assert capsys.readouterr().out == "work  container ▸ running\n"
