"""Bounded sessions and creates, and a delete that wins over a create in progress.

Real API and reconciler processes, real engine, real git. A script that creates sessions in
a loop gets a clear 429 once the limits are reached; deleting a session while its create is
queued or under way cancels the create, and once the delete has answered no container and
no workspace of that session exists, nor appears later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.appliance import Appliance, running, wait_for


def post(app: Appliance, path: str, body: Any = None) -> httpx.Response:
    transport = httpx.HTTPTransport(uds=str(app.settings.socket_path))
    with httpx.Client(transport=transport, base_url="http://clauderon", timeout=60) as http:
        return http.post(path, json=body if body is not None else {})


def delete(app: Appliance, ref: str) -> httpx.Response:
    transport = httpx.HTTPTransport(uds=str(app.settings.socket_path))
    with httpx.Client(transport=transport, base_url="http://clauderon", timeout=60) as http:
        return http.delete(f"/api/sessions/{ref}")


def test_session_count_is_bounded(tmp_path: Path, repo: Path) -> None:
    with running(tmp_path / "home", "api", "reconciler",
                 config="[limits]\nmax_sessions = 2\n") as app:
        for name in ("one", "two"):
            assert post(app, "/api/sessions", {"repo_path": str(repo), "name": name}
                        ).status_code == 202
        refused = post(app, "/api/sessions", {"repo_path": str(repo), "name": "three"})
        assert refused.status_code == 429
        body = refused.json()
        assert body["code"] == "limit_reached" and "max_sessions" in body["error"]
        assert "archive or delete one" in body["error"]
        names = {s["name"] for s in app.client().get("/api/sessions", all="true")["sessions"]}
        assert names == {"one", "two"}  # nothing half-made
        assert not (app.settings.worktrees_dir / "three").exists()
        out = app.cli("create", "--repo", str(repo), "--name", "three", check=False)
        assert out.returncode == 75 and "the limit is 2" in out.stderr
        # An archived session frees its place; bringing it back needs one again.
        app.wait_phase("one", "running")
        app.cli("archive", "one")
        app.wait_phase("one", "archived")
        assert post(app, "/api/sessions", {"repo_path": str(repo), "name": "three"}
                    ).status_code == 202
        again = post(app, "/api/sessions/one/unarchive")
        assert again.status_code == 429
        assert app.session("one")["phase"] == "archived"


def test_concurrent_creates_are_bounded(tmp_path: Path, repo: Path) -> None:
    with running(tmp_path / "home", "api",
                 config="[limits]\nmax_concurrent_creates = 1\n") as app:
        # No reconciler: the first create stays in `creating`.
        assert post(app, "/api/sessions", {"repo_path": str(repo), "name": "first"}
                    ).status_code == 202
        refused = post(app, "/api/sessions", {"repo_path": str(repo), "name": "second"})
        assert refused.status_code == 429
        assert "being created" in refused.json()["error"]
        assert "max_concurrent_creates" in refused.json()["error"]


def _nothing_of(app: Appliance, session: dict[str, Any]) -> bool:
    return not app.containers(session["id"]) and not Path(session["worktree_path"]).exists()


def _wait_all_done(app: Appliance, session: dict[str, Any]) -> None:
    """Until nothing more can come of ``session``, then that nothing is there. The marker
    is its row gone: the reconciler removes it with its Delete, which runs only once the
    session's create has ended (one action at a time per session) and undone what it made;
    and it plans nothing for a session without a row."""
    wait_for(lambda: not app.client().get("/api/sessions", all="true")["sessions"],
             what="the session's row removed by the reconciler's delete")
    assert _nothing_of(app, session), "something survived the delete"


def test_delete_cancels_a_queued_create(tmp_path: Path, repo: Path) -> None:
    with running(tmp_path / "home", "api") as app:
        s = post(app, "/api/sessions", {"repo_path": str(repo), "name": "queued"}
                 ).json()["session"]
        app.start("reconciler")
        answer = delete(app, s["id"])
        assert answer.status_code == 202
        _wait_all_done(app, s)


def test_delete_cancels_a_create_under_way(tmp_path: Path, repo: Path) -> None:
    with running(tmp_path / "home", "api", "reconciler") as app:
        for round_ in range(5):
            s = post(app, "/api/sessions", {"repo_path": str(repo), "name": f"busy{round_}"}
                     ).json()["session"]
            step = ("worktree", "container", "start", "worktree", "container")[round_]

            def reached(sid: str = s["id"], step: str = step) -> bool:
                events = app.client().get(f"/api/sessions/{sid}/events")["events"]
                return any(e["payload"].get("step") == step for e in events)

            wait_for(reached, interval=0.005, what=f"the {step} step")
            assert delete(app, s["id"]).status_code == 202
            _wait_all_done(app, s)
        assert not app.client().get("/api/sessions", all="true")["sessions"]
