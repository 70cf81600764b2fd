"""A page on another port of the same host locks the user out of the web UI by planting one
cookie (real API, Debian's Chromium).

Cookies are kept per host, not per port: what a page on ``http://127.0.0.1:<other port>``
writes with ``document.cookie`` goes along with every request to the appliance on the same
host. A JSON-valued cookie (which many apps set, and any hostile page can) with
``Path=/api`` is sent before the session's, and the guard's cookie reader
(``http.cookies.SimpleCookie``) stopped at it: every API request was 401, and signing in
again did not help, since the planted cookie stays.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.e2e.webui_browser import DESKTOP, AttackSite, Watched, sign_in
from tests.support.appliance import Appliance


@pytest.fixture
def neighbour() -> Iterator[str]:
    site = AttackSite("<!doctype html><title>neighbour</title>")
    try:
        yield f"http://127.0.0.1:{site.port}/"
    finally:
        site.close()


def signed_in(w: Watched) -> bool:
    return bool(w.page.evaluate(
        "fetch('/api/auth/me').then(r => r.json()).then(b => b.signed_in)"))


def test_a_cookie_from_another_port_does_not_sign_the_user_out(
        browser: Browser, appliance: Appliance, neighbour: str) -> None:
    w = Watched(browser, appliance.base, DESKTOP, False, appliance)
    try:
        assert signed_in(w)  # the control
        other = w.context.new_page()
        other.goto(neighbour)
        other.evaluate("document.cookie = 'prefs={\"theme\":\"dark\"}; path=/api; "
                       "max-age=31536000'")
        other.close()
        assert signed_in(w), "one cookie from another port signed the user out"
        sign_in(w.page, appliance)  # and signing in again must leave the user signed in
        assert signed_in(w)
    finally:
        w.close()
