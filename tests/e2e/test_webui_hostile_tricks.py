"""The hostile page's quieter tricks, in real headless Chromium on another loopback origin,
against the real API: what ``test_webui_auth.py`` does not try. Its own server answers
``/go?to=`` with a 307 (a redirect keeps a POST's method and body, and Chromium then sends
``Origin: null``), serves a service worker of its own origin that posts to the API from
there, and the page sends a ``keepalive`` fetch, opens WebSockets from a ``data:`` frame and
a sandboxed one (``Origin: null``), frames the web UI's files and a refusal, and opens the
web UI in a window to message it. The API refuses each, and says why in its log.

And a neighbour: a local user's server on ``[::1]`` at the appliance's port. Browsers take
``localhost`` for ::1 first, so while the appliance listened on 127.0.0.1 alone that server
*was* ``http://localhost:<port>``, the address the CLI sends the person to: its page read
the one-time link's token from the fragment (and would have had the cookie, the bind in
``localStorage`` and the passkeys of that origin)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.test_webui_auth import context, me
from tests.support.appliance import Appliance, wait_for

pytestmark = pytest.mark.e2e

NAME = "victim"

PAGE = """<!doctype html><meta charset=utf-8><title>cat gifs</title>
<script>const R = window.__attack = {sockets: []};</script>
<iframe name=sink></iframe>
<form id=f method=POST enctype=text/plain target=sink
  action="/go?to=TARGET/api/sessions/NAME/stop"><input name='{"x":"' value='"}'></form>
<iframe id=data src="data:text/html,<script>const w = new WebSocket('WSTARGET/ws/console/NAME');
w.onopen = () => parent.postMessage('data open', '*');
w.onclose = () => parent.postMessage('data closed', '*');</script>"></iframe>
<iframe id=sandboxed sandbox=allow-scripts srcdoc="<script>
const w = new WebSocket('WSTARGET/ws/events?after=0');
w.onopen = () => parent.postMessage('sandboxed open', '*');
w.onclose = () => parent.postMessage('sandboxed closed', '*');</script>"></iframe>
<iframe id=asset src="TARGET/sw.js"></iframe>
<iframe id=refusal src="TARGET/api/sessions"></iframe>
<img src="TARGET/api/auth/me" onerror="R.img = 'error'" onload="R.img = 'load'">
<script src="TARGET/api/health" onerror="R.script = 'error'" onload="R.script = 'load'"></script>
<link rel=prefetch href="TARGET/signin">
<script>
const T = "TARGET";
addEventListener("message", m => { if (typeof m.data === "string") R.sockets.push(m.data); });
const outcome = p => p.then(r => r.type + " " + r.status, e => "error: " + e.name);
(async () => {
  R.keepalive = await outcome(fetch(T + "/api/sessions/NAME/archive", {method: "POST",
    mode: "no-cors", credentials: "include", keepalive: true, body: "{}"}));
  R.redirect_fetch = await outcome(fetch("/go?to=" + T + "/api/sessions/NAME/access-mode", {
    method: "POST", mode: "no-cors", credentials: "include",
    body: JSON.stringify({access_mode: "read-only"})}));
  document.getElementById("f").submit();
  window.__opened = window.open(T + "/s/NAME/info");
  const registration = await navigator.serviceWorker.register("/worker.js");
  R.worker = await new Promise(done => navigator.serviceWorker.addEventListener("message",
    m => done(m.data)));
  R.done = true;
})();
</script>"""

WORKER = """self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", event => event.waitUntil((async () => {
  let said;
  try {
    const r = await fetch("TARGET/api/sessions/NAME/recreate-fresh", {method: "POST",
      mode: "no-cors", credentials: "include", body: "{}"});
    said = r.type + " " + r.status;
  } catch (e) { said = "error: " + e.name; }
  for (const c of await self.clients.matchAll({includeUncontrolled: true})) c.postMessage(said);
})()));"""


class V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def hostile_site(page: str, worker: str) -> Iterator[int]:
    """The attacker's server: the page, its service worker, and a 307 to ``?to=``."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/go":
                self.send_response(307)
                self.send_header("Location", parse_qs(url.query)["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body, kind = (worker, "text/javascript") if url.path == "/worker.js" else (
                page, "text/html")
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body.encode())))
            self.end_headers()
            self.wfile.write(body.encode())

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def log_message(self, *args: object) -> None:
            pass

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as server:
        yield server.server_address[1]


