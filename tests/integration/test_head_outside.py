"""The hostile agent's HEAD naming a file outside its workspace, from inside a real session
container as uid 1000, against the host's reads of the workspace (real engine, real git).

The host reads the workspace's ``HEAD`` itself, then the branch it names, one component at
a time from the workspace's folder without following a link. The branch's name is the
agent's text: ``ref: refs/heads/../../../..`` walked those ``..`` as folders, out of the
workspace and up to the host's root (a ``..`` there stays there), so the host, as root,
opened whatever file the agent named and took its content for the commit checked out.
git takes no such name for a branch: the host now reads it as git does, as no commit.
"""

from __future__ import annotations

import os
from pathlib import Path

from appliance import workspaces
from tests.conftest import user_git
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance


def test_a_head_naming_a_file_outside_the_workspace_is_not_read(
        app: Appliance, repo: Path, tmp_path: Path) -> None:
    # A file of the host's, outside every mount of the container, closed to all but root;
    # it holds a commit of the person's repository, so its reading leaves no trace.
    canary = tmp_path / "host-only" / "canary"
    canary.parent.mkdir(mode=0o700)
    base = user_git(repo, "rev-parse", "HEAD")
    canary.write_text(f"{base}\n")
    os.chmod(canary, 0o600)
    s = create(app, repo, "climber")
    workspace = app.settings.worktrees_dir / s["name"]
    assert workspaces.read_head(workspace) == base  # the control: its own HEAD is read
    climb = "../" * 64 + str(canary).lstrip("/")
    code, out = in_container(app, s, f"cat {canary} 2>&1; printf 'ref: refs/heads/{climb}\\n'"
                                     " > .git/HEAD && git rev-parse -q --verify HEAD", ok=False)
    assert base not in out, out  # the agent cannot read it itself
    assert code != 0, out  # and its own git finds no commit checked out (an unborn branch)

    assert workspaces.read_head(workspace) is None, \
        "the host read a file outside the workspace that the agent's HEAD named"
    diff = app.client().get(f"/api/sessions/{s['id']}/diff")
    assert "HEAD cannot be read" in (diff["note"] or ""), diff
