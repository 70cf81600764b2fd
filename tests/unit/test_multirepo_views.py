"""Every view of a multi-repo session: how a repository is named and selected (a name is
looked up, never a path), the timeline's commits of every branch in one order with a
cursor that holds, the CLI's and the TUI's sections per repository (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appliance import multirepo, timeline
from appliance.errors import InvalidInput
from appliance.sessions import Agent, ExtraRepo, Session, SessionId
from appliance.timeline_git import BranchLog, commits, interleave
from cli import diffs
from cli.tui.detail import changed_files, pushed_commit
from cli.workflow import looked

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
ONE = Session(id=SessionId("0b9f6a43-1111-2222-3333-444455556666"), name="s",
              repo_path="/src/app", worktree_path="/home/worktrees/s", branch="clauderon/s",
              base_ref="main", image="img", agent=Agent.CLAUDE, created_at=T0, updated_at=T0)
MULTI = replace(ONE, extra_repos=(
    ExtraRepo(mount="lib", repo_path="/src/lib", base_ref="dev",
              worktree_path="/home/worktrees/s.repos/lib"),
    ExtraRepo(mount="docs", repo_path="/src/docs", base_ref="main",
              worktree_path="/home/worktrees/s.repos/docs")))


def test_every_repository_is_named_the_primary_first() -> None:
    views = multirepo.views(MULTI)
    assert [(v.key, v.label, v.primary, v.container_path, v.base_ref, v.worktree_path)
            for v in views] == [
        (".", "app", True, "/workspace", "main", "/home/worktrees/s"),
        ("lib", "lib", False, "/workspace/lib", "dev", "/home/worktrees/s.repos/lib"),
        ("docs", "docs", False, "/workspace/docs", "main", "/home/worktrees/s.repos/docs")]
    assert [v.key for v in multirepo.views(ONE)] == ["."]


@pytest.mark.parametrize("raw", [None, "", "."])
def test_the_primary_is_the_default(raw: str | None) -> None:
    assert multirepo.select(MULTI, raw).primary


@pytest.mark.parametrize("raw", ["nope", "../s.repos/lib", "/etc", "lib/..", "lib/", ".git",
                                 "s.repos", "..", "LIB", "lib\x00", "/home/worktrees/s"])
def test_a_repository_is_only_ever_looked_up(raw: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        multirepo.select(MULTI, raw)
    assert refused.value.field == "repo"
    assert "'.', 'lib', 'docs'" in refused.value.message
    with pytest.raises(InvalidInput):
        multirepo.select(ONE, "lib")  # another session's mount is not this one's


def log(key: str, *commits_newest_first: tuple[str, int | None]) -> BranchLog:
    view = multirepo.select(MULTI, key)
    return BranchLog(view=view, commits=tuple(
        (sha, None if minute is None else T0 + timedelta(minutes=minute), "a <a@x>",
         f"{sha} message") for sha, minute in commits_newest_first))


def test_branches_interleave_by_date_each_keeping_its_own_order() -> None:
    primary = log(".", ("p3", 30), ("p2", 5), ("p1", 10))  # p2 dated before p1: topology wins
    lib = log("lib", ("l2", 20), ("l1", 1))
    docs = log("docs", ("d1", None))  # no date: counts as now
    got = [(v.key, c[0]) for v, c in interleave([primary, lib, docs], low=T0, high=NOW)]
    assert got == [("lib", "l1"), (".", "p1"), (".", "p2"), ("lib", "l2"), (".", "p3"),
                   ("docs", "d1")]
    # A tie goes to the repository listed first as the newer one.
    tie = [(v.key, c[0]) for v, c in interleave([log(".", ("p", 3)), log("lib", ("l", 3))],
                                                low=T0, high=NOW)]
    assert tie == [("lib", "l"), (".", "p")]


def test_commits_name_their_repository_and_the_cursor_holds() -> None:
    logs = [log(".", ("p2", 30), ("p1", 10)), log("lib", ("l1", 20))]
    first = commits(logs, MULTI, None, now=NOW)
    assert [(e.pos, e.key, e.repo) for e in first.entries] == [
        (1, "cp1", "."), (2, "clib:l1", "lib"), (3, "cp2", ".")]
    assert first.entries[1].text.splitlines()[0] == "l1 · a <a@x> · lib"
    assert first.entries[0].text.splitlines()[0] == "p1 · a <a@x> · app"
    # The agent commits now in a further repository: what was listed keeps its position.
    later = [log(".", ("p2", 30), ("p1", 10)), log("lib", ("l2", None), ("l1", 20))]
    again = commits(later, MULTI, None, now=NOW)
    assert [e.key for e in again.entries] == ["cp1", "clib:l1", "cp2", "clib:l2"]
    assert [e.key for e in commits(later, MULTI, 3, now=NOW).entries] == ["cp1", "clib:l1"]
    # One repository: as before, no label in the text.
    alone = commits([log(".", ("p1", 10))], ONE, None, now=NOW)
    assert alone.entries[0].text.splitlines()[0] == "p1 · a <a@x>"
    assert alone.entries[0].key == "cp1" and alone.entries[0].repo == "."
    page = timeline.merge([first], 2)
    assert [e.key for e in page.entries] == ["clib:l1", "cp2"] and page.more


SECTIONS = {"repos": [
    {"repo": ".", "name": "app", "primary": True, "path": "/workspace", "base_ref": "main",
     "merge_base": "0123456789abcdef", "files": [{"status": "A", "path": "a.txt"}],
     "diff": "+a\x1b[31m\n", "truncated": False, "error": None},
    {"repo": "lib", "name": "lib", "primary": False, "path": "/workspace/lib",
     "base_ref": "dev", "merge_base": None, "files": [], "diff": "", "truncated": False,
     "error": None},
    {"repo": "docs", "name": "docs", "primary": False, "path": "/workspace/docs",
     "base_ref": "main", "merge_base": None, "files": [], "diff": "", "truncated": False,
     "error": "the workspace has no readable HEAD, nor a branch to read"}]}


def test_the_cli_prints_a_section_per_repository() -> None:
    assert diffs.render(SECTIONS, stat=False).splitlines() == [
        "== app (primary, /workspace) against main @ 0123456789ab", "+a[31m",
        "== lib (/workspace/lib) against dev", "(no changes)",
        "== docs (/workspace/docs) against main",
        "! the workspace has no readable HEAD, nor a branch to read"]
    assert diffs.render(SECTIONS, stat=True).splitlines()[1] == "A  a.txt"
    # An answer from before the sections: one repository.
    old = {"base_ref": "main", "merge_base": None, "files": [{"status": "M", "path": "x"}],
           "diff": "-x\n+y\n", "truncated": True}
    assert diffs.render(old, stat=False).splitlines() == [
        "== . (primary, /workspace) against main", "-x", "+y",
        "... (the diff is long; only its start is shown)"]


UNDONE = {"repos": [
    {**SECTIONS["repos"][0], "files": [], "diff": "",
     "committed": {"commit": "fedcba9876543210", "diff": "+evil\x1b[31m\n", "truncated": False,
                   "files": [{"status": "M", "path": "src/app.py", "work_tree": "undone"},
                             {"status": "A", "path": "b.txt", "work_tree": "differs"},
                             {"status": "A", "path": "c.txt", "work_tree": None}]},
     "uncommitted": {"files": [{"status": "M", "path": "src/app.py"},
                               {"status": "M", "path": "b.txt"}],
                     "diff": "-evil\n", "truncated": False}}]}


def test_the_cli_shows_what_a_push_sends_apart_and_marks_what_the_work_tree_undoes() -> None:
    assert diffs.render(UNDONE, stat=False).splitlines() == [
        "== app (primary, /workspace) against main @ 0123456789ab",
        "-- committed @ fedcba9876543210 (what a push sends)",
        "! src/app.py: committed; the work tree undoes it",
        "! b.txt: committed; the work tree holds it otherwise",
        "+evil[31m",
        "-- not committed (the work tree; no push sends it)",
        "-evil"]
    assert diffs.render(UNDONE, stat=True).splitlines()[2:] == [
        "M  src/app.py  (committed; the work tree undoes it)",
        "A  b.txt  (committed; the work tree holds it otherwise)",
        "A  c.txt",
        "-- not committed (the work tree; no push sends it)",
        "M  src/app.py", "M  b.txt"]
    # A pod's branch: its work tree is not read.
    pod = {"repos": [{**UNDONE["repos"][0], "uncommitted": None}]}
    assert "not committed" not in diffs.render(pod, stat=False)


def test_the_tui_lists_committed_files_apart_and_marks_what_the_work_tree_undoes() -> None:
    lines = [line.markup for line in changed_files({**UNDONE["repos"][0], **UNDONE})]
    assert lines[1:] == [
        "[b]Changed files[/b] (3)",
        "[b]Committed @ fedcba987654[/b] (what a push sends; 3)",
        "M src/app.py [b red](committed; the work tree undoes it)[/b red]",
        "A b.txt [b red](committed; the work tree holds it otherwise)[/b red]",
        "A c.txt",
        "[b]Not committed[/b] (the work tree; 2)",
        "M src/app.py", "M b.txt"]


def test_a_head_that_cannot_be_read_is_said_before_what_a_push_sends() -> None:
    note = "the workspace's HEAD cannot be read\x1b[31m"
    body = {"repos": [{**UNDONE["repos"][0], "note": note}]}
    assert diffs.render(body, stat=True).splitlines()[1:3] == [
        "! the workspace's HEAD cannot be read[31m",
        "-- committed @ fedcba9876543210 (what a push sends)"]
    lines = [line.markup for line in changed_files({**body["repos"][0], **body})]
    assert lines[2:4] == ["[yellow]the workspace's HEAD cannot be read[31m[/yellow]",
                          "[b]Committed @ fedcba987654[/b] (what a push sends; 3)"], lines
    # No note, no line.
    assert not any("HEAD" in line for line in diffs.render(UNDONE, stat=True).splitlines())


def test_the_tui_lists_changed_files_per_repository() -> None:
    lines = [line.markup for line in changed_files(SECTIONS)]
    assert [line for line in lines if line.startswith("[b]")] == [
        "[b]Changed files in app[/b] (primary, /workspace; 1)",
        "[b]Changed files in lib[/b] (/workspace/lib; 0)",
        "[b]Changed files in docs[/b] (/workspace/docs; 0)"]
    assert "[red]the workspace has no readable HEAD, nor a branch to read[/red]" in lines
    one = {"files": [{"status": "M", "path": "x"}], "repos": SECTIONS["repos"][:1]}
    assert changed_files(one)[1].markup == "[b]Changed files[/b] (1)"


#: The answer's top level: its primary's section.
PRIMARY = {**UNDONE["repos"][0], **UNDONE}


@pytest.mark.parametrize(("body", "pinned"), [
    (PRIMARY, ("fedcba9876543210", 3, "")),
    ({"committed": {"commit": "ab", "subject": "fix\x1b[2J", "files": []}},
     ("ab", 0, "fix[2J")),  # the agent's subject, inert
    ({"committed": {"commit": None, "files": []}}, None),  # nothing committed
    ({"files": []}, None),  # an API from before the committed part
    (None, None),  # the pane has not read the changes
])
def test_the_tui_pushes_the_commit_its_pane_showed(body: Any, pinned: Any) -> None:
    assert pushed_commit(body) == pinned


def test_clauderon_push_names_the_commit_it_pins() -> None:
    assert looked(PRIMARY) == ("fedcba9876543210",
                              "fedcba9876543210 (3 files against main)")
    said = {**PRIMARY, "committed": {**PRIMARY["committed"], "subject": "add \x1b[2Jx"}}
    assert looked(said)[1] == "fedcba9876543210 (3 files against main): add [2Jx"
    with pytest.raises(InvalidInput, match="nothing is committed"):
        looked({"committed": {"commit": None, "files": []}})
