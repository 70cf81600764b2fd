"""The service worker keeps API answers in the browser's cache storage, past sign-out, and
a page of the same site can make it replace the app's offline page with one (real API,
Debian's Chromium).

``sw.js`` promises the API is never cached: it skips paths starting ``/api/`` as the URL
spells them. But every navigation's answer is stored as the app's page (``/``), whatever
its path, status or type, and the server decodes the path: a navigation to
``/%61pi/auth/devices`` (or to ``/metrics``) is the API's answer, ``Cache-Control:
no-store`` and all, and it is kept in cache storage after sign-out and shown, in place of
the app, whenever the appliance cannot be reached. A page on another port of this host can
navigate the user there (the navigation is same-site, so the session cookie goes along).
"""

from __future__ import annotations

from playwright.sync_api import Browser

from tests.e2e.webui_browser import DESKTOP, Watched
from tests.support.appliance import Appliance

CACHED_SHELL = ("caches.open('clauderon-v1').then(c => c.match('/'))"
                ".then(r => r ? r.text() : '')")


def test_api_answers_are_never_kept_as_the_offline_page(browser: Browser,
                                                        appliance: Appliance) -> None:
    w = Watched(browser, appliance.base.replace("127.0.0.1", "localhost"), DESKTOP, False)
    try:
        w.page.goto(appliance.link().replace("127.0.0.1", "localhost"))
        w.page.get_by_test_id("signed-in").wait_for()
        w.page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        w.page.reload()  # now controlled by the service worker
        assert w.page.evaluate("!!navigator.serviceWorker.controller")
        assert "<!doctype html>" in w.page.evaluate(CACHED_SHELL).lower()  # the control
        for path in ("/%61pi/auth/devices", "/metrics", "/missing.js"):
            w.expected.append(404)
            w.page.goto(path)
            w.page.wait_for_timeout(500)  # the worker stores it after answering; not timed
            kept = w.page.evaluate(CACHED_SHELL)
            assert '"tokens"' not in kept and "# HELP" not in kept, (path, kept[:200])
            assert "<!doctype html>" in kept.lower(), (path, kept[:200])
    finally:
        w.close()
