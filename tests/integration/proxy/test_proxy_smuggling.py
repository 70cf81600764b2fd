"""The hostile agent against the proxy's framing: smuggling, shared connections, fronting.

The upstream behind ``api.github.com`` and ``api.openai.com`` is one Content-Length-framing
server (``smuggle_fakes.ClFramingUpstream``) that echoes request bodies, the back end a
smuggler wants: a request with both ``Transfer-Encoding`` and ``Content-Length`` copied
through would let one session plant a request whose answer another session reads, or
swallow the next request on the connection -- with its injected credential -- into a body
that is echoed back. Each attack is refused with 400 and nothing of it reaches the upstream;
the positive controls show the same sessions still get their own answers.
"""

from __future__ import annotations

import base64
import json

import pytest
import trio
import trustme
from conftest import SECRETS, Proxy, serve_as
from smuggle_fakes import CgiFramingUpstream, ClFramingUpstream, RawTunnel

from appliance.audit import AuditRecord, parse_line

GH = "api.github.com"
REAL = list(SECRETS.values())


@pytest.fixture
async def raw(proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA) -> ClFramingUpstream:
    return await serve_as(proxy, nursery, ClFramingUpstream(upstream_ca), GH, "api.openai.com")


def audit(proxy: Proxy) -> list[AuditRecord]:
    return [parse_line(line) for line in proxy.audit_path.read_text().splitlines()]


def smuggle(planted: bytes) -> bytes:
    """TE.CL: the proxy would read one chunk; a CL-framing upstream reads only its size
    line, and takes the chunk (``planted``) for the next request on the connection."""
    chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(planted), planted)
    size_line = b"%x\r\n" % len(planted)
    return (b"POST /innocent HTTP/1.1\r\nHost: api.github.com\r\n"
            b"Authorization: Bearer placeholder-A\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(size_line), chunk))


def get(path: str, host: str = GH, placeholder: str = "placeholder") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {placeholder}\r\n"
            "\r\n").encode()


async def tunnel(proxy: Proxy, auth: tuple[str, str], host: str = GH) -> RawTunnel:
    return await RawTunnel.open(proxy.port, ":".join(auth), host, proxy.ca_path)


async def test_te_cl_smuggling_is_refused_and_no_session_reads_another_answer(
    proxy: Proxy, raw: ClFramingUpstream
) -> None:
    a, b = proxy.add_session("smuggler"), proxy.add_session("victim")
    planted = b"GET /planted-by-a HTTP/1.1\r\nHost: api.github.com\r\nContent-Length: 7\r\n\r\n"
    swallow = b"POST /echo HTTP/1.1\r\nHost: api.github.com\r\nContent-Length: 900\r\n\r\n"
    with trio.fail_after(30):
        for attack in (planted, swallow):
            t = await tunnel(proxy, a)
            await t.send(smuggle(attack) + get("/second", placeholder="placeholder-A"))
            status, headers, body, _ = await t.answer()
            assert (status, headers["x-proxy-error-type"]) == (400, "AMBIGUOUS_FRAMING")
            assert b"both Transfer-Encoding and Content-Length" in body
            assert await t.closed()  # nothing after the refused head was read
            await t.aclose()
        # The victim's request, then the smuggler's next one: each gets its own answer.
        for who, host, path in ((b, "api.openai.com", "/victim"), (a, GH, "/after")):
            t = await tunnel(proxy, who, host)
            await t.send(get(path, host))
            status, _, body, _ = await t.answer()
            assert status == 200
            assert json.loads(body)["target"] == path
            assert not any(secret.encode() in body for secret in REAL)
            await t.aclose()
    assert [s.target for s in raw.seen] == ["/victim", "/after"]
    assert not any(b"planted" in data or b"/echo" in data or b"innocent" in data
                   for data in raw.received.values())
    refused = [r for r in audit(proxy) if r.status == 400]
    assert [(r.session, r.host, r.error) for r in refused] == [(a[0], GH, "AMBIGUOUS_FRAMING")] * 2


def head(*lines: str, body: bytes = b"") -> bytes:
    return ("\r\n".join(["POST /x HTTP/1.1", f"Host: {GH}", *lines]) + "\r\n\r\n").encode() + body


