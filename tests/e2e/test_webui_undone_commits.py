"""The Changes view in real headless Chromium, against an agent (uid 1000, in its real
container) that committed a backdoor, had it brought in, then put the file back as the fork
has it without committing.

A push, a pull request and a merge send the branch's commit, so the view shows it first
(what a push sends, the backdoor's line added), the file marked as one the work tree undoes,
and the work tree's uncommitted change apart.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.webui_browser import watched
from tests.integration.test_diff_undone_commits import BACKDOOR, UNDO, backdoored
from tests.integration.test_pull_requests import ELSEWHERE, repointed
from tests.support.agent_app import in_container
from tests.support.appliance import Appliance

pytestmark = pytest.mark.e2e


def test_the_changes_view_shows_the_committed_backdoor_the_work_tree_undoes(
        browser: Browser, app: Appliance, repo: Path) -> None:
    s, commit = backdoored(app, repo, "undoer")
    in_container(app, s, UNDO["checkout"])
    with watched(browser, app) as desk:
        page = desk.page
        page.goto(f"/s/{s['name']}/files")
        page.get_by_test_id("files-diff").click()
        committed = page.get_by_test_id("diff-committed")
        expect(committed).to_contain_text("what a push sends")
        expect(committed).to_contain_text(commit[:8])
        expect(committed.locator(".d-add")).to_contain_text(BACKDOOR)
        expect(committed.get_by_test_id("diff-undone")).to_have_text(
            ["committed; the work tree undoes it"])
        uncommitted = page.get_by_test_id("diff-uncommitted")
        expect(uncommitted).to_contain_text("no push sends it")
        expect(uncommitted.locator(".d-del")).to_contain_text(BACKDOOR)
        desk.shot("diff-undone")


def test_the_changes_view_shows_a_repointed_submodule_as_a_commit_not_undone(
        browser: Browser, app: Appliance, repo: Path) -> None:
    """The agent commits only a new commit for the person's submodule: the view names it in
    what a push sends with the commit it now points at, and says nothing of the work tree
    (which the diff never reads for a submodule), never that the work tree undoes it."""
    _, sent = repointed(app, repo, "resub")
    with watched(browser, app) as desk:
        page = desk.page
        page.goto("/s/resub/files")
        page.get_by_test_id("files-diff").click()
        committed = page.get_by_test_id("diff-committed")
        expect(committed).to_contain_text(sent[:8])
        expect(committed.locator(".changed li")).to_have_text(["Mvendor/lib"])
        expect(committed.locator(".d-add")).to_contain_text(f"+Subproject commit {ELSEWHERE}")
        expect(committed.locator(".d-del")).to_contain_text(f"-Subproject commit {'a' * 40}")
        expect(committed.get_by_test_id("diff-undone")).to_have_count(0)
        assert desk.errors == []
