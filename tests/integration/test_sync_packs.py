"""The hostile agent against the person's object folder, from inside a real session
container as uid 1000: every sync writes a pack there (past git's 100 objects; loose
objects below), and host git runs with auto-gc off. An agent committing in a loop, one sync
a second, left a pack a second in the person's repository, every one of which each git the
person runs there (and every session borrowing the folder) looks in."""

from __future__ import annotations

from pathlib import Path

from appliance import repos
from tests.conftest import user_git
from tests.support.agent_app import as_agent, create
from tests.support.appliance import Appliance, wait_for

COMMITS = repos.PACK_LIMIT + 4


def test_a_session_committing_in_a_loop_leaves_few_packs_and_loses_nothing(
        app: Appliance, repo: Path) -> None:
    """The agent makes commits of 120 new files each and lets each one come in. The
    person's repository ends with no more than the packs a sync rolls up at, and keeps
    everything: the session's commits, an object of the person's that nothing reaches."""
    (repo.parent / "mine.txt").write_text("the person's, unreachable\n")
    mine = user_git(repo, "hash-object", "-w", str(repo.parent / "mine.txt"))
    s = create(app, repo, "loop")
    for i in range(COMMITS):
        commit = as_agent(app, s, f"""
            set -e
            for j in $(seq 120); do echo "{i} $j" > f$j; done
            git add -A && git commit -qm 'commit {i}' && git rev-parse HEAD""").split()[-1]
        wait_for(lambda c=commit: user_git(repo, "rev-parse", s["branch"]) == c,
                 timeout=60, what=f"commit {i} to come in")
    packs = len(list((repo / ".git" / "objects" / "pack").glob("*.pack")))
    assert packs <= repos.PACK_LIMIT, f"{packs} packs after {COMMITS} syncs"
    assert user_git(repo, "rev-list", "--count", s["branch"]) == str(COMMITS + 1)
    assert user_git(repo, "cat-file", "-p", mine) == "the person's, unreachable"
    assert "error" not in user_git(repo, "fsck", "--no-dangling", "--no-progress")
    assert as_agent(app, s, "git log --format=%s | head -1").strip() == f"commit {COMMITS - 1}"