AMBIGUOUS = {
    # A server that drops the fragment would read ``/x``, where the proxy read a fetch.
    "fragment": head("Content-Length: 0").replace(b"POST /x ", b"POST /x#/git-upload-pack ", 1),
    "te and cl": head("Transfer-Encoding: chunked", "Content-Length: 3", body=b"0\r\n\r\n"),
    "cl twice": head("Content-Length: 5", "Content-Length: 5", body=b"hello"),
    "cl list": head("Content-Length: 5, 5", body=b"hello"),
    "te on 1.0": head("Transfer-Encoding: chunked", body=b"0\r\n\r\n").replace(
        b"HTTP/1.1", b"HTTP/1.0", 1),
    "folded header": head("X-A: 1", " chunked", "Content-Length: 0"),
    "folded te": head("Transfer-Encoding:", " chunked", body=b"0\r\n\r\n"),
    "bare lf": head("Content-Length: 0").replace(b"\r\n", b"\n"),
    "bare lf in one line": head("X-A: 1\nContent-Length: 0"),
    "control character": head("X-A: 1\x01", "Content-Length: 0"),
    "http/2.0": head("Content-Length: 0").replace(b"HTTP/1.1", b"HTTP/2.0", 1),
    "te gzip": head("Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"),
    "cl junk": head("Content-Length: 5;x", body=b"hello"),
    "space before colon": head("Transfer-Encoding : chunked", "Content-Length: 5",
                               body=b"hello"),
    "te with an underscore": head("Transfer_Encoding: chunked", "Content-Length: 5",
                                  body=b"0\r\n\r\n"),
    "cl with an underscore": head("Content_Length: 5", body=b""),
}


@pytest.mark.parametrize("name", list(AMBIGUOUS))
async def test_every_ambiguous_head_is_refused_inside_the_tunnel_and_in_plain_http(
    proxy: Proxy, raw: ClFramingUpstream, name: str
) -> None:
    auth = proxy.add_session("ambiguous")
    with trio.fail_after(20):
        t = await tunnel(proxy, auth)
        await t.send(get("/before") + AMBIGUOUS[name] + get("/after"))
        assert (await t.answer())[0] == 200
        status, headers, _, _ = await t.answer()
        assert status == 400 and headers["x-proxy-error-type"] in (
            "AMBIGUOUS_FRAMING", "MALFORMED_REQUEST")
        assert await t.closed()
        await t.aclose()
        # The same head as a plain request to the proxy (absolute form, proxy credentials).
        basic = base64.b64encode(":".join(auth).encode())
        plain = AMBIGUOUS[name].replace(b"POST /x", b"POST http://api.github.com/x", 1)
        cut = plain.index(b"\n") + 1
        plain = plain[:cut] + b"Proxy-Authorization: Basic " + basic + b"\r\n" + plain[cut:]
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(plain)
        got = b""
        while chunk := await stream.receive_some(65536):
            got += chunk
        await stream.aclose()
        assert got.startswith(b"HTTP/1.1 400 "), got[:200]
    assert [s.target for s in raw.seen] == ["/before"]


async def test_connections_are_never_shared_between_sessions_but_kept_within_one(
    proxy: Proxy, raw: ClFramingUpstream
) -> None:
    a, b = proxy.add_session("one"), proxy.add_session("two")
    conns: dict[str, int] = {}
    with trio.fail_after(20):
        for label, who, host in (("a1", a, GH), ("b1", b, GH), ("a2", a, GH),
                                 ("b2", b, GH), ("a-openai", a, "api.openai.com")):
            t = await tunnel(proxy, who, host)  # a new client connection each time
            await t.send(get(f"/{label}", host))
            status, _, body, _ = await t.answer()
            assert status == 200
            conns[label] = json.loads(body)["conn"]
            await t.aclose()
    assert conns["a1"] == conns["a2"]  # keep-alive within a session
    assert conns["b1"] == conns["b2"]
    assert conns["a1"] != conns["b1"]  # never across sessions
    assert conns["a-openai"] not in (conns["a1"], conns["b1"])  # nor across credentials
    assert raw.connections == 3


async def test_an_answer_framed_both_ways_is_relayed_and_its_connection_dropped(
    proxy: Proxy, raw: ClFramingUpstream
) -> None:
    auth = proxy.add_session("answers")
    with trio.fail_after(20):
        t = await tunnel(proxy, auth)
        for path in ("/first", "/both-framings", "/after"):
            await t.send(get(path))
            status, headers, body, _ = await t.answer()
            assert status == 200
            if path == "/both-framings":
                assert (body, headers.get("transfer-encoding")) == (b"hello", "chunked")
                assert "content-length" not in headers
        await t.aclose()
    assert [(s.target, s.conn) for s in raw.seen] == [
        ("/first", 0), ("/both-framings", 0), ("/after", 1)]


@pytest.fixture
async def cgi(proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA
              ) -> CgiFramingUpstream:
    return await serve_as(proxy, nursery, CgiFramingUpstream(upstream_ca), GH)


async def statuses_until_closed(t: RawTunnel) -> list[int]:
    """The status of every answer on the tunnel, until the proxy closes it."""
    out = []
    while True:
        try:
            out.append((await t.answer())[0])
        except (ConnectionError, trio.BrokenResourceError):
            return out


