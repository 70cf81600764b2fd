"""The agent recolouring the web terminal, in real headless Chromium against the real API and
engine.

The agent writes to the viewer's terminal device directly (the attach runs as its uid, past
tmux), and xterm.js acts on OSC 4 (a palette colour) and OSC 10, 11 and 12 (the text,
background and cursor colours): text in the background's colour, or red drawn as the
background, hides from the person watching what the agent runs in front of them. The
terminal refuses those sets (``api/web/src/termguard.ts``) and its title (OSC 0, 2); a colour
query is still answered, as tmux asks one.

Each colour the agent sets is one no theme has (``#010203``): it is found nowhere in what the
terminal draws, neither in the styles xterm writes for its theme nor in any computed colour.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.webui_browser import agent_terminal, to_terminals
from tests.support.appliance import Appliance

pytestmark = pytest.mark.e2e

#: The agent's colours and titles, then red words and a mark that it has all arrived.
WRITE = r"""
  printf '\033]4;1;rgb:01/02/03\033\\\033]10;#010203\007\033]11;rgb:01/02/03\007'
  printf '\033]12;#010203\033\\\033]10;#010203;#010203\007\033]2;pwned-title\007'
  printf '\033]0;pwned-title\007\033[31mred-words\033[0m colours-done\r\n'
"""

#: Every colour the terminal draws with: its theme's styles and each element's computed ones.
DRAWN = """() => {
  const out = [];
  for (const st of document.querySelectorAll('.xterm style')) out.push(st.textContent);
  for (const el of document.querySelectorAll('.xterm, .xterm *')) {
    const cs = getComputedStyle(el);
    out.push(cs.color, cs.backgroundColor, cs.borderBottomColor, cs.outlineColor, cs.boxShadow);
  }
  return out.join('\\n');
}"""
AGENTS = ("#010203", "rgb(1, 2, 3)")


def _agents_colours(page: Page) -> list[str]:
    drawn: str = page.evaluate(DRAWN)
    return [c for c in AGENTS if c in drawn.lower()]


def test_the_agent_cannot_recolour_or_retitle_the_web_terminal(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    with agent_terminal(browser, appliance, repo) as (desk, container):
        page = desk.page
        title = page.title()
        assert _agents_colours(page) == []  # no theme has it: the check can only see the agent
        to_terminals(container, WRITE)
        expect(page.locator(".xterm-rows")).to_contain_text("colours-done")
        assert _agents_colours(page) == [], "the agent's colour reached the terminal"
        red = page.locator(".xterm-rows span", has_text="red-words")
        assert red.evaluate("e => getComputedStyle(e).color") != "rgb(1, 2, 3)"
        assert page.title() == title
