"""One definition of "waiting for me": the web list, the TUI and the CLI show the same sessions.

Five real sessions (plain containers of the base image; the agent's hooks are sent by the
test with each session's real hook token) in the states where the UIs used to disagree:
waiting for approval, waiting for input, idle (the web used to leave it out), working, and
stopped while it was waiting for input (the web used to count it). The web list's "Waiting
for me" in real Chromium, the TUI's waiting filter (headless, on the real API) and
``clauderon list --filter waiting`` must all show exactly the sessions the API's ``filters``
put under ``waiting``, which are named here too, so the check cannot pass on an empty set.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from cli.tui.tui_model import Filter
from tests.e2e.webui_browser import watched
from tests.integration.tui_pilot import in_thread, main, names, piloting, until
from tests.support.appliance import Appliance

pytestmark = pytest.mark.e2e

#: Container names are global on the engine: names no other run uses.
RUN = uuid.uuid4().hex[:6]
STATES = {  # session -> the hook events it gets, in order
    f"approval-{RUN}": ["PermissionRequest"],
    f"input-{RUN}": ["Stop"],
    f"idle-{RUN}": ["IdlePrompt"],
    f"busy-{RUN}": ["PreToolUse"],
    f"stopped-{RUN}": ["Stop"],
}
WAITING = {f"approval-{RUN}", f"input-{RUN}", f"idle-{RUN}"}


def tui_waiting(appliance: Appliance, count: int) -> list[str]:
    """The names the TUI lists under its waiting filter once it lists ``count`` or more (run
    in a thread of its own: the browser's sync API keeps an event loop on this one)."""
    shown: list[str] = []

    async def run() -> None:
        async with piloting(appliance, (100, 30)) as (app, pilot):
            await until(pilot, lambda: main(app).loaded, "the list")
            while main(app).filter is not Filter.WAITING:
                await pilot.press("f")
            await until(pilot, lambda: len(names(app)) >= count, "the waiting list")
            shown.extend(names(app))

    in_thread(run)
    return shown


def test_waiting_for_me_is_the_same_sessions_in_the_web_the_tui_and_the_cli(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    for name, hooks in STATES.items():
        appliance.cli("create", "--repo", str(repo), "--name", name, "--prompt", "p")
        for event in hooks:
            appliance.hook(name, event)
    appliance.cli("stop", f"stopped-{RUN}")
    stopped = appliance.session(f"stopped-{RUN}")
    assert (stopped["phase"], stopped["agent_status"]) == ("stopped", "waiting_input")
    assert appliance.session(f"idle-{RUN}")["agent_status"] == "idle"

    api = {s["name"] for s in appliance.client().get("/api/sessions", filter="waiting")
           ["sessions"]}
    assert api == WAITING

    with watched(browser, appliance) as desk:
        page = desk.page
        page.goto("/")
        cards = page.get_by_test_id("session-card")
        expect(cards).to_have_count(len(STATES))
        page.get_by_test_id("filter-waiting").click()
        expect(page.get_by_test_id("filter-waiting")).to_contain_text(str(len(WAITING)))
        expect(cards).to_have_count(len(WAITING))
        web = {cards.nth(i).get_attribute("data-name") for i in range(cards.count())}
        assert desk.errors == [], desk.errors

    tui = tui_waiting(appliance, len(WAITING))
    cli = appliance.cli("list", "--filter", "waiting").stdout.splitlines()[1:]

    assert web == WAITING
    assert sorted(tui) == sorted(WAITING)
    assert sorted(line.split()[0] for line in cli) == sorted(WAITING)


def test_a_hook_moves_a_session_in_and_out_of_waiting_live_in_the_web_and_the_tui(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    name = f"live-{RUN}"
    appliance.cli("create", "--repo", str(repo), "--name", name)
    with watched(browser, appliance) as desk:
        page = desk.page
        page.goto("/")
        page.get_by_test_id("filter-waiting").click()
        card = page.locator(f'[data-testid="session-card"][data-name="{name}"]')
        expect(card).to_have_count(0)
        appliance.hook(name, "IdlePrompt")
        expect(card).to_have_count(1)
        assert tui_waiting(appliance, 1) == [name]
        appliance.hook(name, "UserPromptSubmit")
        expect(card).to_have_count(0)
        # Its agent exits: it waits for a person again, who is told to restart it.
        appliance.hook(name, "Exited")
        expect(card).to_have_count(1)
        expect(card.get_by_test_id("agent-status")).to_have_text("Agent exited")
        assert tui_waiting(appliance, 1) == [name]
        page.goto(f"/s/{name}/chat")
        expect(page.get_by_test_id("waiting-banner")).to_contain_text(
            "The agent exited: nothing more happens until it is restarted")
        assert desk.errors == [], desk.errors
