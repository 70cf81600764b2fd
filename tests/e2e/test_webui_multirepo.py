"""The create form's further repositories in real Chromium: add and remove rows, a bad mount
name refused beside its own input (the 400 names ``repos[i].name``), then a three-repository
session whose Info tab shows every repository, whose Files tab picks the repository it
shows, whose diff has a section per repository under its name and whose timeline names
the repository of each commit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.webui_browser import TIMEOUT_MS, create_form, watched
from tests.integration.test_containment_git import user_git
from tests.support.appliance import Appliance, wait_for

pytestmark = pytest.mark.e2e
NAME = f"multi-{uuid.uuid4().hex[:8]}"


def test_create_a_multi_repo_session_from_the_form(
        browser: Browser, appliance: Appliance, repo: Path,
        repo_factory: Callable[..., Path]) -> None:
    lib = repo_factory("lib", files={"lib.txt": "lib\n"})
    docs = repo_factory("docs", files={"index.md": "docs\n"})
    with watched(browser, appliance) as desk:
        page = desk.page
        create_form(page, repo, NAME)
        add = page.get_by_test_id("add-repo")
        for _ in range(4):
            add.click()
        expect(add).to_be_disabled()  # the primary and four more
        page.get_by_test_id("remove-repo-3").click()
        page.get_by_test_id("remove-repo-2").click()
        expect(add).to_be_enabled()
        page.get_by_test_id("remove-repo-1").click()
        expect(page.get_by_test_id("extra-repo-1")).to_have_count(0)
        page.fill("#repos\\[0\\]\\.path", str(lib))
        page.fill("#repos\\[0\\]\\.name", "../x")
        add.click()
        page.fill("#repos\\[1\\]\\.path", str(docs))
        desk.expected.append(400)
        page.get_by_test_id("create-submit").click()
        expect(page.get_by_test_id("error-repos[0].name")).to_contain_text("plain folder name")
        assert appliance.client().get("/api/sessions")["sessions"] == []

        page.fill("#repos\\[0\\]\\.name", "shared")
        page.fill("#repos\\[1\\]\\.base", "main")
        page.get_by_test_id("create-submit").click()
        expect(page.get_by_test_id("create-progress")).to_be_visible()
        s = wait_for(lambda: appliance.session(NAME), what="the session")
        assert [(e["mount"], e["repo_path"], e["base_ref"]) for e in s["extra_repos"]] == [
            ("shared", str(lib), "main"), ("docs", str(docs), "main")]
        appliance.wait_phase(NAME, "running")
        page.goto(f"/s/{NAME}/info")
        expect(page.get_by_test_id("info-repo-shared")).to_contain_text(
            f"{lib} at /workspace/shared", timeout=TIMEOUT_MS)
        expect(page.get_by_test_id("info-repo-docs")).to_contain_text(str(docs))
        # The agent works in two of the three repositories.
        [c] = appliance.containers(s["id"])
        for where, text in (("/workspace", "in the primary"), ("/workspace/docs", "in docs")):
            done = c.exec_run(["sh", "-c", f"echo '{text}' > work.txt"], user="1000:1000",
                              workdir=where)
            assert done.exit_code == 0, done.output
        page.goto(f"/s/{NAME}/files")  # the files view picks the repository it shows
        picker = page.get_by_test_id("files-repo")
        expect(picker).to_have_value(".", timeout=TIMEOUT_MS)
        expect(page.locator(".tree-row[data-path='README.md']")).to_be_visible()
        picker.select_option("shared")
        page.locator(".tree-row[data-path='lib.txt']").click()
        expect(page.get_by_test_id("file-viewer")).to_contain_text("lib")
        expect(page.locator(".tree-row[data-path='README.md']")).to_have_count(0)
        picker.select_option("docs")
        page.locator(".tree-row[data-path='work.txt']").click()
        expect(page.get_by_test_id("file-viewer")).to_contain_text("in docs")
        # The diff: a section per repository under its name, the primary first.
        page.get_by_test_id("files-diff").click()
        names = page.get_by_test_id("diff-repo-name")
        expect(names).to_have_text([repo.name, "shared", "docs"], timeout=TIMEOUT_MS)
        expect(page.get_by_test_id("diff-repo-.")).to_contain_text("+in the primary")
        expect(page.get_by_test_id("diff-repo-.")).to_contain_text("(primary)")
        expect(page.get_by_test_id("diff-repo-shared")).to_contain_text("No changes yet.")
        docs_section = page.get_by_test_id("diff-repo-docs")
        expect(docs_section).to_contain_text("/workspace/docs")
        expect(docs_section).to_contain_text("+in docs")
        expect(docs_section).not_to_contain_text("in the primary")
        desk.shot("diff-multirepo")
        # The timeline's commits: every session branch's, each naming its repository.
        # (the base image has no git: the test commits as the agent's uid from outside)
        docs_ws = Path(s["extra_repos"][1]["worktree_path"])
        user_git(docs_ws, "add", "work.txt")
        user_git(docs_ws, "commit", "-qm", "commit in docs")
        page.goto(f"/s/{NAME}/timeline")
        commit = page.locator("[data-source='commit'][data-repo='docs']")
        expect(commit).to_contain_text("commit in docs", timeout=TIMEOUT_MS)
        expect(commit.get_by_test_id("timeline-repo")).to_have_text("docs")
