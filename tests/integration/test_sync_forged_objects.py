"""The hostile agent against what one sync brings into the person's repository
(``[limits] max_sync_mib``), with an object that answers two ways, from inside a real
session container as uid 1000.

The sync counts what the agent's new commits hold (``rev-list`` and ``cat-file`` in a
shadow that reads the agent's objects) and then fetches them, from the same shadow. git
believes a pack's index for the names of its objects, and looks first in the pack it last
found something in. The agent packed 64 MiB of zeros beside a copy of the person's
``main`` commit, and a file of two bytes under the zeros' name in a newer pack: the count
asked for the zeros first and read two bytes; the fetch read ``main`` first (what the
person's repository has) and sent the zeros, 64 MiB over a limit of 32, brought in. What is
counted is now what came in: the commit is fetched into a shadow of the person's objects
first, each object named from its content, counted there, and brought in from there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import user_git
from tests.integration.test_containment_git import refs, small_commit_synced
from tests.support.agent_app import create, in_container
from tests.support.appliance import running, wait_for
from tests.support.forged_pack import two_faced


def test_an_object_that_answers_two_ways_floods_no_repository(repo: Path, tmp_path: Path,
                                                              agent_image: str) -> None:
    with running(tmp_path / "home", "api", "reconciler", image=agent_image,
                 config="[limits]\nmax_sync_mib = 32\n") as app:
        s = create(app, repo, "twofaced")
        good = small_commit_synced(app, repo, s)
        app.stop("reconciler")  # the zeros' commit is brought in once it lies, not before
        _, out = in_container(app, s, two_faced("/dev/zero", 64))
        blob = out.split("blob=")[1].split()[0]
        assert out.split()[-1] == "2", out  # the control: the newer pack answers first
        app.start("reconciler")
        branch = f"refs/heads/{s['branch']}"

        def outcome() -> str | None:
            said = app.session(s["id"]).get("status_reason") or ""
            if "max_sync_mib" in said:
                return said
            return "brought in" if refs(repo)[branch] != good else None

        reason = wait_for(outcome, what="the sync to bring the commit in or refuse it")
        assert refs(repo)[branch] == good, \
            f"64 MiB came in under a 32 MiB max_sync_mib, so: {reason}"
        assert "64 MiB, more than the 32 MiB" in reason, reason
        with pytest.raises(AssertionError, match="cat-file"):
            user_git(repo, "cat-file", "-e", blob)  # not in the person's objects
