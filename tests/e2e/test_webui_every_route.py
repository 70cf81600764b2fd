"""Every route and WebSocket the app registers, against a hostile page in real headless Chromium.

The routes are the app's own (its OpenAPI document, built from the app the service runs), so
a route added later is tried here without editing this test. For each, a page on another
loopback origin, with the person signed in to the appliance in the same browser, sends what a
page can send without a CORS preflight:

* form POSTs (``application/x-www-form-urlencoded``, ``multipart/form-data``,
  ``text/plain``) into frames, ``fetch`` in ``no-cors`` mode (GET, HEAD, and POST with each of
  those types), ``navigator.sendBeacon``;
* ``<img>``, ``<script>`` and ``<link rel=stylesheet>`` loads (a script or stylesheet that
  loaded would read JSON or tell one answer from another), and a frame navigated to it
  (a GET with effects would act);
* a method that needs a preflight (PUT, PATCH, DELETE) with ``fetch``: the preflight is
  refused and the request never sent;
* a WebSocket to each socket.

Nothing loads, nothing opens, every request reaches the API and is refused there (its log),
and nothing changes: sessions, the victim's journal, sign-ins, passkeys, tokens, egress and
budgets are as they were, and the person is still signed in.

A rebinding name (``rebind.test`` resolved to loopback by the browser's own rules) tries every
route with every method it is registered for, same-origin to itself: all refused for their
``Host`` (421), the sockets never opened.
"""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from api.openapi_dump import build
from tests.e2e.webui_browser import ARGS, CHROMIUM, DESKTOP, TIMEOUT_MS, AttackSite
from tests.support.appliance import Appliance, wait_for

pytestmark = pytest.mark.e2e

#: A page's own methods (no preflight); any other is tried once, to see its preflight refused.
SIMPLE = frozenset({"get", "head", "post"})


def routes(name: str, signed_in: str) -> list[dict[str, Any]]:
    """Every path the app registers, its parameters filled in (the victim session, the
    person's own sign-in for a device, a host for egress, a page of the web UI), with its
    methods and whether it is a WebSocket."""
    fill = {"ref": name, "host": "example.com", "rel": f"s/{name}/info"}
    out = []
    for template, ops in build()["paths"].items():
        path = re.sub(r"\{(\w+)\}", lambda m: fill[m.group(1)], template)
        if template.startswith("/api/auth/devices/"):
            path = f"/api/auth/devices/{signed_in}"
        out.append({"path": path, "methods": sorted(m for m in ops if m != "parameters"),
                    "ws": template.startswith("/ws/")})
    assert len(out) > 50 and any(r["ws"] for r in out)  # the document is the app's, whole
    return out


#: The hostile page: ROUTES and TARGET are filled in. Each route's attempts run together; the
#: outcomes land in window.__attack (``done`` once all have settled).
EVERY = """<!doctype html><meta charset=utf-8><title>cat gifs</title><script>
const T = TARGET, ROUTES = ROUTES_JSON, R = window.__attack = {};
// A frame's load (or a page's error) settles it; a refused frame may fire neither, so each
// also settles after a while (the API's log, not this, says the request arrived).
const late = (p, ms) => Promise.race([p, new Promise(ok => setTimeout(() => ok("late"), ms))]);
const caught = p => p.catch(e => "error: " + e.name);
function frame(setup) {
  return late(new Promise(ok => {
    const f = document.createElement("iframe");
    f.name = "f" + Math.random().toString(36).slice(2);
    f.onload = () => ok("loaded");
    document.body.appendChild(f);
    setup(f);
  }), 5000);
}
function form(path, enctype) {
  return frame(f => {
    const form = document.createElement("form");
    form.method = "POST"; form.action = T + path; form.enctype = enctype; form.target = f.name;
    const field = document.createElement("input");
    field.name = '{"name":"pwned","x":"'; field.value = '"}';
    form.appendChild(field); document.body.appendChild(form); form.submit();
  });
}
function element(tag, path) {
  return late(new Promise(ok => {
    const e = document.createElement(tag);
    e.onload = () => ok("load"); e.onerror = () => ok("error");
    if (tag === "link") { e.rel = "stylesheet"; e.href = T + path; } else { e.src = T + path; }
    document.body.appendChild(e);
  }), 10000);
}
function socket(path) {
  return late(new Promise(done => {
    const log = [];
    const ws = new WebSocket(T.replace("http", "ws") + path);
    ws.onopen = () => {
      log.push("open"); ws.send(JSON.stringify({type: "input", data: btoa("touch /tmp/pwned\\r")}));
    };
    ws.onmessage = m => log.push("message " + String(m.data).slice(0, 80));
    ws.onclose = () => { log.push("close"); done(log); };
  }), 10000);
}
const opaque = (path, init) => caught(fetch(T + path, {credentials: "include", ...init})
  .then(r => r.type + " " + r.status));
const body = JSON.stringify({name: "pwned", access_mode: "read-only", text: "touch /tmp/pwned"});
(async () => {
  for (const route of ROUTES) {
    const p = route.path, out = R[p] = {};
    const tries = route.ws ? {socket: () => socket(p)} : {
      get: () => opaque(p, {mode: "no-cors"}),
      head: () => opaque(p, {mode: "no-cors", method: "HEAD"}),
      cors_get: () => opaque(p, {}),
      post_text: () => opaque(p, {mode: "no-cors", method: "POST", body,
                            headers: {"Content-Type": "text/plain"}}),
      post_urlencoded: () => opaque(p, {mode: "no-cors", method: "POST",
                                  body: new URLSearchParams({name: "pwned"})}),
      post_multipart: () => opaque(p, {mode: "no-cors", method: "POST", body: (() => {
        const f = new FormData(); f.append("file", new Blob(["x"], {type: "image/png"}), "x.png");
        return f; })()}),
      beacon: () => Promise.resolve(navigator.sendBeacon(T + p, body)),
      img: () => element("img", p),
      script: () => element("script", p),
      link: () => element("link", p),
      form_urlencoded: () => form(p, "application/x-www-form-urlencoded"),
      form_multipart: () => form(p, "multipart/form-data"),
      form_text: () => form(p, "text/plain"),
      navigate: () => frame(f => { f.src = T + p; }),
    };
    for (const m of route.methods.filter(m => !["get", "head", "post"].includes(m))) {
      tries["preflighted_" + m] = () => opaque(p, {method: m.toUpperCase(), body,
        headers: {"Content-Type": "application/json"}});
    }
    for (const [k, attempt] of Object.entries(tries)) { out[k] = await late(attempt(), 15000); }
  }
  R.done = true;
})();
</script>"""


