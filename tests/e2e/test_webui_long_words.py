"""One long word of the agent's in the chat, in real headless Chromium against the real API
and engine: the agent writes its transcript in its real container as its own uid.

A word with no place to break (a hash, a URL, or one made to) was drawn whole wherever a
rule did not say to break it: a tool's name of the agent's ran past the chat's edge, and
the command the tool ran, drawn beside it, went out of sight.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, expect

from tests.e2e.test_webui_pulls import app, on_github  # noqa: F401 - the app fixture
from tests.e2e.webui_browser import DESKTOP, PHONE, watched
from tests.integration.test_transcript_containment import claude_says, start_session
from tests.support.agent_app import as_agent
from tests.support.appliance import Appliance
from tests.support.fake_github import FakeGitHub
from tests.support.hostile import agent_argv

pytestmark = pytest.mark.e2e

WORD = "Overflow" * 40


def assert_inside(box: Locator, what: str) -> None:
    """Nothing in ``box`` is drawn past its right edge, and the page is no wider than its
    window (a person would have to scroll sideways to read what went past)."""
    found = box.evaluate(
        "e => [...e.querySelectorAll('*')].filter(x => x.getBoundingClientRect().right"
        " > e.getBoundingClientRect().right + 1).map(x => x.className || x.tagName)")
    assert found == [], f"drawn past the {what}'s edge: {found}"
    wide = box.page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert wide[0] <= wide[1], f"the page is {wide[0]} px wide in a window of {wide[1]}"


def test_one_long_word_of_the_agents_stays_inside_the_chat(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    sid, name = session["id"], session["name"]
    todos = [{"content": f"plan {WORD}", "status": "pending"}]
    lines = [{"type": "assistant", "message": {"role": "assistant", "content": [
        {"type": "tool_use", "id": "p1", "name": "TodoWrite", "input": {"todos": todos}}]}},
        {"type": "assistant", "message": {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": f"Tool{WORD}",
             "input": {"command": "ls"}}]}}]
    claude_says(container, sid, *(json.dumps(x) for x in lines))
    for viewport in (PHONE, DESKTOP):
        with watched(browser, appliance, viewport) as desk:
            page = desk.page
            page.goto(f"/s/{name}/chat")
            messages = page.locator(".chat .messages")
            expect(messages.locator(".todos li")).to_contain_text("plan Overflow")
            expect(messages.locator(".tool-name")).to_contain_text("ToolOverflow")
            wide = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
            assert wide[0] <= wide[1], f"the page is {wide[0]} px wide in a window of {wide[1]}"
            for part in (".todos li", ".tool-name", "details.tool summary"):
                found = messages.locator(part).first.evaluate(
                    "e => [e.getBoundingClientRect().right,"
                    " e.closest('.messages').getBoundingClientRect().right]")
                assert found[0] <= found[1] + 1, f"{part} ends at {found[0]} past {found[1]}"
            # The command the tool ran is still drawn beside its name, not pushed out.
            arg = messages.locator(".tool-arg").first.evaluate(
                "e => [e.getBoundingClientRect().left, e.getBoundingClientRect().width,"
                " e.closest('summary').getBoundingClientRect().right]")
            assert arg[1] > 0 and arg[0] < arg[2], f"the command is drawn at {arg}"


def test_one_long_word_of_the_agents_stays_inside_the_pull_request_panel(
        browser: Browser, app: Appliance, github: FakeGitHub, repo: Path) -> None:  # noqa: F811
    """The pull request's title is the agent's commit subject and a check's name a job its
    workflow file names, both read back from GitHub: one long word in either ran out of
    the Info tab's panel, past a phone's screen."""
    s = on_github(app, github, repo, "wide")
    head = as_agent(app, s, "echo a > a.txt && git add a.txt && "
                            f"git commit -qm 'Fix{WORD[:200]}' && git rev-parse HEAD").split()[-1]
    github.checks[head] = [{"id": 1, "name": f"lint{WORD[:200]}", "status": "in_progress",
                            "conclusion": None}]
    with watched(browser, app, PHONE) as w:
        page = w.page
        page.goto("/s/wide/info")
        page.get_by_test_id("push-look").click()
        page.get_by_test_id("push-pr").click()
        expect(page.get_by_test_id("pull-checks")).to_contain_text("in progress")
        panel = page.get_by_test_id("pull-panel")
        assert_inside(panel, "panel")


def test_one_long_file_name_of_the_agents_stays_inside_the_changed_files(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """A changed file's name is the agent's: one with no place to break ran out of the
    Files tab's list of changed files, past a phone's screen, and what the row says after
    the name (a committed file the work tree undoes) with it."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    agent_argv(container, ["touch", f"/workspace/{WORD[:240]}"])
    with watched(browser, appliance, PHONE) as w:
        page = w.page
        page.goto(f"/s/{session['name']}/files")
        page.get_by_test_id("files-diff").click()
        changed = page.get_by_test_id("diff").locator(".changed")
        expect(changed).to_contain_text("OverflowOverflow")
        assert_inside(changed, "list")


#: File names of the agent's whose end is what a person must read: a document's extension
#: far after a document's, past spaces or past letters.
DISGUISED = ("report.pdf" + " " * 120 + ".exe", "report.pdf" + "_" * 150 + ".sh")


def test_the_end_of_a_long_file_name_stays_in_sight_in_the_tree(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """The Files tree cut a long name at the row's edge with an ellipsis: ``report.pdf``,
    120 spaces, ``.exe`` read as ``report.pdf…``, a document, on a phone. The name now
    wraps in its row, each character of it in sight, its end too."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    for name in DISGUISED:
        agent_argv(container, ["touch", f"/workspace/{name}"])
    with watched(browser, appliance, PHONE) as w:
        page = w.page
        page.goto(f"/s/{session['name']}/files")
        for name in DISGUISED:
            row = page.locator(f"[data-path='{name}'] .tree-name")
            expect(row).to_be_visible()
            clipped = row.evaluate("e => e.scrollWidth - e.clientWidth")
            assert clipped <= 1, f"{clipped} px of {name!r} cut off"
            end = row.evaluate(
                "e => { const w = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);"
                " let t = null; while (w.nextNode()) t = w.currentNode;"
                " const r = document.createRange(); r.setStart(t, t.length - 4);"
                " r.setEnd(t, t.length); const b = r.getBoundingClientRect();"
                " const box = e.getBoundingClientRect();"
                " return [t.data.slice(-4), b.right <= box.right + 1 && b.width > 0] }")
            assert end == [name[-4:], True], f"the end of {name!r} is out of sight: {end}"
        assert_inside(page.locator(".tree-pane"), "tree")
