"""The web UI's daily-workflow controls in real Chromium: plan and print mode and a title on
the create form; the title shown as data (a hostile title never runs as markup), edited
from the Info tab; regenerate answers clearly when no title model is configured."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.webui_browser import TIMEOUT_MS, create_form, watched
from tests.support.appliance import Appliance, wait_for

pytestmark = pytest.mark.e2e
NAME = f"wf-{uuid.uuid4().hex[:8]}"
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def test_create_with_modes_and_a_title_then_edit_it(browser: Browser, appliance: Appliance,
                                                     repo: Path) -> None:
    with watched(browser, appliance) as desk:
        page = desk.page
        create_form(page, repo, NAME)
        page.fill("#prompt", "Explain the parser.")
        page.select_option("#plan_mode", "plan")
        page.check("#print_mode")
        page.fill("#title", HOSTILE)
        page.fill("#description", "why & how")
        page.get_by_test_id("create-submit").click()
        expect(page.get_by_test_id("create-progress")).to_be_visible()
        s = wait_for(lambda: appliance.session(NAME), what="the session")
        assert (s["plan_mode"], s["print_mode"]) == (True, True)
        assert (s["title"], s["description"]) == (HOSTILE, "why & how")

        # Shown as text on the list and in the editor, never run as markup.
        page.goto("/")
        card = page.locator(f'[data-testid="session-card"][data-name="{NAME}"]')
        expect(card.get_by_test_id("session-title")).to_have_text(HOSTILE)
        page.goto(f"/s/{NAME}/info")
        expect(page.locator("#edit-title")).to_have_value(HOSTILE, timeout=TIMEOUT_MS)
        assert page.evaluate("window.__pwned === undefined")

        page.fill("#edit-title", "Explain the parser")
        page.get_by_test_id("save-title").click()
        wait_for(lambda: appliance.session(NAME)["title"] == "Explain the parser",
                 what="the edited title")
        assert appliance.session(NAME)["name"] == NAME  # the branch never moves

        # No title model here: regenerate says so, and loses nothing.
        desk.expected.append(503)
        page.get_by_test_id("retitle").click()
        expect(page.get_by_test_id("title-editor").get_by_role("alert")).to_contain_text(
            "no title model is configured")
        assert appliance.session(NAME)["title"] == "Explain the parser"
