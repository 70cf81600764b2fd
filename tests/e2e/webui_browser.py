"""What the web UI's browser tests share (the ``browser`` fixture is the tier's conftest's):
Debian's Chromium under Playwright, a page whose console errors fail the test, screenshots
(into ``docs/screenshots/`` with ``CLAUDERON_UPDATE_SNAPSHOTS=1``, else into a temporary
folder, so a test run leaves the checkout as it was), and small readers.

Playwright drives ``/usr/bin/chromium`` (``executable_path``; no browser is downloaded).
Every page records its open WebSockets in ``window.__sockets`` so a test can drop one.
A :class:`Watched` page given the appliance signs in first, as a person does: a one-time
link (what ``clauderon web`` prints) opened in the browser.
"""

from __future__ import annotations

import json
import os
import ssl
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import trustme
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    ViewportSize,
    WebSocket,
    expect,
)

from appliance.tokens import Purpose, derive_token, load_or_create_instance_key
from tests.integration.test_transcript_containment import start_session
from tests.support.appliance import Appliance, wait_for
from tests.support.hostile import agent_argv

ROOT = Path(__file__).resolve().parents[2]
SHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("CLAUDERON_UPDATE_SNAPSHOTS") == "1"
         else Path(tempfile.gettempdir()) / "clauderon-screenshots")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 375, "height": 812}
TIMEOUT_MS = 60_000

#: Keeps every WebSocket the page opens in ``window.__sockets`` (the app is unchanged).
TRACK_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
})();
"""


def heard_event(frame: str | bytes) -> str:
    """One frame of the event stream, short: its kind and the session's status in it."""
    try:
        data = json.loads(frame)
        event = data.get("event") or {}
        view = (event.get("payload") or {}).get("session") or {}
        return (f"{data['type']} {event.get('id', data.get('after'))} {event.get('kind', '')} "
                f"{view.get('phase', '')} {view.get('agent_status', '')}")
    except (ValueError, TypeError, AttributeError, KeyError):
        return f"frame: {frame[:120]!r}"


def sign_in(page: Page, appliance: Appliance) -> None:
    """Open a one-time sign-in link in ``page`` and decline the passkey offer.

    The page's own files may be dropped by the browser as the host's addresses change (see
    :data:`NETWORK_CHANGED`): a bundle that never loaded leaves a blank page and the link
    unread, so the link is opened again (three times at most), as a person would reload."""
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
    page.goto(appliance.link())  # returns once the page's scripts ran or failed to load
    for _ in range(2):
        if not any(NETWORK_CHANGED in x for x in failed):
            break
        failed.clear()
        page.reload()  # the link is still in the address bar, unread
    try:
        expect(page.get_by_test_id("signed-in")).to_be_visible()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nfailed loads: {failed}\npage: {page.content()[:2000]}"
                             ) from None
    assert "token" not in page.url  # taken out of the address bar at once
    page.get_by_test_id("not-now").click()
    expect(page.get_by_test_id("devices-link")).to_be_visible()


def click_through(w: Watched, button: Locator, asks: Callable[[Request], bool],
                  what: str) -> None:
    """Click ``button`` until the request it makes (the one ``asks`` matches) is answered:
    clicked again, twice at most, when the browser dropped it as the host's addresses
    changed (see :data:`NETWORK_CHANGED`; the page shows the error and a person would click
    again). Another failure, or none and no answer, fails with what the page knew."""
    answered: list[Request] = []
    dropped: list[str] = []

    def finished(r: Request) -> None:
        if asks(r):
            answered.append(r)

    def failed(r: Request) -> None:
        if asks(r):
            dropped.append(r.failure or "?")

    w.page.on("requestfinished", finished)
    w.page.on("requestfailed", failed)
    try:
        for _ in range(3):
            seen = len(dropped)
            button.click()

            def came(seen: int = seen) -> bool:  # the handlers run while Playwright is called
                w.page.wait_for_timeout(50)
                return bool(answered) or len(dropped) > seen

            wait_for(came, what=what)
            if answered or not all(NETWORK_CHANGED in d for d in dropped[seen:]):
                break
            expect(button).to_be_enabled()  # the dropped request's error is shown: again
    finally:
        w.page.remove_listener("requestfinished", finished)
        w.page.remove_listener("requestfailed", failed)
    assert answered, f"{what}: the request failed ({dropped})\n{w.diagnosis()}"


#: What Chromium logs for a request it dropped because the host's addresses changed, as
#: they do each time the engine adds or removes a session's network. The page asks a read
#: again (test_webui_network shows it does); the log line is the browser's, not an error.
NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"


