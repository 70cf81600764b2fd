"""A kept workspace that is itself a repository (README, "The user's repository": "In
``kept/<name>-<id>/`` the agent's repository is renamed ``.git-agent``, so no git you run
there finds it").

git finds a repository in a folder two ways: its ``.git``, or the folder itself when it
looks like a git directory (a ``HEAD``, ``objects/`` and ``refs/``: a bare repository, which
git 2.x still discovers by default). The agent writes those three and a ``config`` (with
``core.worktree`` and ``core.fsmonitor``) at the top of its workspace, then breaks its
branch so the delete keeps the workspace. Renaming ``.git`` leaves the folder itself a
repository: the user's ``git status`` there (or their shell prompt's) runs the agent's
fsmonitor as the user, on the host. The same with a repository of the agent's in a folder
of its workspace (``src/deep/.git``, its fsmonitor set): the user opens it to take a file
back, and their git finds it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import AGENT_UID, make_traversable
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance, wait_for

#: How the agent plants a repository of its own (``{markers}``: where its fsmonitor leaves a
#: mark), and the folders of the kept workspace where the user's git must find none.
PLANTS = {
    "baredecoy": ("mkdir -p objects refs && echo 'ref: refs/heads/main' > HEAD && "
             "printf '[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n"
             "\\tworktree = .\\n\\tfsmonitor = \"touch {markers}/fsmonitor; false\"\\n' > config",
             (".", "src")),
    "nested": ("git init -q src/deep && "
               "git -C src/deep config core.fsmonitor 'touch {markers}/fsmonitor; false'",
               ("src/deep",)),
}


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_a_kept_workspace_holds_no_repository_the_users_git_finds(
        app: Appliance, repo: Path, tmp_path: Path, plant: str) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    os.chmod(markers, 0o777)
    script, folders = PLANTS[plant]
    s = create(app, repo, plant)
    app.stop("reconciler")  # no pass brings anything in before the delete tries
    in_container(app, s, (f"echo work > work.txt && {script.format(markers=markers)} && "
                          f"echo {'1' * 40} > .git/refs/heads/{s['branch']}"))
    app.cli("delete", "--force", "--no-wait", plant)
    app.start("reconciler")
    wait_for(lambda: not Path(s["worktree_path"]).exists(), what="the workspace to go")
    kept = app.settings.kept_dir / f"{plant}-{s['id'][:8]}"
    assert (kept / "work.txt").read_text() == "work\n"
    assert (kept / ".git-agent").is_dir()
    make_traversable(kept)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    for where in folders:
        found = subprocess.run(["git", "status", "--short"], cwd=kept / where, env=env,
                               capture_output=True, text=True, check=False, user=AGENT_UID,
                               group=AGENT_UID, extra_groups=[])
        assert found.returncode == 128, found
        assert list(markers.iterdir()) == [], f"the agent's fsmonitor ran in {where}"
