"""Text the agent hides on the web terminal, in real headless Chromium against the real API
and engine.

The agent writes to the viewer's terminal device directly (the attach runs as its uid, past
tmux). xterm.js drew text after SGR 8 ("conceal") as blanks and text in its background's
own colour as nothing to see, but a selection copies both: ``echo ok`` on the screen,
``echo ok; curl … | sh`` in what the person pastes into a shell on their own machine. The
hidden text is drawn like any other (``api/web/src/termguard.ts``), however the SGR is
spelt (a C1 CSI, a control inside the escape or between a parameter's digits, a parameter
among others, a sub-parameter), or brought back (a saved cursor restored, the alternate
screen left, a character repeated), and text in or near its background's colour is drawn
readable
(``minimumContrastRatio``, WCAG's 4.5:1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.webui_browser import agent_terminal, terminal_lines, to_terminals
from tests.support.appliance import Appliance

pytestmark = pytest.mark.e2e

#: Hidden words, each SGR 8 spelt another way, then words in their background's colour and a
#: mark that all has arrived.
WRITE = r"""
  printf 'shown-1 \033[8mhidden-plain\033[28m\r\n'
  printf 'shown-2 \302\2338mhidden-c1\033[0m\r\n'
  printf 'shown-3 \033\007[0;38;5;1;8mhidden-bel\033[0m\r\n'
  printf 'shown-4 \033[1;08;4mhidden-zero\033[0m\r\n'
  printf 'shown-4b \033[1;0\0078mhidden-split\033[0m\r\n'
  printf 'shown-4c \033[8:0mhidden-colon\033[0m\r\n'
  printf 'shown-4d \033[8m\0337\033[28m\0338hidden-saved\033[0m\r\n'
  printf 'shown-4e \033[8m\033[?1049h\033[28m\033[?1049lhidden-alt\033[0m\r\n'
  printf 'shown-4f \033[8mhidden-rep\033[3b\033[0m\r\n'
  printf 'shown-5 \033[38;2;1;2;3;48;2;1;2;3msame-colour\033[0m\r\n'
  printf 'shown-6 \033[38;2;12;14;18mnear-dark\033[0m\r\n'
  printf 'shown-7 \033[38;2;251;251;252mnear-light\033[0m\r\n'
  printf 'shown-8 \033[2;38;2;12;14;18mdim-dark\033[0m \033[2;38;2;251;251;252mdim-light\033[0m'
  printf ' hidden-done\r\n'
"""
#: The words in (or near: the dark and light themes' backgrounds) their background's colour.
NEAR = ("same-colour", "near-dark", "near-light")
#: Dim words near their background's colour, which need half the contrast.
DIM = ("dim-dark", "dim-light")
HIDDEN = ("hidden-plain", "hidden-c1", "hidden-bel", "hidden-zero", "hidden-split",
          "hidden-colon", "hidden-saved", "hidden-alt", "hidden-reppp", *NEAR, *DIM)
#: An element's colour and the background it is drawn on (the nearest one that is painted).
COLOURS = """e => {
  let at = e;
  while (at && getComputedStyle(at).backgroundColor === 'rgba(0, 0, 0, 0)') at = at.parentElement;
  return [getComputedStyle(e).color, getComputedStyle(at).backgroundColor];
}"""


def _luminance(css: str) -> float:
    """WCAG's relative luminance of an ``rgb(r, g, b)`` colour."""
    r, g, b = (int(x) / 255 for x in css[css.index("(") + 1:css.index(")")].split(",")[:3])
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fore: str, back: str) -> float:
    light, dark = sorted((_luminance(fore), _luminance(back)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_agent_cannot_hide_text_on_the_web_terminal(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    with agent_terminal(browser, appliance, repo) as (desk, container):
        page = desk.page
        to_terminals(container, WRITE)
        expect(page.locator(".xterm-rows")).to_contain_text("hidden-done")
        shown = "\n".join(terminal_lines(page))
        assert [w for w in HIDDEN if w not in shown] == [], shown
        for words in (*NEAR, *DIM):
            fore, back = page.locator(".xterm-rows span", has_text=words).evaluate(COLOURS)
            least = 2.2 if words in DIM else 4.4
            assert contrast(fore, back) >= least, f"{words} is drawn {fore} on {back}"
