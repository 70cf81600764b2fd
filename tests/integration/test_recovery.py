"""The recovery verbs on the real appliance and engine: recreate fresh (a new workspace from
the branch's last commit and a new agent home; commits kept, uncommitted work gone, as its
warning says) and update to the newest image (a new container from the newest build of the
session's image tag; the workspace kept). Through the real CLI, which says what a verb
loses and asks first."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.conftest import AGENT_UID
from tests.support.agent_app import create
from tests.support.appliance import Appliance, wait_for
from tests.support.engine import BASE_IMAGE


def as_agent_git(worktree: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(worktree), "GIT_AUTHOR_NAME": "A",
           "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@x"}
    done = subprocess.run(["git", *args], cwd=worktree, env=env, capture_output=True,
                          text=True, check=True, user=AGENT_UID, group=AGENT_UID,
                          extra_groups=[])
    return done.stdout.strip()


def recreated(app: Appliance, name: str, old: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        s = app.session(name)
        ok = s["phase"] == "running" and s["backend_id"] not in (None, old) \
            and s["rebuild"] is None
        return s if ok else None
    return wait_for(done, timeout=120, what=f"{name} to be recreated")


def test_recreate_fresh_keeps_commits_and_drops_the_rest(appliance: Appliance,
                                                         repo: Path) -> None:
    s = create(appliance, repo, "fresh")
    work = Path(s["worktree_path"])
    (work / "done.txt").write_text("committed\n")
    as_agent_git(work, "add", "done.txt")
    as_agent_git(work, "commit", "-qm", "done")
    tip = as_agent_git(work, "rev-parse", "HEAD")
    (work / "scratch.txt").write_text("uncommitted\n")
    home = appliance.settings.homes_dir / s["id"]
    (home / "remember.txt").write_text("conversation\n")

    asked = appliance.cli("recreate-fresh", "fresh", check=False, input="n\n")
    assert asked.returncode == 1 and "Discards uncommitted work" in asked.stderr
    assert (work / "scratch.txt").exists()  # declined: nothing done

    appliance.cli("recreate-fresh", "fresh", "-y")
    after = recreated(appliance, "fresh", s["backend_id"])
    assert (work / "done.txt").read_text() == "committed\n"
    assert not (work / "scratch.txt").exists()
    assert not (home / "remember.txt").exists()
    assert as_agent_git(work, "rev-parse", "HEAD") == tip
    assert subprocess.run(["git", "-c", "safe.directory=*", "rev-parse", s["branch"]],
                          cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip() == tip
    events = [e["kind"] for e in appliance.client().get(
        f"/api/sessions/{after['id']}/events")["events"]]
    assert "recreate" in events


@pytest.fixture
def own_image(engine: docker.DockerClient) -> Iterator[str]:
    tag = f"clauderon-test-update-{uuid.uuid4().hex[:8]}:latest"
    yield tag
    with contextlib.suppress(docker.errors.ImageNotFound):
        engine.images.remove(tag, force=True)


def build(engine: docker.DockerClient, tag: str, marker: str) -> None:
    dockerfile = f"FROM {BASE_IMAGE}\nRUN echo {marker} > /marker\n".encode()
    engine.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)


def test_update_image_runs_the_newest_build_and_keeps_the_workspace(
        appliance: Appliance, repo: Path, engine: docker.DockerClient, own_image: str) -> None:
    build(engine, own_image, "first")
    appliance.cli("create", "--repo", str(repo), "--name", "newer", "--prompt", "p",
                  "--image", own_image)
    s = appliance.wait_phase("newer", "running")
    (Path(s["worktree_path"]) / "kept.txt").write_text("kept\n")

    def marker(session: dict[str, Any]) -> str:
        [c] = appliance.containers(session["id"])
        return str(c.exec_run(["cat", "/marker"]).output.decode().strip())

    assert marker(s) == "first"
    build(engine, own_image, "second")
    appliance.cli("update-image", "newer", "-y")
    after = recreated(appliance, "newer", s["backend_id"])
    assert marker(after) == "second"
    assert (Path(after["worktree_path"]) / "kept.txt").read_text() == "kept\n"
