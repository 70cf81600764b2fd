"""Edges through the running proxy: connect timeouts, names that do not resolve, an upstream
that refuses an upload early (and one that then stops reading), WebSocket hang-ups on either
side, a client hanging up while the upstream is silent, IPv6 literal targets, trailers.

Every destination is on this machine: the timeout comes from a loopback listener whose
accept queue is full, and the name that cannot resolve is longer than DNS allows, so the
resolver refuses it before any query is sent.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
import trustme
from conftest import SECRETS, Proxy, client, override, serve_as
from proxy_fakes import (
    EarlyRefuser,
    FakeUpstream,
    Seen,
    Tunnel,
    _Base,
    chunks,
    websocket_through,
    ws_frame,
)
from smuggle_fakes import RawTunnel, StallingRefuser

from appliance.audit import parse_line
from proxy import gitguard
from proxy.proxy_config import Upstream

#: Valid labels, too long a name: getaddrinfo refuses it locally (no packet leaves).
UNRESOLVABLE = ".".join(["nonexistent" * 5] * 5) + ".invalid"
#: A GitHub write a session may make: read ahead by the proxy before it goes upstream.
ISSUES = "https://api.github.com/repos/o/r/issues"


@contextmanager
def full_backlog() -> Iterator[int]:
    """A loopback port that takes no connection: backlog 0, queue filled, never accepted."""
    listener = socket.socket()
    fillers = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_connection_timeout_is_504_and_dns_failure_502(proxy: Proxy) -> None:
    auth = proxy.add_session("slow")
    with full_backlog() as port:
        override(proxy, connect_timeout=0.5, upstreams={
            "api.github.com": Upstream(scheme="https", host="127.0.0.1", port=port),
            "registry.npmjs.org": Upstream(scheme="https", host=UNRESOLVABLE, port=443),
        })
        with trio.fail_after(20):
            async with client(proxy, auth) as c:
                r = await c.get("https://api.github.com/user")
                assert (r.status_code, r.headers["x-proxy-error-type"]) == (
                    504, "CONNECTION_TIMEOUT")
                r = await c.get("https://registry.npmjs.org/left-pad")
                assert (r.status_code, r.headers["x-proxy-error-type"]) == (
                    502, "DNS_RESOLUTION_FAILURE")
    errors = [parse_line(x).error for x in proxy.audit_path.read_text().splitlines()]
    assert errors[-2:] == ["CONNECTION_TIMEOUT", "DNS_RESOLUTION_FAILURE"]


async def test_an_early_413_reaches_the_client_while_it_uploads(
    proxy: Proxy, upstream_ca: trustme.CA, nursery: trio.Nursery
) -> None:
    auth = proxy.add_session("upload")
    refuser = await serve_as(proxy, nursery, EarlyRefuser(upstream_ca), "api.github.com")

    with trio.fail_after(30):
        async with client(proxy, auth) as c:
            # Far more than any socket buffer holds.
            r = await c.post(ISSUES, content=chunks(256))
    assert (r.status_code, r.text) == (413, "upload too large\n")
    assert refuser.refused == 1
    with trio.fail_after(10):  # the line is written once the rest of the upload is dropped
        while not proxy.audit_path.read_text():
            await trio.sleep(0.01)
    assert parse_line(proxy.audit_path.read_text().splitlines()[-1]).status == 413


async def test_websocket_pair_ends_when_either_side_hangs_up(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    """Long idle timeout: only the hang-up itself can end the pair before fail_after."""
    auth = proxy.add_session("ws-close")
    override(proxy, idle_timeout=3600.0)
    with trio.fail_after(15):
        # The upstream hangs up: the client reads what it sent, then the end.
        tls = await websocket_through(proxy.port, ":".join(auth), proxy.ca_path, "/ws-close")
        got = b""
        while True:
            data = await tls.receive_some(1024)
            if not data:
                break
            got += data
        assert got == ws_frame(0x8, b"bye")
        await trio.aclose_forcefully(tls)
        # The client hangs up: the upstream sees the end of its stream.
        tls = await websocket_through(proxy.port, ":".join(auth), proxy.ca_path, "/ws")
        await tls.send_all(b"ping")
        echoed = b""
        while len(echoed) < 6:
            echoed += await tls.receive_some(1024)
        assert echoed == ws_frame(0x1, b"PING")
        await tls.aclose()
        await fake.ws_closed.wait()


async def test_a_client_hanging_up_frees_the_upstream_of_a_silent_answer(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    """Long read timeout: only noticing the hang-up can free the upstream before fail_after.

    Once mid-stream (after one SSE event, the client closes with a close_notify) and once
    before the answer's head (the client drops the TCP connection without one).
    """
    auth = proxy.add_session("hang-up")
    override(proxy, read_timeout=3600.0)
    with trio.fail_after(15):
        for path in ("/silent-stream", "/silent-head"):
            tunnel = await Tunnel.open(proxy.port, ":".join(auth), "api.openai.com",
                                       proxy.ca_path)
            await tunnel.tls.send_all(
                f"GET {path} HTTP/1.1\r\nHost: api.openai.com\r\n\r\n".encode())
            if path == "/silent-stream":
                got = b""
                while b"data: 1" not in got:
                    got += await tunnel.tls.receive_some(65536)
                await tunnel.tls.aclose()
            else:
                while not any(s.target == path for s in fake.seen):
                    await trio.sleep(0.01)
                await trio.aclose_forcefully(tunnel.tls)
            await fake.silent_closed[path].wait()
    assert len(proxy.state.idle_scopes) == 0


async def test_ipv6_literal_targets(
    proxy: Proxy, upstream_ca: trustme.CA, nursery: trio.Nursery
) -> None:
    fake6 = FakeUpstream(upstream_ca, host="::1")
    await nursery.start(fake6.serve)
    auth = proxy.add_session("v6")
    override(proxy, upstreams={"::1": Upstream(scheme="https", host="::1", port=fake6.port)})
    with trio.fail_after(15):
        # httpx sends ``CONNECT ::1:port``; curl the bracketed ``CONNECT [::1]:port``.
        async with client(proxy, auth) as c:
            r = await c.get(f"https://[::1]:{fake6.port}/six")
        assert r.status_code == 200, r.text
        assert fake6.seen[-1].header("host") == [f"[::1]:{fake6.port}"]
        done = await trio.run_process(
            ["curl", "-sS", "--max-time", "10", "--cacert", str(proxy.ca_path), "--proxy",
             proxy.url(*auth), "-o", "/dev/null", "-w", "%{http_code}",
             f"https://[::1]:{fake6.port}/six"], capture_stdout=True, capture_stderr=True,
            check=False)
        assert done.stdout == b"200", done.stderr
    assert [s.target for s in fake6.seen] == ["/six", "/six"]
    record = parse_line(proxy.audit_path.read_text().splitlines()[-1])
    assert (record.host, record.path, record.status) == ("::1", "/six", 200)


async def test_an_early_413_from_an_upstream_that_stops_reading_releases_both_sides(
    proxy: Proxy, upstream_ca: trustme.CA, nursery: trio.Nursery
) -> None:
    """Long read timeout: only stopping the upload at the 413 can end this before fail_after.

    The upstream answers from the head alone, then neither reads nor closes.
    """
    auth = proxy.add_session("stalled")
    refuser = await serve_as(proxy, nursery, StallingRefuser(upstream_ca), "api.github.com",
                             read_timeout=3600.0)

    with trio.fail_after(30):
        async with client(proxy, auth) as c:
            # Far more than the socket buffers on both sides hold.
            r = await c.post(ISSUES, content=chunks(512))
        assert (r.status_code, r.text) == (413, "upload too large\n")
        await refuser.released.wait()  # the proxy closed the upstream connection
        while not proxy.audit_path.read_text():
            await trio.sleep(0.01)
    assert len(refuser.heads) == 1
    assert parse_line(proxy.audit_path.read_text().splitlines()[-1]).status == 413


async def test_a_github_write_too_long_to_read_whole_vouches_for_nothing(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    """The proxy reads the first 8 MiB of a session's GitHub write before it goes upstream.
    An approval, or a pull request's new base, written after that much padding is refused,
    never passed on unread; a write no rule reads the body of goes up whole (the control)."""
    auth = proxy.add_session("long")
    pad = b"x" * (9 << 20)
    smuggled = {
        "/repos/o/r/pulls/7/reviews": b'{"body": "' + pad + b'", "event": "APPROVE"}',
        "/repos/o/r/pulls/7": b'{"title": "' + pad + b'", "base": "release"}',
        "/repos/o/r/git/refs": b'{"sha": "' + pad + b'", "ref": "refs/heads/main"}',
    }
    with trio.fail_after(60):
        async with client(proxy, auth) as c:
            for path, body in smuggled.items():
                r = await c.post(f"https://api.github.com{path}", content=body)
                assert r.status_code == 403, (path, r.status_code)
                assert "too long to be read whole" in r.text, r.text
            r = await c.post(ISSUES, content=b'{"title": "' + pad + b'"}')
            assert r.status_code == 200 and r.json()["body_length"] == len(pad) + 13
    assert [seen.target for seen in fake.seen] == ["/repos/o/r/issues"]


async def test_a_long_github_write_is_judged_off_the_proxys_loop(
    proxy: Proxy, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Judging a body is pure Python: on the proxy's one loop, a long one an agent sends in
    a loop would hold every session's requests while it is read. A long body is judged in a
    worker thread; a short one on the loop. (A spy notes where the rules ran.)"""
    on_loop: list[bool] = []
    judge = gitguard.api_refusal

    def spy(*args: Any) -> str | None:
        on_loop.append(threading.current_thread() is threading.main_thread())
        return judge(*args)

    monkeypatch.setattr(gitguard, "api_refusal", spy)
    auth = proxy.add_session("offloop")
    pull = "https://api.github.com/repos/o/r/pulls/7"  # an edit: judged by its body
    fake.github["/repos/o/r/pulls/7"] = {  # the session's own
        "head": {"ref": "clauderon/offloop", "repo": {"full_name": "o/r"}}}
    with trio.fail_after(30):
        async with client(proxy, auth) as c:
            long = b'{"title": "' + b"x" * (1 << 20) + b'"}'
            assert (await c.patch(pull, content=long)).status_code == 200
            assert (await c.patch(pull, content=b'{"title": "t"}')).status_code == 200
            # A write no rule reads the body of is not read ahead: judged by its path alone.
            assert (await c.post(ISSUES, content=long)).status_code == 200
    assert on_loop == [False, True, True]


