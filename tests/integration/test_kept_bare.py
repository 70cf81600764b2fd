"""A kept workspace that is itself a repository (README, "The user's repository": "In
``kept/<name>-<id>/`` the agent's repository is renamed ``.git-agent``, so no git you run
there finds it").

git finds a repository in a folder two ways: its ``.git``, or the folder itself when it
looks like a git directory (a ``HEAD``, ``objects/`` and ``refs/``: a bare repository, which
git 2.x still discovers by default). The agent writes those three and a ``config`` (with
``core.worktree`` and ``core.fsmonitor``) at the top of its workspace, then breaks its
branch so the delete keeps the workspace. Renaming ``.git`` leaves the folder itself a
repository: the user's ``git status`` there (or their shell prompt's) runs the agent's
fsmonitor as the user, on the host.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import AGENT_UID, make_traversable
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance, wait_for


def test_a_kept_workspace_that_looks_like_a_bare_repository_runs_nothing(
        app: Appliance, repo: Path, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    os.chmod(markers, 0o777)
    s = create(app, repo, "baredecoy")
    app.stop("reconciler")  # no pass brings anything in before the delete tries
    in_container(app, s, (
        "echo work > work.txt && mkdir -p objects refs && "
        "echo 'ref: refs/heads/main' > HEAD && "
        "printf '[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n"
        f"\\tworktree = .\\n\\tfsmonitor = \"touch {markers}/fsmonitor; false\"\\n' > config && "
        f"echo {'1' * 40} > .git/refs/heads/{s['branch']}"))
    app.cli("delete", "--force", "--no-wait", "baredecoy")
    app.start("reconciler")
    wait_for(lambda: not Path(s["worktree_path"]).exists(), what="the workspace to go")
    kept = app.settings.kept_dir / f"baredecoy-{s['id'][:8]}"
    assert (kept / "work.txt").read_text() == "work\n"
    assert (kept / ".git-agent").is_dir()
    make_traversable(kept)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    for where in (kept, kept / "src"):
        found = subprocess.run(["git", "status", "--short"], cwd=where, env=env,
                               capture_output=True, text=True, check=False, user=AGENT_UID,
                               group=AGENT_UID, extra_groups=[])
        assert found.returncode == 128, found
        assert list(markers.iterdir()) == [], f"the agent's fsmonitor ran in {where}"


def test_a_repository_nested_in_a_kept_workspace_runs_nothing(
        app: Appliance, repo: Path, tmp_path: Path) -> None:
    """The same with a repository of the agent's in a folder of its workspace
    (``src/.git``, its fsmonitor set): the user opens ``kept/.../src`` to take a file back
    and their git (or prompt) finds it."""
    markers = tmp_path / "markers"
    markers.mkdir()
    os.chmod(markers, 0o777)
    s = create(app, repo, "nested")
    app.stop("reconciler")
    in_container(app, s, (
        "echo work > work.txt && git init -q src/deep && "
        f"git -C src/deep config core.fsmonitor 'touch {markers}/fsmonitor; false' && "
        f"echo {'1' * 40} > .git/refs/heads/{s['branch']}"))
    app.cli("delete", "--force", "--no-wait", "nested")
    app.start("reconciler")
    wait_for(lambda: not Path(s["worktree_path"]).exists(), what="the workspace to go")
    kept = app.settings.kept_dir / f"nested-{s['id'][:8]}"
    assert (kept / "work.txt").read_text() == "work\n"
    make_traversable(kept)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    found = subprocess.run(["git", "status", "--short"], cwd=kept / "src" / "deep", env=env,
                           capture_output=True, text=True, check=False, user=AGENT_UID,
                           group=AGENT_UID, extra_groups=[])
    assert found.returncode == 128, found
    assert list(markers.iterdir()) == [], "the agent's fsmonitor ran in src/deep"
