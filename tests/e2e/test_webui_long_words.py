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
from playwright.sync_api import Browser, expect

from tests.e2e.webui_browser import DESKTOP, PHONE, watched
from tests.integration.test_transcript_containment import HOME, append, start_session
from tests.support.appliance import Appliance
from tests.support.hostile import agent_argv

pytestmark = pytest.mark.e2e

WORD = "Overflow" * 40


def test_one_long_word_of_the_agents_stays_inside_the_chat(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    http = appliance.http(timeout=15)
    session, container = start_session(appliance, http, repo, "claude")
    sid, name = session["id"], session["name"]
    folder = f"{HOME}/.claude/projects/-workspace"
    todos = [{"content": f"plan {WORD}", "status": "pending"}]
    lines = [{"type": "assistant", "message": {"role": "assistant", "content": [
        {"type": "tool_use", "id": "p1", "name": "TodoWrite", "input": {"todos": todos}}]}},
        {"type": "assistant", "message": {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": f"Tool{WORD}",
             "input": {"command": "ls"}}]}}]
    agent_argv(container, ["mkdir", "-p", folder])
    append(container, f"{folder}/{sid}.jsonl", *(json.dumps(x) for x in lines))
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
