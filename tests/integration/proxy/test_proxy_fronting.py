"""The hostile agent steering a credential: cleartext, other ports, domain fronting.

A credential is chosen by the destination the proxy is asked for. These tests try to have
it sent where it does not belong: over plain ``http://`` to the rule's host (port 80, or
443 in cleartext), over TLS to another port, or -- inside a tunnel opened for one host --
to another host named by ``Host`` or by an absolute URL. The fake upstream echoes the
headers it received, so a leaked credential would show in the answer and in its record.
"""

from __future__ import annotations

import base64
import json

import pytest
import trio
from conftest import SECRETS, Proxy
from proxy_fakes import FakeUpstream, Tunnel
from smuggle_fakes import RawTunnel

from appliance.audit import parse_line

REAL = list(SECRETS.values())


async def plain(proxy: Proxy, auth: tuple[str, str], raw: bytes) -> tuple[int, bytes]:
    """One request to the proxy itself (absolute form), with the session's credentials."""
    basic = base64.b64encode(":".join(auth).encode())
    cut = raw.index(b"\r\n") + 2
    raw = raw[:cut] + b"Proxy-Authorization: Basic " + basic + b"\r\n" + raw[cut:]
    stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    await stream.send_all(raw)
    # Plain TCP to the proxy itself: the tunnel's h11 reader serves all the same.
    status, _, body, _ = await Tunnel(stream).answer()  # type: ignore[arg-type]
    await stream.aclose()
    return status, body


@pytest.mark.parametrize("url", ["http://api.github.com/user", "http://api.github.com:443/user",
                                 "http://API.GitHub.com:80/user"])
async def test_cleartext_gets_no_credential_and_loses_the_placeholder(
    proxy: Proxy, fake: FakeUpstream, url: str
) -> None:
    auth = proxy.add_session("cleartext")
    host = url.split("/")[2]
    with trio.fail_after(20):
        status, got = await plain(proxy, auth, f"GET {url} HTTP/1.1\r\nHost: {host}\r\n"
                                  "Authorization: Bearer placeholder\r\n\r\n".encode())
    assert status == 200, got
    assert not any(secret.encode() in got for secret in REAL)
    assert fake.seen[-1].target == "/user"  # it did reach the upstream
    assert fake.seen[-1].header("authorization") == []
    record = parse_line(proxy.audit_path.read_text().splitlines()[-1])
    assert (record.decision, record.credential) == ("passed", None)


async def test_tls_to_another_port_gets_no_credential(proxy: Proxy, fake: FakeUpstream) -> None:
    auth = proxy.add_session("port")
    with trio.fail_after(20):
        for port, expected in ((8443, []), (443, [f"Bearer {SECRETS['github_token']}"])):
            t = await RawTunnel.open(proxy.port, ":".join(auth), "api.github.com",
                                     proxy.ca_path, connect_port=port)
            authority = "api.github.com" if port == 443 else f"api.github.com:{port}"
            await t.send(f"GET /user HTTP/1.1\r\nHost: {authority}\r\n"
                         "Authorization: Bearer placeholder\r\n\r\n".encode())
            status, _, _, _ = await t.answer()
            assert status == 200
            assert fake.seen[-1].header("authorization") == expected  # 443: positive control
            await t.aclose()


FRONTED = [
    b"GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n",
    b"GET /v1/models HTTP/1.1\r\nHost: api.github.com:8443\r\n\r\n",
    b"GET https://api.openai.com/v1/models HTTP/1.1\r\nHost: api.github.com\r\n\r\n",
    b"GET https://api.openai.com/v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n",
    b"GET http://api.github.com/user HTTP/1.1\r\nHost: api.github.com\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", FRONTED)
async def test_a_host_other_than_the_connect_target_is_misdirected(
    proxy: Proxy, fake: FakeUpstream, request_bytes: bytes
) -> None:
    auth = proxy.add_session("fronting")
    with trio.fail_after(20):
        t = await RawTunnel.open(proxy.port, ":".join(auth), "api.github.com", proxy.ca_path)
        # A well-formed request first: the same tunnel works for its own host.
        await t.send(b"GET /ok HTTP/1.1\r\nHost: API.GITHUB.COM:443\r\n\r\n" + request_bytes)
        status, _, body, _ = await t.answer()
        assert status == 200 and json.loads(body)["target"] == "/ok"
        status, headers, body, _ = await t.answer()
        assert (status, headers["x-proxy-error-type"]) == (421, "MISDIRECTED_REQUEST")
        assert b"Misdirected request" in body
        assert await t.closed()
        await t.aclose()
    assert [s.target for s in fake.seen] == ["/ok"]
    record = parse_line(proxy.audit_path.read_text().splitlines()[-1])
    assert (record.status, record.decision, record.error, record.host) == (
        421, "denied", "MISDIRECTED_REQUEST", "api.openai.com" if b"https://api.openai"
        in request_bytes else "api.github.com")


async def test_a_plain_request_whose_host_differs_from_its_url_is_misdirected(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    auth = proxy.add_session("plain-fronting")
    with trio.fail_after(20):
        status, got = await plain(proxy, auth, b"GET http://api.github.com/user HTTP/1.1\r\n"
                                  b"Host: api.openai.com\r\n\r\n")
    assert status == 421 and b"Misdirected request" in got
    assert fake.seen == []