async def played(proxy: Proxy, auth: tuple[str, str], raw: bytes, upstream: CgiFramingUpstream
                 ) -> tuple[list[int], list[tuple[str, str, str | None]]]:
    """``raw`` sent in one tunnel to GitHub: the statuses the agent read until the proxy
    closed it, and what the upstream parsed (method, target, ``Authorization``)."""
    with trio.fail_after(20):
        t = await tunnel(proxy, auth)
        await t.send(raw)
        statuses = await statuses_until_closed(t)
        await t.aclose()
    return statuses, [(s.method, s.target, dict(s.headers).get("authorization"))
                      for s in upstream.seen]


async def test_a_framing_header_spelled_with_an_underscore_moves_no_branch(
    proxy: Proxy, cgi: CgiFramingUpstream
) -> None:
    """A back end that reads ``Transfer_Encoding`` as ``Transfer-Encoding`` (CGI's
    ``HTTP_TRANSFER_ENCODING``) ends a body where the proxy, reading its own
    ``Content-Length``, does not: the rest of it begins a request the proxy never judged,
    and the agent's next request on the connection -- its head, the injected token in it --
    becomes that request's headers. Here: a force-move of the person's ``main``."""
    auth = proxy.add_session("underscore")
    planted = (b"0\r\n\r\nPATCH /repos/person/repo/git/refs/heads/main HTTP/1.1\r\n"
               b"X-Ignore: ")
    first = (b"GET /repos/person/repo/commits HTTP/1.1\r\nHost: api.github.com\r\n"
             b"Authorization: Bearer placeholder\r\nTransfer_Encoding: chunked\r\n"
             b"Content-Length: %d\r\n\r\n%s" % (len(planted), planted))
    force = b'{"sha": "0123456789abcdef0123456789abcdef01234567", "force": true}'
    second = (b"GET /user HTTP/1.1\r\nHost: api.github.com\r\n"
              b"Authorization: Bearer placeholder\r\nConnection: close\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(force), force))
    statuses, parsed = await played(proxy, auth, first + second, cgi)
    assert not any(method == "PATCH" for method, _, _ in parsed), parsed
    assert statuses == [400]
    assert cgi.seen == []
    refused = [r for r in audit(proxy) if r.status == 400]
    assert [(r.session, r.error) for r in refused] == [(auth[0], "AMBIGUOUS_FRAMING")]


async def test_a_connect_inside_a_tunnel_reaches_no_upstream(
    proxy: Proxy, raw: ClFramingUpstream
) -> None:
    """The agent, inside its tunnel to a model API, asks for a tunnel again (``CONNECT
    /x``): forwarded, the API would get the injected key on a request that opens a stream
    no rule or mask reads after it. It is refused, and nothing reaches the upstream. (To
    GitHub, its rules already refused it as a write.)"""
    t = await tunnel(proxy, proxy.add_session("nested"), "api.openai.com")
    with trio.fail_after(30):
        await t.send(b"CONNECT /x HTTP/1.1\r\nHost: api.openai.com\r\n"
                     b"Authorization: Bearer placeholder\r\n\r\n")
        status, headers, body, _ = await t.answer()
        assert (status, headers["x-proxy-error-type"]) == (405, "BAD_METHOD"), body
        assert await t.closed()
    await t.aclose()
    assert raw.seen == [] and raw.received == {}
    assert [r.status for r in audit(proxy)][-1] == 405


async def test_a_body_on_a_get_never_becomes_the_next_requests_head(
    proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA
) -> None:
    """A back end that reads no body on a GET (none is expected there) takes the body the
    agent sent with one for the beginning of the next request on the connection: a
    force-move of ``main`` whose headers the agent's next request -- the injected token in
    them -- would finish. After a request with a body its method gives no meaning, the
    proxy's connection to the upstream carries nothing more."""
    cl0 = await serve_as(proxy, nursery,
                         CgiFramingUpstream(upstream_ca, bodiless=frozenset({"GET", "HEAD"})), GH)
    auth = proxy.add_session("cl0")
    planted = b"PATCH /repos/person/repo/git/refs/heads/main HTTP/1.1\r\nX-Ignore: "
    first = (b"GET /repos/person/repo/commits HTTP/1.1\r\nHost: api.github.com\r\n"
             b"Authorization: Bearer placeholder\r\n"
             b"Content-Length: %d\r\n\r\n%s" % (len(planted), planted))
    second = (b"GET /user HTTP/1.1\r\nHost: api.github.com\r\n"
              b"Authorization: Bearer placeholder\r\nConnection: close\r\n\r\n")
    statuses, parsed = await played(proxy, auth, first + second, cl0)
    assert not any(method == "PATCH" for method, _, _ in parsed), parsed
    assert statuses == [200, 200]
    assert [target for _, target, _ in parsed] == ["/repos/person/repo/commits", "/user"]
