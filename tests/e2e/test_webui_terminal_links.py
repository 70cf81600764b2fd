"""Hyperlinks the agent writes to the web terminal, in real headless Chromium against the
real API and engine.

The web terminal draws whatever reaches the console's pseudo-terminal, and the agent owns
it: the attach runs as the agent's uid, so the agent writes to the viewer's terminal device
directly (past tmux, in the agent's image; here, the base image's plain shell). xterm.js
turns an OSC 8 hyperlink into a link, and its own handler asked with the browser's
``confirm()``, naming the target as the agent spelt it: a target with a user name
(``http://github.com@elsewhere/``) reads as the first host and goes to the second. The
terminal's links now go through the chat's: the whole destination in the app's own dialog,
in the form the browser will open; a target naming a user is no link.

"The internet" is a listener on loopback (:class:`AttackSite`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.e2e.webui_browser import AttackSite, agent_terminal, to_terminals
from tests.support.appliance import Appliance, wait_for

pytestmark = pytest.mark.e2e

#: Writes each (target, words) pair of its arguments as an OSC 8 hyperlink, one a line.
WRITE = r"""
  printf '\033]2;pwned-title\007\033]0;pwned-title\007'  # and the window's title, first
  while [ $# -ge 2 ]; do
    printf '\033]8;;%s\033\\%s\033]8;;\033\\\r\n' "$1" "$2"; shift 2
  done
"""


def point(page: Page, words: str) -> tuple[float, float]:
    """A point on the words, which start a line of the terminal's screen (its rows lie
    under a layer that takes the mouse, so the mouse goes there, not to an element)."""
    rows = page.locator(".xterm-rows > div")
    [row] = [i for i, text in enumerate(rows.all_inner_texts()) if text.startswith(words)]
    box = rows.nth(row).bounding_box()
    assert box is not None, words
    return box["x"] + 20, box["y"] + box["height"] / 2  # on its third letter or so


def click_link(page: Page, words: str) -> None:
    """Point at the words, wait for xterm to take them for a link, and click."""
    x, y = point(page, words)
    page.mouse.move(1, 1)  # off the terminal: xterm reads each entry into a link anew
    page.mouse.move(x - 5, y)
    page.mouse.move(x, y)
    wait_for(lambda: page.locator(".xterm-screen.xterm-cursor-pointer").count() == 1,
             timeout=30, what=f"{words} taken for a link")
    page.mouse.click(x, y)


def test_a_terminal_hyperlink_asks_like_a_chat_link(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    site = AttackSite("<!doctype html><title>landed</title><p id=landed>landed</p>")
    base = f"http://127.0.0.1:{site.port}"
    native: list[str] = []

    def answer(d: Dialog) -> None:
        native.append(d.message)
        d.dismiss()

    try:
        with agent_terminal(browser, appliance, repo) as (desk, container):
            page = desk.page
            page.on("dialog", answer)
            to_terminals(container, WRITE, f"http://github.com@127.0.0.1:{site.port}/userinfo",
                         "github-docs", f"{base}/term?from=terminal", "plain-docs")
            expect(page.locator(".xterm-rows")).to_contain_text("plain-docs")
            assert "pwned" not in page.title()  # the title sequences came first, and did nothing

            # The target naming a user is no link: a click on it asks nothing, so the next
            # click's question is the first.
            dialog = page.get_by_test_id("leave")
            click_link(page, "github-docs")
            click_link(page, "plain-docs")
            wait_for(lambda: native or dialog.is_visible(), what="the click's question")
            assert native == [], f"the browser's own confirm() asked: {native}"
            expect(dialog.get_by_test_id("leave-url")).to_have_text(f"{base}/term?from=terminal")
            dialog.get_by_role("button", name="Cancel").click()
            expect(dialog).to_have_count(0)
            assert site.paths == []

            click_link(page, "plain-docs")
            expect(dialog.get_by_test_id("leave-url")).to_have_text(f"{base}/term?from=terminal")
            assert native == [], native
            with desk.context.expect_page() as opened:
                dialog.get_by_role("button", name="Open").click()
            other = opened.value
            expect(other.locator("#landed")).to_have_text("landed")
            assert other.evaluate("window.opener") is None
            assert other.evaluate("document.referrer") == ""
            assert [p for p in site.paths if p != "/favicon.ico"] == ["/term?from=terminal"]
            other.close()
    finally:
        site.close()
