"""A page on another port of the same host locks the user out of the web UI by planting one
cookie (real API, Debian's Chromium).

Cookies are kept per host, not per port: what a page on ``http://127.0.0.1:<other port>``
writes with ``document.cookie`` goes along with every request to the appliance on the same
host. A JSON-valued cookie (which many apps set, and any hostile page can) with
``Path=/api`` is sent before the session's, and the guard's cookie reader
(``http.cookies.SimpleCookie``) stopped at it: every API request was 401, and signing in
again did not help, since the planted cookie stays.

The same page can fill the browser's jar for the host (Chromium keeps 180 cookies of up to
4 KiB each per site): every request to the appliance then carries hundreds of KiB of
``Cookie`` header. The TCP listener read request heads of at most 16 KiB (Hypercorn's
default) and answered each with 431: the web UI did not even load, the sign-in page neither,
until the user found and cleared the neighbour's cookies.

A cookie of the session's own name did it too: ``localhost`` is a secure context, so the page
on another port may write ``__Host-clauderon_session``, which the guard read first; and over
plain HTTP a sibling host of the same site (``evil.example.com`` beside ``box.example.com``,
both mapped to loopback inside the browser) writes ``clauderon_session`` for the parent
domain, which the browser sends after the person's own. The guard now takes the value the
page's bind names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from playwright.sync_api import Browser, expect

from tests.e2e.webui_browser import ARGS, CHROMIUM, DESKTOP, AttackSite, Watched, sign_in, watched
from tests.support.appliance import Appliance, running


@pytest.fixture
def neighbour() -> Iterator[str]:
    site = AttackSite("<!doctype html><title>neighbour</title>")
    try:
        yield f"http://127.0.0.1:{site.port}/"
    finally:
        site.close()


#: The page's own call, as the web UI makes it: with the bind its sign-in left in storage.
BOUND = "{headers: {'X-Clauderon-Bind': localStorage.getItem('clauderon.bind') || ''}}"


def signed_in(w: Watched) -> bool:
    return bool(w.page.evaluate(
        f"fetch('/api/auth/me', {BOUND}).then(r => r.json()).then(b => b.signed_in)"))


def on_the_neighbour(w: Watched, neighbour: str, script: str) -> Any:
    """What ``script`` gives, run by the page on another port, in the person's browser."""
    other = w.context.new_page()
    try:
        other.goto(neighbour)
        return other.evaluate(script)
    finally:
        other.close()


def test_a_cookie_from_another_port_does_not_sign_the_user_out(
        browser: Browser, appliance: Appliance, neighbour: str) -> None:
    with watched(browser, appliance) as w:
        assert signed_in(w)  # the control
        on_the_neighbour(w, neighbour, "document.cookie = 'prefs={\"theme\":\"dark\"}; "
                                       "path=/api; max-age=31536000'")
        assert signed_in(w), "one cookie from another port signed the user out"
        sign_in(w.page, appliance)  # and signing in again must leave the user signed in
        assert signed_in(w)


def test_a_cookie_of_the_sessions_own_name_from_another_port_does_not_sign_the_user_out(
        browser: Browser, appliance: Appliance, neighbour: str) -> None:
    """``localhost`` and ``127.0.0.1`` are secure contexts, so a page on another port may
    write a ``Secure`` cookie with the ``__Host-`` prefix from script: the name the session
    cookie has over HTTPS, which the guard read first."""
    with watched(browser, appliance) as w:
        assert signed_in(w)  # the control
        on_the_neighbour(w, neighbour, "document.cookie = '__Host-clauderon_session="
                                       "planted; path=/; secure; max-age=31536000'")
        assert signed_in(w), "a planted __Host- session cookie signed the user out"


#: A name on a registrable domain, served over plain HTTP (a LAN name without a certificate),
#: and a sibling of it: the same site, so it may set cookies for the parent domain.
BOX, SIBLING = "box.example.com", "evil.example.com"


def test_a_sibling_host_tossing_the_session_cookie_does_not_sign_the_user_out(
        browser: Browser, tmp_path: Path, engine: object) -> None:
    """Both names resolve to loopback inside the browser (never a packet out). The sibling
    writes ``clauderon_session`` for ``Domain=example.com``: newer than the appliance's own,
    the browser sends it after it, and the guard took the last one."""
    with running(tmp_path / "home", "api",
                 server=f'public_names = ["{BOX}"]\n') as appliance:
        sibling = AttackSite("<!doctype html><title>a sibling</title>")
        mapped = browser.browser_type.launch(executable_path=CHROMIUM, args=[
            *ARGS, f"--host-resolver-rules=MAP {BOX} 127.0.0.1, MAP {SIBLING} 127.0.0.1"])
        try:
            w = Watched(mapped, f"http://{BOX}:{appliance.http_port}", DESKTOP, False,
                        appliance)
            assert signed_in(w)  # the control
            on_the_neighbour(w, f"http://{SIBLING}:{sibling.port}/",
                             "document.cookie = 'clauderon_session=tossed; "
                             "domain=example.com; path=/; max-age=31536000'")
            sent = [c["domain"] for c in w.context.cookies()
                    if c["name"] == "clauderon_session"]
            assert sorted(sent) == [".example.com", BOX]  # the browser took both
            assert signed_in(w), "a cookie tossed by a sibling host signed the user out"
        finally:
            mapped.close()
            sibling.close()


#: A tailnet: the appliance behind ``tailscale serve`` and another machine of the same tailnet
#: (``ts.net`` is a public suffix, so both are one site), both on HTTPS.
TAILNET_BOX, TAILNET_SIBLING = "box.tail1234.ts.net", "evil.tail1234.ts.net"

