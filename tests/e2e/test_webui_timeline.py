"""A session's timeline in real Chromium and in the TUI (headless Textual, on the real API).

The agent, in its real container (uid 1000, the agent image), writes its transcript, makes
a request through the real proxy to a fake model API on loopback and commits; a hook makes
it wait for the user. The web tab and the TUI view show the four in order, and a commit
made while they are open shows without a reload. The agent is hostile: its commit message
and a forged transcript line carry HTML that would run script if it were parsed (it sets
``window.__pwned``), Rich markup, and terminal escapes; both UIs show them as characters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from textual.widgets import RichLog

from cli.tui.timeline_view import TimelineScreen
from tests.e2e.webui_browser import PHONE, watched
from tests.integration.test_timeline import say
from tests.integration.tui_pilot import (
    in_thread,
    piloting,
    screen_text,
    until,
)
from tests.support.agent_app import as_agent, create, through_fake_models
from tests.support.appliance import Appliance
from tests.support.fake_models import FakeModels

pytestmark = pytest.mark.e2e

HTML = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
#: What the agent's printf writes: HTML, Rich markup and escapes (OSC title, clear screen).
HOSTILE = HTML + r" [b]bold[/b] [link=http://x]here[/link] \033]0;pwned\007\033[2J"
#: A zero-width joiner (printf's octal UTF-8): a name that looks like ``is_admin`` and is
#: another. (The API takes the bidirectional overrides out of every field.)
HIDDEN = r" is_ad\342\200\215min"


@pytest.fixture
def timeline_app(tmp_path: Path, agent_image: str, fake: FakeModels) -> Iterator[Appliance]:
    with through_fake_models(tmp_path / "home", agent_image, fake) as a:
        yield a


def commit(app: Appliance, session: dict[str, Any], message_printf: str) -> None:
    as_agent(app, session, f"printf '{message_printf}' > /tmp/msg && git -c user.name=Agent "
                           "-c user.email=a@x commit -q --allow-empty -F /tmp/msg")


def tui_timeline(appliance: Appliance, name: str, wanted: str) -> tuple[str, list[str]]:
    """The TUI's timeline view of ``name`` once it shows ``wanted``: the screen and the
    view's lines (run in a thread: the browser's sync API keeps an event loop here)."""
    got: dict[str, Any] = {}

    async def run() -> None:
        async with piloting(appliance, (140, 30), showing=[name]) as (app, pilot):
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, TimelineScreen), "the timeline")
            view = app.screen
            assert isinstance(view, TimelineScreen)
            await until(pilot, lambda: any(wanted in i["title"] for i in view.items), wanted)
            await pilot.pause(0.2)
            got["screen"] = screen_text(app)
            got["lines"] = [strip.text for strip in view.query_one(RichLog).lines]

    in_thread(run)
    return got["screen"], got["lines"]


def test_the_timeline_tab_and_view_show_the_day_in_order_and_only_as_text(
        browser: Browser, timeline_app: Appliance, repo: Path) -> None:
    app = timeline_app
    s = create(app, repo, "daybook")
    say(app, s, "I will run the tests and commit " + HTML)
    time.sleep(1.1)  # spacing, not a check: commit times have whole seconds
    assert as_agent(app, s, 'curl -s -o /dev/null -w "%{http_code}" '
                            "https://api.anthropic.com/v1/messages-probe") == "404"
    time.sleep(1.1)
    commit(app, s, "Fix the parser " + HOSTILE + HIDDEN)
    time.sleep(1.1)
    app.hook("daybook", "Stop")

    with watched(browser, app) as desk:
        page = desk.page
        page.goto("/s/daybook/timeline")
        items = page.get_by_test_id("timeline-item")
        commit_row = page.locator("[data-testid=timeline-item][data-source=commit]")
        expect(commit_row).to_have_count(1)
        expect(page.locator("[data-testid=timeline-item][data-source=audit]")
               ).not_to_have_count(0)
        expect(items.filter(has_text="hook Stop")).to_have_count(1)
        sources = [items.nth(i).get_attribute("data-source") for i in range(items.count())]
        texts = items.all_inner_texts()
        at = {what: next(i for i, t in enumerate(texts) if what in t)
              for what in ("I will run the tests", "messages-probe", "Fix the parser",
                           "hook Stop")}
        assert list(at.values()) == sorted(at.values()), (at, sources)
        # Shown as characters: the markup is text, no element was made, no script ran.
        expect(commit_row).to_contain_text('<img src=x onerror="window.__pwned=1">')
        expect(commit_row).to_contain_text("[b]bold[/b]")
        # The hidden character is drawn as what it is.
        expect(commit_row).to_contain_text("is_adU+200Dmin")
        assert "\u200d" not in commit_row.inner_text()
        assert page.locator("[data-testid=timeline] img, [data-testid=timeline] script"
                            ).count() == 0
        assert page.evaluate("window.__pwned") is None
        assert "\x1b" not in "".join(texts)
        desk.shot("timeline")

        # Live: a commit made while the tab is open shows without a reload.
        commit(app, s, "Second commit, live")
        expect(items.filter(has_text="Second commit, live")).to_have_count(1)
        assert page.evaluate("window.__pwned") is None
        assert desk.errors == [], desk.errors
    with watched(browser, app, PHONE) as phone:
        phone.page.goto("/s/daybook/timeline")
        expect(phone.page.get_by_test_id("timeline-item").filter(
            has_text="Second commit, live")).to_have_count(1)
        phone.shot("timeline")
        assert phone.errors == [], phone.errors

    screen, lines = tui_timeline(app, "daybook", "Second commit, live")
    for what in ("I will run the tests", "messages-probe", "Fix the parser", "hook Stop"):
        assert any(what in line for line in lines), (what, lines)
    order = [next(i for i, line in enumerate(lines) if what in line)
             for what in ("I will run the tests", "messages-probe", "Fix the parser",
                          "hook Stop", "Second commit, live")]
    assert order == sorted(order), lines
    hostile = next(line for line in lines if "Fix the parser" in line)
    assert "[b]bold[/b]" in hostile and "[link=http://x]here[/link]" in hostile
    assert "\x1b" not in "".join(lines) and "\x07" not in "".join(lines)
    assert "[b]bold[/b]" in screen  # Rich markup shown, not applied