def state(appliance: Appliance, name: str, sid: str) -> dict[str, Any]:
    """What a request could change, read on the Unix socket."""
    api = appliance.client()
    keep = ("id", "name", "phase", "desired", "access_mode", "archived", "title", "rebuild",
            "backend_id", "pull", "skip_permissions", "egress_mode")
    devices = api.get("/api/auth/devices")
    return {
        "sessions": [{k: s.get(k) for k in keep}
                     for s in api.get("/api/sessions", all="true")["sessions"]],
        "events": api.get(f"/api/sessions/{sid}/events")["events"],
        "devices": {kind: sorted(d["id"] for d in devices[kind])
                    for kind in ("sessions", "passkeys", "tokens") if kind in devices},
        "egress": api.get("/api/egress"), "session_egress": api.get(
            f"/api/sessions/{name}/egress"),
        "budgets": api.get("/api/budgets"),
    }


def me(page: Any) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate(
        "fetch('/api/auth/me', {headers: {'X-Clauderon-Bind': "
        "localStorage.getItem('clauderon.bind') || ''}}).then(r => r.json())")
    return found


def leaked(tried: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the hostile page's attempts on ``tried`` read or opened (nothing, or a leak)."""
    found = {}
    for route in tried:
        for key, outcome in results[route["path"]].items():
            if key == "socket":
                ok = "open" not in outcome and not any(
                    str(e).startswith("message") for e in outcome)
            elif key in ("img", "script", "link"):
                ok = outcome != "load"  # never loaded: nothing read, no answer told apart
            elif key in ("beacon",) or key.startswith(("form_", "navigate")):
                ok = True  # sent; the API's log and the state below say what came of it
            else:
                ok = outcome == "opaque 0" or str(outcome).startswith("error:")
            if not ok:
                found[f"{key} {route['path']}"] = outcome
    return found


def test_a_hostile_page_gets_nothing_from_any_route(
        browser: Browser, appliance: Appliance, victim: dict[str, Any]) -> None:
    base = f"http://localhost:{appliance.http_port}"
    name, sid = victim["name"], victim["id"]
    ctx = browser.new_context(viewport=DESKTOP, base_url=base)
    ctx.set_default_timeout(TIMEOUT_MS)
    sites: list[AttackSite] = []
    try:
        page = ctx.new_page()
        page.goto(appliance.link())  # the person is signed in in this browser...
        expect(page.get_by_test_id("signed-in")).to_be_visible()
        signed_in = me(page)["session"]["id"]
        every = routes(name, signed_in)
        before = state(appliance, name, sid)
        seen = len(appliance.log("api"))

        def needles(route: dict[str, Any]) -> list[str]:
            p = route["path"]
            if route["ws"]:
                return [f"refused GET {p}:"]
            return [f"refused {m} {p}:" for m in ("GET", "HEAD", "POST")] + [
                f"refused OPTIONS {p}:" for m in route["methods"] if m not in SIMPLE]

        def unrefused(tried: list[dict[str, Any]]) -> list[dict[str, Any]]:
            """The routes with an attempt the API's log does not show refused."""
            log = appliance.log("api")[seen:]
            return [r for r in tried if any(n not in log for n in needles(r))]

        # ...and visits a page on another port of the same name: same-site, so even
        # SameSite=Strict cookies go along with every request it makes. An attempt the
        # browser dropped on the way (its addresses change as the engine adds networks for
        # other sessions: NETWORK_CHANGED) never reached the API: its route is tried again.
        tried, left = every, every
        for _ in range(3):
            sites.append(AttackSite(EVERY.replace("TARGET", json.dumps(base))
                                    .replace("ROUTES_JSON", json.dumps(tried))))
            evil = ctx.new_page()
            evil.goto(f"http://localhost:{sites[-1].port}/cats.html")
            wait_for(partial(evil.evaluate, "window.__attack.done"), timeout=600,
                     what="the hostile page's attempts on every route")
            results: dict[str, dict[str, Any]] = evil.evaluate("window.__attack")
            evil.close()
            assert leaked(tried, results) == {}
            try:  # every attempt reached the API and was refused there, not by the browser
                wait_for(lambda t=tried: not unrefused(t), timeout=60,
                         what="the API's refusal of every request")
                left = []
                break
            except AssertionError:
                tried = left = unrefused(tried)
        assert left == [], f"not refused in the API's log: {[r['path'] for r in left]}"

        # Nothing changed, and the person is still signed in.
        assert state(appliance, name, sid) == before
        assert me(page)["session"]["id"] == signed_in
    finally:
        ctx.close()
        for site in sites:
            site.close()


#: The rebinding page: every route with each of its methods, same-origin (a JSON body, any
#: method: nothing is cross-origin to a rebound name), and every socket.
REBOUND = """<!doctype html><title>cats</title><script>
const ROUTES = ROUTES_JSON, R = window.__attack = {};
const socket = path => new Promise(done => {
  const log = [];
  const ws = new WebSocket(`ws://${location.host}${path}`);
  ws.onopen = () => log.push("open");
  ws.onmessage = e => log.push("message " + String(e.data).slice(0, 80));
  ws.onclose = () => { log.push("closed"); done(log); };
});
(async () => {
  for (const route of ROUTES) {
    if (route.ws) { R["WS " + route.path] = await socket(route.path); continue; }
    for (const m of route.methods) {
      const init = {method: m.toUpperCase()};
      if (!["get", "head"].includes(m)) {
        init.body = "{}"; init.headers = {"Content-Type": "application/json"};
      }
      R[m.toUpperCase() + " " + route.path] = await fetch(route.path, init)
        .then(r => String(r.status), e => "error: " + e.name);
    }
  }
  R.done = true;
})();
</script>"""


def test_a_rebinding_name_is_refused_on_every_route(browser: Browser,
                                                    appliance: Appliance) -> None:
    origin = f"http://rebind.test:{appliance.http_port}"
    every = routes("victim", "a-device")
    # Chromium's Local Network Access checks would stop a public page's requests to loopback
    # in the browser; other browsers have none, so they are off and the appliance decides.
    rebound = browser.browser_type.launch(executable_path=CHROMIUM, args=[
        *ARGS, "--host-resolver-rules=MAP rebind.test 127.0.0.1",
        "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests"])
    try:
        page = rebound.new_page()
        page.route(f"{origin}/cats.html", lambda route: route.fulfill(
            status=200, content_type="text/html",
            body=REBOUND.replace("ROUTES_JSON", json.dumps(every))))
        page.goto(f"{origin}/cats.html")
        wait_for(lambda: page.evaluate("window.__attack.done"), timeout=300,
                 what="the rebinding page's requests")
        results: dict[str, Any] = page.evaluate("window.__attack")
        answered = {k: v for k, v in results.items()
                    if k != "done" and v not in ("421", ["closed"])}
        assert answered == {}, answered
        refused = {line.split('"msg": "refused ', 1)[1].split(":", 1)[0]
                   for line in appliance.log("api").splitlines()
                   if "does not answer to the host 'rebind.test" in line}
        sent = {k.replace("WS ", "GET ") for k in results if k != "done"}
        assert sent - refused == set()
        assert page.goto(f"http://localhost:{appliance.http_port}/api/health").status == 200
    finally:
        rebound.close()
