"""The hostile agent against the person's ``.git`` on a checkout elsewhere, from inside a
real session container as uid 1000.

A tree entry git on macOS or Windows reads as ``.git`` (``.GIT``, ``.git.``, ``git~1``, an
HFS-ignorable character inside it, an NTFS stream name) is a checkout that writes into the
repository's own ``.git`` there: its config, its hooks. The agent writes such a tree with
``git mktree`` (its checkout would refuse it) and commits it on its branch. The sync, whose
fetches check every object (``fsckObjects``), refuses it, and says why and what to do; the
person's repository never holds the tree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import user_git
from tests.integration.test_containment_git import refs, small_commit_synced
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance, wait_for

#: Names git reads as ``.git`` on some file system, as bash's ``$'...'`` spells them.
LOOK_ALIKES = (".GIT", ".git.", "'.git '", "git~1", r"$'.g\xe2\x80\x8cit'",
               "'.git::$INDEX_ALLOCATION'")


def dotgit_commit(name: str) -> str:
    """The agent's script: HEAD's tree with a folder ``name`` holding a ``config`` beside,
    committed on its branch without a checkout; prints the tree's and the commit's ids."""
    return ("c=$(echo '[core] fsmonitor = touch /tmp/pwned' | git hash-object -w --stdin) && "
            "d=$(printf '100644 blob %s\\tconfig\\n' $c | git mktree) && "
            "t=$( (git ls-tree HEAD; printf '040000 tree %s\\t%s\\n' $d " + name + ") "
            "| git mktree) && n=$(git commit-tree -p HEAD -m dotgit $t) && "
            "git update-ref HEAD $n && echo tree=$t commit=$n")


@pytest.mark.parametrize("name", [LOOK_ALIKES[0], LOOK_ALIKES[4]])
def test_a_dotgit_look_alike_never_reaches_the_persons_repository(
        app: Appliance, repo: Path, name: str) -> None:
    s = create(app, repo, "dotgit")
    good = small_commit_synced(app, repo, s)
    _, out = in_container(app, s, dotgit_commit(name))
    tree = out.split("tree=")[1].split()[0]
    branch = f"refs/heads/{s['branch']}"

    def outcome() -> str | None:
        said = app.session(s["id"]).get("status_reason") or ""
        if said:
            return said
        return "brought in" if refs(repo)[branch] != good else None

    reason = wait_for(outcome, what="the sync to bring the commit in or refuse it")
    assert refs(repo)[branch] == good, f"the look-alike came in: {reason}"
    with pytest.raises(AssertionError, match="cat-file"):
        user_git(repo, "cat-file", "-e", tree)  # not in the person's objects
    assert "a checkout on macOS or Windows" in reason and "git rm" in reason, reason