#: What the sibling's page does: toss a session cookie for the tailnet, then write cookies of
#: its own host until Chromium, which counts them per site (180), evicts other hosts' ones.
TOSS_AND_FILL = """() => {
  document.cookie = "clauderon_session=tossed; domain=tail1234.ts.net; path=/; secure";
  for (let i = 0; i < 400; i++) document.cookie = `fill${i}=x; path=/; secure`;
  return document.cookie.split("; ").length;
}"""


def test_a_sibling_on_the_tailnet_neither_shadows_nor_evicts_the_session_cookie(
        browser: Browser, tmp_path: Path, engine: object) -> None:
    """The appliance serves HTTPS itself here (a trustme certificate), as ``tailscale serve``
    does in front of it; both names resolve to loopback inside the browser. The sibling can
    write cookies for the whole site: its ``clauderon_session`` is never read over HTTPS
    (the cookie there is ``__Host-``), but its own cookies, past Chromium's limit per site,
    evicted the least recently used ones of every host of the site: the person's session."""
    from tests.e2e.test_webui_remote import spki_hash

    ca = trustme.CA()
    leaf = ca.issue_cert(TAILNET_BOX, TAILNET_SIBLING)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    with running(tmp_path / "home", "api",
                 server=f'public_names = ["{TAILNET_BOX}"]\ntls_cert = "{cert}"\n'
                        f'tls_key = "{key}"\n') as appliance:
        sibling = AttackSite("<!doctype html><title>a sibling</title>", tls=leaf)
        mapped = browser.browser_type.launch(executable_path=CHROMIUM, args=[
            *ARGS, f"--host-resolver-rules=MAP {TAILNET_BOX} 127.0.0.1, "
                   f"MAP {TAILNET_SIBLING} 127.0.0.1",
            f"--ignore-certificate-errors-spki-list={spki_hash(cert.read_bytes())}"])
        try:
            w = Watched(mapped, f"https://{TAILNET_BOX}:{appliance.http_port}", DESKTOP,
                        False, appliance)
            assert signed_in(w)  # the control
            written = on_the_neighbour(w, f"https://{TAILNET_SIBLING}:{sibling.port}/",
                                       TOSS_AND_FILL)
            assert written > 100  # the sibling's page holds what it wrote
            held = {c["name"] for c in w.context.cookies() if c["domain"] == TAILNET_BOX}
            assert held == {"__Host-clauderon_session"}, (
                "a sibling's cookies evicted the session cookie")
            assert signed_in(w)
        finally:
            mapped.close()
            sibling.close()


#: As many cookies, as large, as Chromium keeps for one site (it drops the oldest past 180).
FILL_THE_JAR = """() => {
  for (let i = 0; i < 180; i++)
    document.cookie = `fill${i}=${"x".repeat(4090)}; path=/; max-age=31536000`;
  return document.cookie.length;
}"""


def test_a_neighbour_filling_the_cookie_jar_does_not_lock_the_user_out(
        browser: Browser, appliance: Appliance, neighbour: str) -> None:
    with watched(browser, appliance) as w:
        assert signed_in(w)  # the control
        sent = on_the_neighbour(w, neighbour, FILL_THE_JAR)
        assert sent > 300_000  # what the browser now sends with every request to the host
        answer = w.page.evaluate(f"fetch('/api/auth/me', {BOUND}).then(r => r.status)")
        assert answer == 200, f"a full cookie jar from another port: the API answers {answer}"
        assert signed_in(w)
        w.page.reload()  # the web UI itself loads, and its live events connect
        expect(w.page.get_by_test_id("devices-link")).to_be_visible()
        opened = w.page.evaluate("""() => new Promise(done => {
            const ws = new WebSocket(`ws://${location.host}/ws/events`, ["clauderon",
                `clauderon.bind.${localStorage.getItem("clauderon.bind")}`]);
            ws.onmessage = () => { ws.close(); done("open"); };
            ws.onclose = () => done("closed"); })""")
        assert opened == "open"


def test_a_server_on_another_port_gets_the_cookie_but_cannot_sign_in_with_it(
        browser: Browser, appliance: Appliance) -> None:
    taker = AttackSite("<!doctype html><title>a neighbour's server</title>")
    w = Watched(browser, appliance.base, DESKTOP, False, appliance)
    try:
        assert signed_in(w)  # the control
        other = w.context.new_page()
        other.goto(f"http://127.0.0.1:{taker.port}/")
        other.close()
        # Cookies ignore ports (the page and its icon were both asked for, with the cookie).
        jar = next(c for c in taker.cookies if "clauderon_session=" in c)
        stolen = {"Cookie": jar, "Origin": appliance.base}
        base = appliance.base
        assert httpx.get(f"{base}/api/sessions", headers=stolen).status_code == 401
        assert not httpx.get(f"{base}/api/auth/me", headers=stolen).json()["signed_in"]
        r = httpx.put(f"{base}/api/budgets/global", json={"daily_usd": 1}, headers=stolen)
        assert r.status_code == 401, r.text
        r = httpx.get(f"{base}/ws/events", headers={
            **stolen, "Connection": "Upgrade", "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol": "clauderon"})
        assert r.status_code == 401, r.text
        # The person's own page still is signed in, its live events included.
        assert signed_in(w)
        w.page.reload()
        expect(w.page.get_by_test_id("link-state")).to_have_text("Live")
    finally:
        w.close()
        taker.close()
