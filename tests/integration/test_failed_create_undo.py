"""A failed create never removes what a container it could not remove runs on.

Real: the API, the reconciler, the CLI, git and the engine, behind a relay that fails the
calls named (:mod:`tests.support.engine_faults`). The create made the session's container;
the engine started it but answered the start with an error (a permanent one), then refused
to remove it. The create's undo removed the workspace and the agent's home anyway: the
container ran on with its mounts emptied under it (the agent in it racing the removal), and
nothing would ever bring them back. They stay as long as the container does, and the
session's reason says so; the reconciler's removal of the failed session's container keeps
failing, and keeps them. The person's delete, once the engine removes containers again,
removes the container, then the workspace: nothing is left, no orphan.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import docker
import pytest

from appliance.errors import NotFound
from tests.conftest import AGENT_UID
from tests.support.appliance import Appliance, running, wait_for
from tests.support.engine_faults import REMOVE, START, Faults, error

pytestmark = pytest.mark.docker


def told(app: Appliance, sid: str, kind: str, needle: str) -> list[dict[str, Any]]:
    events = app.client().get(f"/api/sessions/{sid}/events")["events"]
    return [e for e in events if e["kind"] == kind and needle in str(e["payload"])]


def gone(app: Appliance, sid: str) -> bool:
    try:
        app.session(sid)
    except NotFound:
        return True
    return False


def test_a_failed_create_keeps_what_its_unremovable_container_mounts(
        tmp_path: Path, engine: docker.DockerClient, repo: Path) -> None:
    relay = Faults(tmp_path / "engine.sock")
    relay.belie[START] = error(400, "the container started, then its network hook failed")
    relay.refuse[REMOVE] = error(500, "driver failed to remove root filesystem: busy")
    with relay.running(), running(tmp_path / "home", "api", "reconciler",
                                  env={"DOCKER_HOST": f"unix://{relay.path}"}) as app:
        made = app.cli("create", "--repo", str(repo), "--name", "stuck", "--prompt", "p",
                       check=False)
        s = app.wait_phase("stuck", "failed")
        [c] = app.containers(s["id"])
        assert c.status == "running", c.status  # the engine did start it
        worktree, home = Path(s["worktree_path"]), app.settings.homes_dir / s["id"]
        assert worktree.is_dir() and home.is_dir(), \
            "the workspace was removed while the container that mounts it still runs"
        assert "could not be removed" in s["status_reason"], s["status_reason"]
        assert made.returncode == 1 and "could not be removed" in made.stderr, made.stderr
        assert told(app, s["id"], "undo_incomplete", c.id)

        # The reconciler tries to remove the failed session's container: refused, kept.
        wait_for(lambda: told(app, s["id"], "action_failed", "removing a container"),
                 what="the reconciler's refused removal")
        app.cli("delete", "--force", "--no-wait", "stuck")
        wait_for(lambda: told(app, s["id"], "action_failed", "deleting"),
                 what="the delete's refused removal")
        assert worktree.is_dir() and home.is_dir()
        assert [x.id for x in app.containers(s["id"])] == [c.id]

        with relay.lock:  # the engine removes containers again
            relay.refuse.clear()
        wait_for(lambda: gone(app, s["id"]), what="the delete to finish")
        assert app.containers() == []
        assert not worktree.exists() and not home.exists()
        assert relay.failed, "no call was failed"


def test_a_retried_create_keeps_the_workspace_an_earlier_container_ran_on(
        tmp_path: Path, engine: docker.DockerClient, repo: Path) -> None:
    """The container the first attempt could not remove ran on the workspace, the agent in
    it wrote there; once it is gone the person retries, and that create fails too. Its undo
    took the workspace for its own (the session never ran) and removed the agent's file
    with it; a workspace that stood before the create is kept."""
    relay = Faults(tmp_path / "engine.sock")
    relay.belie[START] = error(400, "the container started, then its network hook failed")
    relay.refuse[REMOVE] = error(500, "driver failed to remove root filesystem: busy")
    with relay.running(), running(tmp_path / "home", "api", "reconciler",
                                  env={"DOCKER_HOST": f"unix://{relay.path}"}) as app:
        app.cli("create", "--repo", str(repo), "--name", "again", "--prompt", "p", check=False)
        s = app.wait_phase("again", "failed")
        [c] = app.containers(s["id"])
        done = c.exec_run(["sh", "-c", "echo mine > /workspace/agent-note.txt"],
                          user=f"{AGENT_UID}:{AGENT_UID}")
        assert done.exit_code == 0, done.output
        note = Path(s["worktree_path"]) / "agent-note.txt"
        assert note.read_text() == "mine\n"

        with relay.lock:  # the engine removes containers again: the failed one's goes
            relay.refuse.clear()
        wait_for(lambda: not app.containers(s["id"]), what="the leftover's removal")
        app.cli("retry", "--no-wait", "again")
        wait_for(lambda: len(told(app, s["id"], "progress", "creating container")) == 2,
                 what="the retry's container")
        after = app.wait_phase("again", "failed")
        assert app.containers(s["id"]) == []
        assert note.is_file(), "a retried create's undo removed the agent's work"
        assert "could not be removed" not in after["status_reason"], after["status_reason"]


def test_a_create_cancelled_by_a_delete_keeps_what_its_container_mounts(
        tmp_path: Path, engine: docker.DockerClient, repo: Path) -> None:
    """The person deletes the session while its container starts; the engine will not remove
    the container. The workspace and the agent home stay under the running container, the
    delete, tried again at each pass, says its step once (it wrote it at every pass), and
    removes them once the engine has removed the container."""
    relay = Faults(tmp_path / "engine.sock")
    relay.hold = START
    relay.refuse[REMOVE] = error(500, "driver failed to remove root filesystem: busy")
    with relay.running(), running(tmp_path / "home", "api", "reconciler",
                                  env={"DOCKER_HOST": f"unix://{relay.path}"}) as app:
        # The person's delete answers once the create is undone (or its wait is over).
        http = app.http(timeout=120)
        deleting = threading.Thread(target=lambda: http.delete("/api/sessions/cut"))
        try:
            app.cli("create", "--no-wait", "--repo", str(repo), "--name", "cut", "--prompt", "p")
            s = app.session("cut")
            assert relay.holding.wait(timeout=60), "the start never came"
            deleting.start()
            wait_for(lambda: "cancelling the Create of cut" in app.log("reconciler"),
                     what="the create's cancel")
        finally:
            relay.release.set()  # the start goes on: the container runs, the create is cancelled
        deleting.join()
        wait_for(lambda: app.log("reconciler").count("cut: deleting failed") >= 3,
                 what="the delete's refused removals, after the create's undo")
        [c] = app.containers(s["id"])
        assert c.status == "running", c.status
        worktree, home = Path(s["worktree_path"]), app.settings.homes_dir / s["id"]
        assert worktree.is_dir() and home.is_dir(), \
            "the cancelled create removed the workspace under its running container"
        # Each pass tries the delete again, and says what it does once: it wrote its step
        # at each, some 300 events a second into the journal.
        assert len(told(app, s["id"], "progress", "removing the container")) == 1

        with relay.lock:
            relay.refuse.clear()
        wait_for(lambda: gone(app, s["id"]), what="the delete to finish")
        assert app.containers() == []
        assert not worktree.exists() and not home.exists()


def test_a_delete_the_engine_refuses_is_tried_at_each_pass_not_in_a_loop(
        tmp_path: Path, engine: docker.DockerClient, repo: Path) -> None:
    """While the engine refused to remove a deleted session's container, the reconciler
    tried the delete again the moment the last try ended: thousands of tries and log lines
    a minute, a core of the machine spent. A failed action waits for the next pass a change
    brings (or the resync): with the resync an hour off, the tries follow the changes the
    test makes, one each."""
    relay = Faults(tmp_path / "engine.sock")
    with relay.running(), running(tmp_path / "home", "api", "reconciler",
                                  env={"DOCKER_HOST": f"unix://{relay.path}"},
                                  reconciler="resync_seconds = 3600\n") as app:
        for name in ("held", "other"):
            app.cli("create", "--repo", str(repo), "--name", name, "--prompt", "p")
            app.wait_phase(name, "running")
        s = app.session("held")
        with relay.lock:
            relay.refuse[REMOVE] = error(500, "driver failed to remove root filesystem: busy")
        app.cli("delete", "--force", "--no-wait", "held")
        wait_for(lambda: relay.failed, what="the delete's first refused removal")
        for _ in range(3):  # a change: the next pass, and one more try
            tried = len(relay.failed)
            app.hook("other", "PreToolUse")
            wait_for(lambda t=tried: len(relay.failed) > t, what="the try of the next pass")
        assert len(relay.failed) <= 8, f"{len(relay.failed)} tries for 3 changes"

        with relay.lock:
            relay.refuse.clear()
        app.hook("other", "PreToolUse")
        wait_for(lambda: gone(app, s["id"]), what="the delete to finish")
        assert app.containers(s["id"]) == []