#: The neighbour's page: what it can read of the origin it serves, in its title.
NEIGHBOUR = (b"<!doctype html><title>neighbour</title><script>document.title = "
             b"location.hash + ' ' + localStorage.getItem('clauderon.bind')</script>")


class Neighbour(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(NEIGHBOUR)))
        self.end_headers()
        self.wfile.write(NEIGHBOUR)

    def log_message(self, *args: object) -> None:
        pass


def test_a_neighbour_on_the_other_loopback_address_is_not_localhost(
        browser: Browser, appliance: Appliance) -> None:
    port = appliance.http_port
    held: AbstractContextManager[object] | None = None
    with suppress(OSError):  # the appliance holds [::1] at its port too: this bind fails
        held = serving(V6Server(("::1", port), Neighbour))
    ctx = context(browser, f"http://localhost:{port}")
    try:
        with held or nullcontext():
            page = ctx.new_page()
            page.goto(appliance.link())
            title = page.title()
            assert "token=" not in title and title != "neighbour", (
                f"a local user's server on [::1]:{port} was http://localhost:{port}, and its "
                f"page read the sign-in link: {title!r}")
            expect(page.get_by_test_id("signed-in")).to_be_visible()
    finally:
        ctx.close()


def test_redirects_workers_keepalive_and_null_origin_sockets_change_nothing(
        browser: Browser, appliance: Appliance) -> None:
    base = f"http://localhost:{appliance.http_port}"
    fill = {"WSTARGET": base.replace("http", "ws"), "TARGET": base, "NAME": NAME}
    page_html, worker_js = PAGE, WORKER
    for key, value in fill.items():
        page_html, worker_js = page_html.replace(key, value), worker_js.replace(key, value)
    ctx = context(browser, base)
    with hostile_site(page_html, worker_js) as port:
        page = ctx.new_page()
        page.goto(appliance.link())
        expect(page.get_by_test_id("signed-in")).to_be_visible()
        signed_in = me(page)["session"]["id"]
        seen = len(appliance.log("api"))
        evil = ctx.new_page()
        evil.goto(f"http://localhost:{port}/cats.html")
        wait_for(lambda: evil.evaluate("window.__attack.done && "
                                       "window.__attack.sockets.length >= 2"),
                 timeout=60, what="the hostile page's attempts")
        results = evil.evaluate("window.__attack")
        needles = (f"refused POST /api/sessions/{NAME}/archive: requests from 'http://localhost",
                   f"refused POST /api/sessions/{NAME}/access-mode: requests from 'null'",
                   f"refused POST /api/sessions/{NAME}/stop: requests from 'null'",
                   f"refused POST /api/sessions/{NAME}/recreate-fresh: requests from "
                   "'http://localhost",
                   f"refused GET /ws/console/{NAME}: requests from 'null'",
                   "refused GET /ws/events: requests from 'null'",
                   "refused GET /api/auth/me: requests from other sites",
                   "refused GET /api/health: requests from other sites",
                   "refused GET /signin: requests from other sites")

        def missing() -> list[str]:
            log = appliance.log("api")[seen:]
            return [n for n in needles if n not in log]

        wait_for(lambda: not missing(), timeout=30, what="the API's refusal of each")
        assert sorted(results["sockets"]) == ["data closed", "sandboxed closed"], results
        # The web UI it opened cut the page's handle on it (a cross-origin opener).
        wait_for(lambda: evil.evaluate("window.__opened.closed"), timeout=30,
                 what="the opened web UI's handle to close")
        assert results["img"] == results["script"] == "error", results
        assert me(page)["session"]["id"] == signed_in
    ctx.close()
