"""Links the agent writes, in real headless Chromium against the real API and engine.

The agent writes the transcript the Chat tab renders as Markdown (here: as the agent's uid,
into its own home in a real container of the base image, as a Claude Code log). A link in
it is the agent's: its text can say one place and its target be another, and its target
can be a scheme that runs something (``javascript:``, ``data:``, ``vbscript:``) or leaves
the browser for another program (``vscode:``, ``ssh:``). A click on it used to open the
target at once. Now only an absolute ``http(s)`` URL becomes a link at all, and a click on
one asks first, showing the whole destination; it opens, without an opener or a referrer,
only on the person's yes. Its images and HTML (a beacon that tells the agent's server the
person is reading) are never fetched.

"The internet" is a listener on loopback (:class:`AttackSite`); it counts the requests it
gets, so the test sees that nothing is fetched before the person agrees.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.webui_browser import AttackSite, watched
from tests.integration.test_transcript_containment import claude_says, line, start_session
from tests.support.appliance import Appliance, wait_for

pytestmark = pytest.mark.e2e

LANDING = "<!doctype html><title>landed</title><p id=landed>landed</p>"

#: What the agent writes: links whose targets are schemes, one hidden behind text that
#: names another site, a bare autolink, a protocol-relative one; SITE is the listener.
MESSAGE = """Read [the docs](SITE/docs?from=chat) first.
Mirror: [https://github.com/example/app](SITE/phish).
Also <SITE/auto>.
Bad ones: [one](javascript:document.title='pwned-js'), [two](JaVaScRiPt:alert(1)),
[three](data:text/html,<script>alert(1)</script>), [four](vbscript:msgbox), \
[five](vscode://file/etc/passwd), [six](//127.0.0.1:PORT/relative), [seven](/api/sessions),
[eight](mailto:someone@example.com).

Beacons: ![a picture](SITE/beacon.png) <img src="SITE/raw.png">
<style>.chat { background: url(SITE/css.png) }</style>
"""


def test_a_link_the_agent_writes_asks_before_it_opens(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    site = AttackSite(LANDING)
    base = f"http://127.0.0.1:{site.port}"
    http = appliance.http(timeout=15)
    session, container = start_session(appliance, http, repo, "claude")
    sid, name = session["id"], session["name"]
    text = MESSAGE.replace("SITE", base).replace("PORT", str(site.port))
    claude_says(container, sid, line("assistant", text))
    try:
        with watched(browser, appliance) as desk:
            page = desk.page
            page.goto(f"/s/{name}/chat")
            msg = page.locator(".chat .messages .msg.assistant")
            expect(msg).to_contain_text("Read the docs first.")
            md = msg.locator(".md")
            dialog = page.get_by_test_id("leave")

            # A click on the link whose words name another site asks first, naming the
            # whole destination; nothing is fetched, no tab opens.
            md.get_by_text("https://github.com/example/app").click()
            wait_for(lambda: dialog.is_visible() or len(desk.context.pages) > 1 or site.cookies,
                     what="the click's outcome")
            opened_at_once = [p.url for p in desk.context.pages[1:]]
            assert opened_at_once == [] and site.cookies == [], (
                f"the link opened without asking: {opened_at_once}")
            expect(dialog.get_by_test_id("leave-url")).to_have_text(f"{base}/phish")
            desk.shot("chat-link")
            dialog.get_by_role("button", name="Cancel").click()
            expect(dialog).to_have_count(0)
            assert site.cookies == [] and len(desk.context.pages) == 1

            # No scheme but http(s) is a link of any kind; their words stay as text.
            live = md.locator("a[href], [data-href]").all_inner_texts()
            for word in ("one", "two", "three", "four", "five", "six", "seven", "eight"):
                expect(md).to_contain_text(word)
                assert word not in live, (word, md.inner_html())
            links = md.locator("[data-href]")
            assert links.evaluate_all("l => l.map(e => e.dataset.href)") == [
                f"{base}/docs?from=chat", f"{base}/phish", f"{base}/auto"]
            assert md.locator("a[href]").count() == 0, md.inner_html()
            assert "pwned" not in page.title()

            # The keyboard reaches it too, and asks the same; Escape closes the question
            # only (not the page's shortcut back to the list).
            md.get_by_text("the docs").focus()
            page.keyboard.press("Enter")
            expect(dialog.get_by_test_id("leave-url")).to_have_text(f"{base}/docs?from=chat")
            page.keyboard.press("Escape")
            expect(dialog).to_have_count(0)
            assert page.url.endswith(f"/s/{name}/chat") and site.paths == []
            md.get_by_text("the docs").focus()
            page.keyboard.press("Enter")
            expect(dialog.get_by_test_id("leave-url")).to_have_text(f"{base}/docs?from=chat")
            with desk.context.expect_page() as opened:
                dialog.get_by_role("button", name="Open").click()
            other = opened.value
            expect(other.locator("#landed")).to_have_text("landed")
            assert other.url == f"{base}/docs?from=chat"
            assert other.evaluate("window.opener") is None  # it cannot move the app's tab
            assert other.evaluate("document.referrer") == ""
            # Nothing else was ever fetched from there: no image, no style the agent wrote.
            assert [p for p in site.paths if p != "/favicon.ico"] == ["/docs?from=chat"], (
                site.paths)
            expect(dialog).to_have_count(0)
            assert page.url.endswith(f"/s/{name}/chat")  # the app's tab stayed where it was
            other.close()
            wait_for(lambda: len(desk.context.pages) == 1, what="the opened tab closed")
            assert desk.errors == [], json.dumps(desk.errors, indent=1)
    finally:
        site.close()


def test_a_link_to_a_malformed_session_path_shows_a_page(
        browser: Browser, appliance: Appliance) -> None:
    """Anyone can send the person a link to the app. ``/s/%E0`` (an escape that is no UTF-8)
    threw in the app's router, and the page stayed blank; it is a session no one has."""
    with watched(browser, appliance) as desk, desk.allowing("status of 404"):
        desk.page.goto("/s/%E0/chat")
        expect(desk.page.get_by_role("heading", name="No session “%E0”")).to_be_visible()
        expect(desk.page.get_by_role("link", name="All sessions", exact=True)).to_be_visible()
        assert desk.errors == [], json.dumps(desk.errors, indent=1)
