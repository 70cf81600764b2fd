"""A request the browser drops is not an outage (headless Chromium against the real
appliance). A browser drops what is in flight whenever the host's addresses change, and
the engine changes them each time it adds or removes a session's network: on a
workstation, every create and delete. A read is asked once more; a write is not, since the
appliance may have done it, and the person is told.

The drop is the browser's own: the page's requests are routed through Chromium's request
interception, which aborts the chosen one with a reset connection, the way the host's
network change ends it."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Route, expect

from tests.e2e.webui_browser import create_form, watched
from tests.support.appliance import Appliance


def test_a_dropped_read_is_asked_again_and_a_dropped_write_is_not(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    with watched(browser, appliance) as desk:
        page = desk.page
        seen: dict[str, int] = {}

        def drop_first(route: Route) -> None:
            key = f"{route.request.method} {route.request.url.split('?')[0]}"
            seen[key] = seen.get(key, 0) + 1
            if seen[key] == 1:
                route.abort("connectionreset")
            else:
                route.continue_()

        with desk.allowing("net::ERR_CONNECTION_RESET"):
            page.route("**/api/sessions?all=true", drop_first)
            page.goto("/")
            expect(page.get_by_test_id("empty")).to_be_visible()
            expect(page.get_by_text("Cannot reach the appliance")).to_have_count(0)
            page.unroute("**/api/sessions?all=true")
            assert seen == {f"GET {appliance.base}/api/sessions": 2}, seen

            # A create the browser dropped may have reached the appliance: it is not sent
            # again behind the person's back; the form says what happened.
            seen.clear()
            create_form(page, repo, "dropped")
            page.route("**/api/sessions", drop_first)
            page.get_by_test_id("create-submit").click()
            expect(page.get_by_test_id("error-form")).to_contain_text(
                "The appliance cannot be reached")
            page.unroute("**/api/sessions")
            assert seen == {f"POST {appliance.base}/api/sessions": 1}, seen
        assert appliance.http().get("/api/sessions/dropped").status_code == 404
        assert desk.errors == [], desk.errors
