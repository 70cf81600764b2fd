"""An exchange held open for hours is in the audit log while it is open.

A request's audit line was written when the exchange ended. An agent that upgrades to a
WebSocket (its credential injected into the handshake), or asks for an answer of server-sent
events, and keeps it open leaves no line for it as long as it stays open, and none at all
if the proxy is killed meanwhile. Now the proxy writes a line as the pipe or the stream
opens (what, where, which credential) and one as it ends (bytes, duration, outcome), the
second naming the first's id in ``stream``.

Any other exchange that outlasts ``long_after`` (a download that trickles, an upload that
does, a long poll) gets its opening line when it passes that bound, with the bytes moved so
far; the tests make the bound 0 (the line is then written as the exchange starts, nothing
moved yet) and hold the exchange until they have seen the line.

A real TLS client through the real proxy, to the fake upstream on loopback that echoes
each read upper-cased until the client hangs up.
"""

from __future__ import annotations

import json
from typing import Any

import trio
from conftest import Proxy, client, override
from proxy_fakes import FakeUpstream, websocket_through, ws_frame


def lines(proxy: Proxy) -> list[dict[str, Any]]:
    return [json.loads(x) for x in proxy.audit_path.read_text().splitlines()]


async def test_a_websocket_is_in_the_audit_log_while_it_is_open(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    sid, token = proxy.add_session("ws-held")
    with trio.fail_after(15):
        tls = await websocket_through(proxy.port, f"{sid}:{token}", proxy.ca_path, "/ws",
                                      "Authorization: Bearer placeholder\r\n")
        await tls.send_all(b"still here")
        echoed = b""
        while len(echoed) < 12:
            echoed += await tls.receive_some(1024)
        assert echoed == ws_frame(0x1, b"STILL HERE")
        # The pipe is open (the upstream has not seen its end): its line is already there.
        assert not fake.ws_closed.is_set()
        seen = [(x["session"], x["method"], x["host"], x["path"], x["status"],
                 x["credential"], x["decision"], x.get("phase")) for x in lines(proxy)]
        assert seen == [(sid, "GET", "api.openai.com", "/ws", 101, "openai_api_key",
                         "injected", "open")], seen
        await tls.aclose()
        await fake.ws_closed.wait()
        while len(lines(proxy)) < 2:
            await trio.sleep(0.01)
    opened, ended = lines(proxy)
    # One exchange: the end names the opening's id, and says what went through.
    assert ended["stream"] == opened["id"] == opened["stream"] != ended["id"]
    assert ended["phase"] == "end" and ended["status"] == 101 and ended["path"] == "/ws"
    assert opened["bytes_in"] == opened["bytes_out"] == 0
    assert ended["bytes_in"] == len(b"still here") and ended["bytes_out"] == 12
    assert ended["credential"] == "openai_api_key" and ended["decision"] == "injected"


async def test_a_stream_of_events_is_in_the_audit_log_while_it_streams(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    auth = proxy.add_session("sse-held")
    with trio.fail_after(15):
        async with client(proxy, auth) as c, c.stream(
            "POST", "https://api.anthropic.com/sse", json={}
        ) as r:
            async for line in r.aiter_lines():
                if line == "data: 1":
                    # The upstream holds the stream open until told: its line is there.
                    seen = [(x["session"], x["method"], x["path"], x["status"],
                             x.get("phase")) for x in lines(proxy)]
                    assert seen == [(auth[0], "POST", "/sse", 200, "open")], seen
                    fake.sse_ack.set()
        while len(lines(proxy)) < 2:
            await trio.sleep(0.01)
    opened, ended = lines(proxy)
    assert ended["stream"] == opened["id"] and ended["phase"] == "end"
    assert ended["bytes_out"] == len(b"event: first\ndata: 1\n\nevent: second\ndata: 2\n\n")


async def test_a_trickling_download_is_in_the_audit_log_while_it_trickles(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    auth = proxy.add_session("trickle")
    override(proxy, long_after=0.0)
    with trio.fail_after(15):
        async with client(proxy, auth) as c, c.stream(
            "GET", "https://api.anthropic.com/trickle") as r:
            got = b""
            async for part in r.aiter_raw():
                got += part
                if got == b"first":
                    # The upstream holds the rest until told: its line is already there.
                    seen = [(x["session"], x["method"], x["host"], x["path"], x["credential"],
                             x["bytes_out"], x.get("phase")) for x in lines(proxy)]
                    assert seen == [(auth[0], "GET", "api.anthropic.com", "/trickle",
                                     "anthropic_oauth_token", 0, "open")], seen
                    fake.trickle_ack.set()
        assert got == b"first+second"
        while len(lines(proxy)) < 2:
            await trio.sleep(0.01)
    opened, ended = lines(proxy)
    assert ended["stream"] == opened["id"] == opened["stream"] != ended["id"]
    assert ended["phase"] == "end" and ended["status"] == 200 and ended["bytes_out"] == 12


async def test_a_slow_upload_is_in_the_audit_log_while_it_goes_up(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    auth = proxy.add_session("slow-up")
    override(proxy, long_after=0.0)

    async def body() -> Any:
        yield b"x" * 1000
        # The rest waits until the exchange is in the log.
        while not [x for x in lines(proxy) if x.get("phase") == "open"]:
            await trio.sleep(0.01)
        yield b"y" * 24

    with trio.fail_after(15):
        async with client(proxy, auth) as c:
            r = await c.post("https://api.openai.com/upload", content=body())
        assert r.json()["body_length"] == 1024
        while len(lines(proxy)) < 2:
            await trio.sleep(0.01)
    opened, ended = lines(proxy)
    assert (opened["phase"], opened["method"], opened["credential"]) == (
        "open", "POST", "openai_api_key")
    assert ended["stream"] == opened["id"] and ended["bytes_in"] == 1024


async def test_a_short_request_has_one_line(proxy: Proxy, fake: FakeUpstream) -> None:
    auth = proxy.add_session("short")
    with trio.fail_after(15):
        async with client(proxy, auth) as c:
            r = await c.get("https://api.anthropic.com/plain")
        assert r.status_code == 200
    [line] = lines(proxy)
    assert (line["status"], line.get("phase"), line.get("stream")) == (200, None, None)