async def test_a_session_reads_ahead_two_bodies_at_once_and_holds_up_no_other(
    proxy: Proxy, fake: FakeUpstream, nursery: trio.Nursery
) -> None:
    """A body a rule reads is held in the proxy's memory while it arrives (up to 8 MiB), and
    a container may hold hundreds of connections. A session's uploads that stall take two
    slots; its next waits for one, while another session's goes at once."""
    hoarder, other = proxy.add_session("hoarder"), proxy.add_session("other")
    graphql = "https://api.github.com/graphql"
    query = {"query": "query { viewer { login } }"}
    stalled = []
    with trio.fail_after(30):
        for _ in range(2):
            tunnel = await Tunnel.open(proxy.port, ":".join(hoarder), "api.github.com",
                                       proxy.ca_path)
            await tunnel.tls.send_all(
                b"POST /graphql HTTP/1.1\r\nHost: api.github.com\r\n"
                b"Content-Type: application/json\r\nContent-Length: 9000000\r\n\r\n"
                + b'{"query": "' + b" " * 65536)
            stalled.append(tunnel)
        while proxy.state.read_ahead.held(hoarder[0]) < 2:
            await trio.sleep(0.01)
        third = trio.Event()

        async def wait_for_a_slot() -> None:
            async with client(proxy, hoarder) as c:
                assert (await c.post(graphql, json=query)).status_code == 200
            third.set()

        nursery.start_soon(wait_for_a_slot)
        async with client(proxy, other) as c:
            assert (await c.post(graphql, json=query)).status_code == 200
        assert not third.is_set() and proxy.state.read_ahead.held(hoarder[0]) == 2
        await stalled[0].tls.aclose()  # one stalled upload hangs up: its slot is free
        await third.wait()
        await stalled[1].tls.aclose()
        while proxy.state.read_ahead.in_use():
            await trio.sleep(0.01)  # nothing is kept for a session once it holds no slot