class Watched:
    """A page whose console errors and uncaught exceptions are collected; signed in through
    a one-time link when given the appliance."""

    def __init__(self, browser: Browser, base: str, viewport: ViewportSize, phone: bool,
                 appliance: Appliance | None = None):
        self.context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone,
                                           base_url=base)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.add_init_script(TRACK_SOCKETS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        #: HTTP statuses the next requests are expected to answer (a browser logs them).
        self.expected: list[int] = []
        #: Console errors containing one of these are deliberate (see :meth:`allowing`).
        self.allowed: list[str] = []
        #: Requests the browser dropped as the host's addresses changed (see NETWORK_CHANGED).
        self.network_changes = 0
        #: What the page heard on its event stream and logged, newest last (for a failure's
        #: message: what the page knew, not only what it shows).
        self.heard: deque[str] = deque(maxlen=60)
        self.page.on("console", self._console)
        self.page.on("websocket", self._socket)
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.kind = "phone" if phone else "desktop"
        if appliance is not None:
            sign_in(self.page, appliance)

    def _socket(self, ws: WebSocket) -> None:
        if "/ws/events" in ws.url:
            self.heard.append(f"events socket opened: {ws.url}")
            ws.on("framereceived", lambda frame: self.heard.append(heard_event(frame)))
            ws.on("close", lambda _: self.heard.append("events socket closed"))

    def diagnosis(self) -> str:
        """What the page heard and logged lately (callbacks run while Playwright is called)."""
        self.page.wait_for_timeout(100)
        return "the page heard and logged, oldest first:\n" + "\n".join(self.heard)

    def _console(self, msg: ConsoleMessage) -> None:
        self.heard.append(f"console {msg.type}: {msg.text[:200]}")
        if msg.type != "error":
            return
        for status in self.expected:
            if f"status of {status} " in msg.text:
                self.expected.remove(status)
                return
        if any(text in msg.text for text in self.allowed):
            return
        if NETWORK_CHANGED in msg.text:
            self.network_changes += 1
            return
        where = (msg.location or {}).get("url")  # the resource a failed load asked for
        self.errors.append(f"console: {msg.text}" + (f" ({where})" if where else ""))

    @contextmanager
    def allowing(self, *texts: str) -> Iterator[None]:
        """Console errors containing one of ``texts`` are expected inside the block."""
        self.allowed.extend(texts)
        try:
            yield
        finally:
            del self.allowed[-len(texts):]

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.wait_for_timeout(300)  # let transitions settle; not an assertion
        self.page.screenshot(path=str(SHOTS / f"{name}-{self.kind}.png"))

    def close(self) -> None:
        self.context.close()


@contextmanager
def watched(browser: Browser, appliance: Appliance,
            viewport: ViewportSize = DESKTOP) -> Iterator[Watched]:
    """A :class:`Watched` page signed in to ``appliance`` (a phone's at PHONE), closed after."""
    page = Watched(browser, appliance.base, viewport, viewport is PHONE, appliance)
    try:
        yield page
    finally:
        page.close()


def hook(appliance: Appliance, sid: str, event: str) -> None:
    """Send a hook event with the session's hook token, as the agent in its container would
    (through the Unix socket here: the test is on the host, the token is what counts)."""
    key = load_or_create_instance_key(appliance.settings.instance_secret_path)
    token = derive_token(key, sid, Purpose.HOOK)
    transport = httpx.HTTPTransport(uds=str(appliance.settings.socket_path))
    with httpx.Client(transport=transport, base_url="http://clauderon", timeout=10) as http:
        r = http.post("/api/hooks", json={"session_id": sid, "event": event},
                      headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 204, r.text


def create_form(page: Page, repo: Path, name: str) -> None:
    """The create form, with ``repo`` (seen to be one) and the session's ``name`` filled in."""
    page.goto("/new")
    page.fill("#repo_path", str(repo))
    expect(page.get_by_test_id("repo-ok")).to_be_visible()
    page.fill("#name", name)


def terminal_lines(page: Page) -> list[str]:
    return [line.strip() for line in page.locator(".xterm-rows > div").all_inner_texts()]


def open_terminal(page: Page, name: str) -> None:
    """The session's web terminal, connected, its shell started and its prompt drawn (so
    nothing clears the screen later)."""
    page.goto(f"/s/{name}/terminal")
    expect(page.get_by_test_id("term-state")).to_have_text("Connected")
    page.locator(".xterm").click()
    page.keyboard.type("echo ready-$((40+2))\n")
    wait_for(lambda: "ready-42" in terminal_lines(page), timeout=30, what="the shell's answer")


@contextmanager
def agent_terminal(browser: Browser, appliance: Appliance,
                   repo: Path) -> Iterator[tuple[Watched, Any]]:
    """A running session's web terminal open in a :class:`Watched` page, and the session's
    container; the page's console errors fail the test after the block."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    with watched(browser, appliance) as desk:
        open_terminal(desk.page, session["name"])
        yield desk, container
        assert desk.errors == [], json.dumps(desk.errors, indent=1)


def to_terminals(container: Any, body: str, *args: str) -> None:
    """Run the shell ``body`` (its arguments ``args``) as the agent, its output to every
    terminal device the agent may write: the console's (the attach runs as its uid, past
    tmux)."""
    script = (f"write() {{\n{body}\n}}\n"
              'for t in /dev/pts/[0-9]*; do if [ -w "$t" ]; then write "$@" > "$t"; fi; done\n')
    agent_argv(container, ["sh", "-c", script, "sh", *args])


def console_sockets(page: Page) -> list[int]:
    """The readyState of every console WebSocket the page opened, oldest first."""
    states: list[int] = page.evaluate(
        "window.__sockets.filter(s => s.url.includes('/ws/console/')).map(s => s.readyState)")
    return states


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide at phone size"


class AttackSite:
    """An HTTP server on loopback serving one page: a hostile one, on another origin. It
    keeps the ``Cookie`` header of every request (:attr:`cookies`): cookies ignore ports;
    and the path each asked for (:attr:`paths`). Given ``tls`` (a test CA's certificate),
    it serves HTTPS."""

    def __init__(self, page: str, tls: trustme.LeafCert | None = None) -> None:
        body = page.encode()
        self.cookies: list[str] = []
        self.paths: list[str] = []
        cookies, paths = self.cookies, self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                cookies.append(self.headers.get("Cookie") or "")
                paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.configure_cert(context)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
