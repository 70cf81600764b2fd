"""A session's title as the web UI draws it, in real headless Chromium against the real API,
proxy and engine.

The title is made by a model from the prompt (the appliance's own title call, through the
real proxy, to the fake model API on loopback), and a prompt may be text the person pasted
from anywhere: an issue, a web page, a log. The model's answer is data the appliance keeps
after taking out controls and bidirectional overrides, but a word joiner, a soft hyphen
and tag letters pass, and a browser draws them as nothing: the list's card drew
``Fix the login test`` for a title holding "drop table" in tag letters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import agent_tier
from tests.e2e.test_webui_hidden_chars import TAGGED, no_hidden
from tests.e2e.webui_browser import DESKTOP, PHONE, watched
from tests.support.appliance import Appliance, wait_for
from tests.support.fake_models import FakeModels

pytestmark = pytest.mark.e2e

CONFIG = '[titles]\nmodel = "claude-haiku-fake"\n'
#: What the model answers for a title: a joiner, a soft hyphen and tag letters, each drawn
#: as nothing, in the title; the same in the description.
TITLE = f"Fix the lo\u2060gin te\u00adst{TAGGED}"


@pytest.fixture
def titling(tmp_path: Path, agent_image: str, fake: FakeModels) -> Iterator[Appliance]:
    with agent_tier(tmp_path / "home", agent_image, fake, config=CONFIG) as app:
        yield app


def test_a_title_the_model_made_shows_its_hidden_characters(
        browser: Browser, titling: Appliance, fake: FakeModels, repo: Path) -> None:
    fake.title = json.dumps({"title": TITLE, "description": f"Why{TAGGED}",
                             "name": "login"})
    r = titling.http().post("/api/sessions", json={"repo_path": str(repo),
                                                   "prompt": "The login test fails"})
    assert r.status_code == 202, r.text
    s = r.json()["session"]
    assert s["title"] == TITLE  # kept as the model wrote it: only shown differently
    with watched(browser, titling) as desk:
        page = desk.page
        page.goto("/")
        card = page.locator(f'[data-testid="session-card"][data-name="{s["name"]}"]')
        title = card.get_by_test_id("session-title")
        expect(title).to_contain_text("U+2060")
        no_hidden(card, "the session's card")
        expect(title.locator(".hidden-char")).to_have_count(2 + len("drop table"))

        # The Info tab's editor says what its fields hold undrawn, and takes them out.
        page.goto(f"/s/{s['name']}/info")
        note = page.get_by_test_id("title-hidden")
        expect(note).to_contain_text("U+2060, U+00AD, U+E0064")
        expect(page.get_by_test_id("description-hidden")).to_contain_text("U+E0064")
        note.get_by_role("button").click()
        expect(note).to_have_count(0)
        page.get_by_test_id("save-title").click()
        wait_for(lambda: titling.session(s["name"])["title"] == "Fix the login test" or None,
                 what="the title saved without what it did not draw")
        assert titling.session(s["name"])["description"] == f"Why{TAGGED}"  # untouched


def test_a_long_title_stays_inside_its_own_card(
        browser: Browser, titling: Appliance, fake: FakeModels, repo: Path) -> None:
    # One word of 120 characters (the most a title holds): drawn whole, it ran out of its
    # card across the next one, the hostile session's words over another session's card.
    long = "Fix" + "W" * 117
    fake.title = json.dumps({"title": long, "description": "d", "name": "wide"})
    made = [titling.http().post("/api/sessions", json={"repo_path": str(repo),
                                                        "prompt": f"The test fails {i}"})
            for i in range(2)]
    assert [r.status_code for r in made] == [202, 202], [r.text for r in made]
    name = made[0].json()["session"]["name"]
    assert made[0].json()["session"]["title"] == long
    for viewport in (DESKTOP, PHONE):
        with watched(browser, titling, viewport) as desk:
            desk.page.goto("/")
            card = desk.page.locator(f'[data-testid="session-card"][data-name="{name}"]')
            title = card.get_by_test_id("session-title")
            expect(title).to_have_text(long)
            drawn = title.evaluate("e => [e.scrollWidth, e.clientWidth]")
            assert drawn[0] <= drawn[1], f"the title is drawn {drawn[0]} px wide in {drawn[1]}"
            box, inner = card.bounding_box(), title.bounding_box()
            assert box is not None and inner is not None
            assert inner["x"] + inner["width"] <= box["x"] + box["width"], (inner, box)
