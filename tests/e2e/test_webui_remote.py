"""Reached from another machine: the API bound to a non-loopback address over HTTPS, in real
Chromium on the other side of a virtual cable (real network namespaces and a veth pair).

The test makes two network namespaces, ``srv`` and ``cli``, joined by a veth pair on a
private /24 that exists only between them (no packet leaves this machine). The API runs in
``srv`` (``ip netns exec``), bound to its veth address, serving HTTPS with a certificate from
a test CA (trustme) for the name ``clauderon.test``, listed in ``public_names``. Chromium runs
in ``cli`` (Playwright launches it through ``ip netns exec``), resolves ``clauderon.test`` to
the server's address (``--host-resolver-rules``) and trusts the test certificate by its
public key hash (``--ignore-certificate-errors-spki-list``): a secure context with a name, so
passkeys work there too. The browser is asked to sign in, signs in with the link
``clauderon web`` prints for the public name, gets a ``__Host-`` ``Secure`` cookie, adds a
passkey on a virtual authenticator and signs in again with it alone.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import expect, sync_playwright

from tests.e2e.test_webui_auth import authenticator
from tests.e2e.webui_browser import ARGS, CHROMIUM, DESKTOP, TIMEOUT_MS
from tests.support.appliance import Appliance
from tests.support.netns import ip

pytestmark = pytest.mark.e2e
NAME = "clauderon.test"


@dataclass(frozen=True)
class Link:
    srv: str
    cli: str
    srv_addr: str
    cli_addr: str


@pytest.fixture
def netns() -> Iterator[Link]:
    tag = uuid.uuid4().hex[:6]
    net = random.randint(1, 250)
    link = Link(srv=f"crn-srv-{tag}", cli=f"crn-cli-{tag}", srv_addr=f"10.231.{net}.1",
                cli_addr=f"10.231.{net}.2")
    ip("netns", "add", link.srv)
    try:
        ip("netns", "add", link.cli)
        ip("link", "add", f"crs{tag}", "type", "veth", "peer", "name", f"crc{tag}")
        ip("link", "set", f"crs{tag}", "netns", link.srv)
        ip("link", "set", f"crc{tag}", "netns", link.cli)
        for ns, dev, addr in ((link.srv, f"crs{tag}", link.srv_addr),
                              (link.cli, f"crc{tag}", link.cli_addr)):
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
        yield link
    finally:
        for ns in (link.cli, link.srv):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def spki_hash(cert_pem: bytes) -> str:
    """What ``--ignore-certificate-errors-spki-list`` takes: base64(sha256(SPKI))."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    der = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_from_another_machine_sign_in_is_required_and_works(
        netns: Link, tmp_path: Path, engine: object) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert(NAME, netns.srv_addr)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    app = Appliance(tmp_path / "home", prefix=("ip", "netns", "exec", netns.srv),
                    server=f'host = "{netns.srv_addr}"\npublic_names = ["{NAME}"]\n'
                           f'tls_cert = "{cert}"\ntls_key = "{key}"\n',
                    # The API alone, in a namespace of its own: no sessions, so no sessions'
                    # network (its firewall belongs to the host's namespace).
                    docker_config='network = "none"\n')
    wrapper = tmp_path / "chromium-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {netns.cli} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    try:
        app.start("api")
        assert "over plain HTTP" not in app.log("api")  # TLS: no exposure warning
        # The link `clauderon web` prints for the public name (the CLI uses the socket).
        printed = app.cli("web", "--no-open", input="").stdout
        url = next(line.strip() for line in printed.splitlines() if NAME in line)
        assert url.startswith(f"https://{NAME}:{app.http_port}/signin#token=")
        base = f"https://{NAME}:{app.http_port}"
        args = [*ARGS, f"--host-resolver-rules=MAP {NAME} {netns.srv_addr}",
                f"--ignore-certificate-errors-spki-list={spki_hash(cert.read_bytes())}"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(wrapper), args=args,
                                        env={**os.environ})
            ctx = browser.new_context(viewport=DESKTOP, base_url=base)
            ctx.set_default_timeout(TIMEOUT_MS)
            try:
                page = ctx.new_page()
                cdp, device = authenticator(page)
                answer = page.goto("/")
                try:
                    expect(page.get_by_test_id("signin")).to_be_visible()
                except AssertionError as exc:  # what the browser shows, and what the API saw
                    raise AssertionError(
                        f"{exc}\nGET / answered {answer and answer.status} at {page.url}; the "
                        f"page says {page.inner_text('body')[:1000]!r}; the API logged:\n"
                        f"{app.log('api')[-4000:]}") from exc
                assert page.evaluate("window.isSecureContext")
                assert page.evaluate("fetch('/api/sessions').then(r => r.status)") == 401

                page.goto(url)
                expect(page.get_by_test_id("signed-in")).to_be_visible()
                [cookie] = ctx.cookies()
                assert cookie["name"] == "__Host-clauderon_session" and cookie["secure"]
                assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
                page.get_by_test_id("add-passkey").click()
                expect(page.get_by_test_id("passkey-added")).to_be_visible()
                [held] = cdp.send("WebAuthn.getCredentials",
                                  {"authenticatorId": device})["credentials"]
                assert held["rpId"] == NAME
                page.get_by_test_id("continue").click()
                expect(page.get_by_test_id("link-state")).to_have_text("Live")

                ctx.clear_cookies()
                page.goto("/")
                expect(page.get_by_test_id("signin")).to_be_visible()
                page.get_by_test_id("passkey-signin").click()
                expect(page.get_by_test_id("link-state")).to_have_text("Live")
                expect(page.get_by_test_id("empty")).to_be_visible()  # the session list
                who = page.evaluate("fetch('/api/auth/me', {headers: {'X-Clauderon-Bind': "
                                    "localStorage.getItem('clauderon.bind')}})"
                                    ".then(r => r.json())")
                assert who["session"]["method"] == "passkey"
            finally:
                ctx.close()
                browser.close()
        records = app.client().get("/api/auth/devices")
        assert [k["rp_id"] for k in records["passkeys"]] == [NAME]
        # The cleared cookie's session stays on the server (revocable) beside the passkey's.
        assert sorted(s["method"] for s in records["sessions"]) == ["link", "passkey"]
    finally:
        app.cleanup()