async def test_a_read_that_names_another_method_never_goes_with_a_credential(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    """Every rule tells a read from a write by the method; some servers take the method
    from a header instead. A GET that asks to be a PUT (a merge, here) is refused and never
    reaches the service; the same GET without the header goes (the control)."""
    auth = proxy.add_session("override")
    merge = "https://api.github.com/repos/o/r/pulls/1/merge"
    with trio.fail_after(30):
        async with client(proxy, auth) as c:
            for name in ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
                         "X_HTTP_Method_Override"):  # a CGI environment reads _ as -
                r = await c.get(merge, headers={name: "PUT"})
                assert r.status_code == 403, (name, r.status_code)
                assert r.headers["x-proxy-error-type"] == "CREDENTIAL_USE"
                assert name.lower() in r.text
            assert fake.seen == []
            assert (await c.get(merge)).status_code == 200
    assert [(seen.method, seen.target) for seen in fake.seen] == [
        ("GET", "/repos/o/r/pulls/1/merge")]


async def test_a_request_that_names_another_path_never_goes_with_a_credential(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    """Every rule reads the request's own path; IIS's URL Rewrite and some frameworks route
    by a header instead (``X-Original-URL``, ``X-Rewrite-URL``). A refresh at
    ``/oauth/token`` (where the real refresh token goes in) naming ``/v1/echo``, and an issue
    a session may open naming a merge, are refused and never reach the service; the same
    requests without the header go (the controls)."""
    auth = proxy.add_session("rewrite")
    refresh = "https://auth.openai.com/oauth/token"
    body = {"grant_type": "refresh_token", "refresh_token": "DUMMY"}
    fake.refresh_answer = {"access_token": "NEW-ACCESS", "refresh_token": "NEW-REFRESH"}
    with trio.fail_after(30):
        async with client(proxy, auth) as c:
            for name in ("X-Original-URL", "X-Rewrite-URL", "X_Original_URL"):
                r = await c.post(refresh, json=body, headers={name: "/v1/echo"})
                assert r.status_code == 403, (name, r.status_code)
                assert r.headers["x-proxy-error-type"] == "CREDENTIAL_USE"
                assert name.lower() in r.text
                r = await c.post(ISSUES, json={"title": "t"},
                                 headers={name: "/repos/o/r/pulls/1/merge"})
                assert r.status_code == 403, (name, r.status_code)
            assert fake.seen == []
            assert (await c.post(refresh, json=body)).status_code == 200
            assert (await c.post(ISSUES, json={"title": "t"})).status_code in (200, 201)
    assert [(seen.method, seen.target) for seen in fake.seen] == [
        ("POST", "/oauth/token"), ("POST", "/repos/o/r/issues")]


async def test_trailers_travel_both_ways(proxy: Proxy, fake: FakeUpstream) -> None:
    auth = proxy.add_session("trailers")
    with trio.fail_after(20):
        t = await RawTunnel.open(proxy.port, ":".join(auth), "api.github.com", proxy.ca_path)
        await t.send(b"POST /repos/o/r/issues HTTP/1.1\r\nHost: api.github.com\r\n"
                     b"X-Fake-Path: /trailers\r\n"
                     b"Transfer-Encoding: chunked\r\nTrailer: x-digest\r\n\r\n"
                     b"5\r\nhello\r\n0\r\nX-Digest: sha256=req\r\n"
                     b"Authorization: Bearer placeholder-in-a-trailer\r\n\r\n")
        status, _, body, trailers = await t.answer()
        await t.aclose()
    assert (status, body) == (200, b"streamed")
    assert trailers == [(b"x-checksum", b"sha256=abc")]  # its content-length trailer dropped
    seen = fake.seen[-1]
    assert (seen.body, seen.trailers) == (b"hello", [("x-digest", "sha256=req")])
    assert seen.header("authorization") == [f"Bearer {SECRETS['github_token']}"]


class AnswersOnce(_Base):
    """A service that hangs up after each answer without saying so (its idle limit, say)."""

    async def answer(self, stream: trio.abc.Stream, conn: object, seen: Seen) -> bool:
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return False


async def test_a_last_request_is_sent_again_on_a_fresh_connection_when_the_kept_one_died(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA) -> None:
    """A request that ends its connection (``Connection: close``) and met a kept upstream
    connection the service had hung up was sent again by waiting for a request end it had
    read already: its client got nothing, after the read timeout."""
    once = AnswersOnce(upstream_ca)
    await nursery.start(once.serve)
    override(proxy, read_timeout=5.0, upstreams={"api.github.com": Upstream(
        scheme="https", host="127.0.0.1", port=once.port)})
    auth = proxy.add_session("last-request")
    answers = []
    for _ in range(2):
        async with client(proxy, auth) as c:
            r = await c.get("https://api.github.com/user", headers={"connection": "close"})
            answers.append((r.status_code, r.text))
    assert answers == [(200, "ok")] * 2
    assert once.connections == 2  # the second went on a fresh one
