"""A session made on another session's workspace: the agent owns that repository whole,
its remotes too, so a session on it would take the agent's remotes for its own GitHub
repositories (and the host would run git there). Real appliance, real container (uid
1000), real git, a fake GitHub on loopback."""

from __future__ import annotations

from pathlib import Path

from tests.integration import test_pull_requests as pulls
from tests.support import agent_app
from tests.support.agent_app import create
from tests.support.appliance import Appliance
from tests.support.fake_github import FakeGitHub

app, origin = pulls.app, pulls.origin


def test_no_session_is_made_on_a_sessions_workspace(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """The agent added the person's other repository as a remote of its workspace; a
    session made on that folder (a person's wish to go on from the agent's work) took it
    as one of its own, and its agent opened issues there under the person's name. A
    session's workspace, or anything under the appliance's workspaces folder, is now no
    repository a session is made on: refused, naming the person's own repository."""
    s = create(app, origin, "nest")
    agent_app.in_container(app, s, "git remote add mine https://github.com/person/secret.git")
    for path in (s["worktree_path"], f"{s['worktree_path']}/."):
        done = app.cli("create", "--repo", path, "--name", "onit", "--prompt", "p",
                       check=False)
        made = app.session("onit") if done.returncode == 0 else None
        assert done.returncode != 0, f"made on the workspace, its own: {made}"
        assert "workspace" in done.stderr + done.stdout and str(origin) in \
            done.stderr + done.stdout, done.stderr
    # The control: the person's own repository takes a new session.
    other = create(app, origin, "beside")
    assert other["github_repos"] == [pulls.SLUG], other
