"""httpx through the running proxy: streaming both ways, upgrades, errors, the refresh."""

from __future__ import annotations

import json
from dataclasses import replace

import trio
import trustme
from conftest import SECRETS, Proxy, client, route
from proxy_fakes import FakeUpstream, chunks, websocket_through, ws_frame

from appliance.audit import Phase, parse_line


async def test_sse_first_event_arrives_before_the_stream_ends(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    auth = proxy.add_session("sse")
    lines = []
    with trio.fail_after(15):
        async with client(proxy, auth) as c, c.stream(
            "POST", "https://api.anthropic.com/sse", json={}
        ) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                lines.append(line)
                if line == "data: 1":
                    # The upstream holds the stream open until this acknowledgement.
                    fake.sse_ack.set()
    assert lines == ["event: first", "data: 1", "", "event: second", "data: 2", ""]


async def test_large_bodies_stream_both_ways_on_one_connection(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    auth = proxy.add_session("big")
    size = 8 * 1024 * 1024

    with trio.fail_after(30):
        async with client(proxy, auth) as c:
            r = await c.post("https://api.github.com/repos/o/r/git/blobs",
                             content=chunks(size // 65536, b"y"))
            assert r.json()["body_length"] == size
            got = 0
            async with c.stream("GET", f"https://api.github.com/big?n={size}") as r:
                async for chunk in r.aiter_bytes():
                    got += len(chunk)
            assert got == size
            for _ in range(3):
                assert (await c.get("https://api.github.com/again")).status_code == 200
    # Keep-alive on both sides: one upstream connection served every request. An exchange
    # that outlasts ``long_after`` (a slow run's 8 MiB) has an opening line too: its end counts.
    records = [line for line in map(parse_line, proxy.audit_path.read_text().splitlines())
               if line.phase is not Phase.OPEN]
    assert [r.bytes_in for r in records][:1] == [size]
    assert records[1].bytes_out == size


async def test_websocket_upgrade_is_relayed(proxy: Proxy, fake: FakeUpstream) -> None:
    sid, token = proxy.add_session("ws")
    with trio.fail_after(15):
        tls = await websocket_through(proxy.port, f"{sid}:{token}", proxy.ca_path, "/ws",
                                      "Authorization: Bearer placeholder\r\n")
        await tls.send_all(b"hello through the pipe")
        echoed = b""
        while len(echoed) < 24:
            echoed += await tls.receive_some(1024)
        assert echoed == ws_frame(0x1, b"HELLO THROUGH THE PIPE")
        await tls.aclose()
    assert fake.seen[-1].header("authorization") == [f"Bearer {SECRETS['openai_api_key']}"]


async def test_upstream_failures_are_502_with_an_error_type(
    proxy: Proxy, upstream_ca: trustme.CA, nursery: trio.Nursery
) -> None:
    auth = proxy.add_session("err")
    closed = trio.socket.socket()
    await closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    # A server whose certificate no configured CA signed.
    stranger = FakeUpstream(trustme.CA())
    await nursery.start(stranger.serve)
    route(proxy, dead_port, "api.github.com")
    route(proxy, stranger.port, "registry.npmjs.org")
    async with client(proxy, auth) as c:
        r = await c.get("https://api.github.com/user")
        assert (r.status_code, r.headers["x-proxy-error-type"]) == (502, "CONNECTION_REFUSED")
        r = await c.get("https://registry.npmjs.org/left-pad")
        assert (r.status_code, r.headers["x-proxy-error-type"]) == (502, "TLS_CERTIFICATE_ERROR")
    assert stranger.seen == []


async def test_no_way_home(proxy: Proxy, fake: FakeUpstream) -> None:
    """Without an override naming it, this machine is never a destination."""
    auth = proxy.add_session("home")
    proxy.state.config = replace(proxy.state.config, deny_unlisted=False)
    proxy.state.pool.reconfigure(proxy.state.config)
    async with client(proxy, auth) as c:
        for url in (f"https://127.0.0.1:{fake.port}/", f"http://127.0.0.1:{fake.port}/",
                    f"http://0.0.0.0:{fake.port}/", f"https://127.9.9.9:{fake.port}/"):
            r = await c.get(url)
            assert r.status_code == 403, (url, r.text, r.headers)
            assert r.headers["x-proxy-error-type"] == "DESTINATION_FORBIDDEN"
    assert fake.seen == []


async def test_codex_refresh_swaps_tokens_both_ways(
    proxy: Proxy, fake: FakeUpstream, tokens_written: list[dict[str, str | None]]
) -> None:
    auth = proxy.add_session("codex")
    fake.refresh_answer = {"access_token": "NEW-ACCESS", "refresh_token": "NEW-REFRESH",
                           "id_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"}
    async with client(proxy, auth) as c:
        r = await c.post("https://auth.openai.com/oauth/token", json={
            "grant_type": "refresh_token", "refresh_token": "DUMMY"})
        answer = r.json()
        r2 = await c.get("https://chatgpt.com/backend-api/codex/models",
                         headers={"authorization": "Bearer DUMMY"})
    sent = json.loads(fake.seen[0].body)
    assert sent["refresh_token"] == SECRETS["codex_refresh_token"]
    assert answer["refresh_token"] == "DUMMY"
    assert "NEW" not in json.dumps(answer)
    assert answer["id_token"].endswith(".eyJzdWIiOiJ4In0.clauderon-unsigned")
    assert tokens_written == [fake.refresh_answer]
    assert r2.status_code == 200
    assert fake.seen[1].header("authorization") == ["Bearer NEW-ACCESS"]
    assert fake.seen[1].header("chatgpt-account-id") == [SECRETS["codex_account_id"]]


async def test_the_chatgpt_login_goes_to_codexs_paths_alone(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    """The person's ChatGPT login went with every request to chatgpt.com: an agent read the
    person's own conversations and memories with it. It goes to Codex's paths alone."""
    auth = proxy.add_session("codex-reader")
    mine = ("/backend-api/conversations?offset=0&limit=28", "/backend-api/memories",
            "/backend-api/conversation/abc", "/backend-api/me", "/backend-api/codexes",
            "/backend-api/%63odex/models", "/backend-api/codex/../conversations",
            "/backend-api/codex/%2e%2e/conversations", "/api/codex/../../backend-api/me")
    codex = ("/backend-api/codex/responses", "/backend-api/wham/accounts/check",
             "/backend-api/plugins/export/curated", "/api/codex/usage")
    async with client(proxy, auth) as c:
        for path in mine + codex:
            await c.get(f"https://chatgpt.com{path}", headers={"authorization": "Bearer DUMMY"})
    said = {s.target: s.header("authorization") for s in fake.seen}
    real = [f"Bearer {SECRETS['codex_access_token']}"]
    assert [p for p in mine if said.get(p) == real] == [], said
    assert [p for p in codex if said.get(p) != real] == [], said


async def test_a_refresh_answer_hands_back_no_real_token_wherever_it_sits(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    """The refresh answer's token fields are swapped; a real token anywhere else (the one
    sent, quoted back; a new one where none is expected) is masked."""
    auth = proxy.add_session("codex")
    fake.refresh_answer = {"access_token": "NEW-ACCESS-1", "refresh_token": "NEW-REFRESH-1",
                           "debug": f"got {SECRETS['codex_refresh_token']}, gave NEW-ACCESS-1"}
    async with client(proxy, auth) as c:
        r = await c.post("https://auth.openai.com/oauth/token", json={
            "grant_type": "refresh_token", "refresh_token": "DUMMY"})
    assert r.status_code == 200
    assert "NEW-" not in r.text and SECRETS["codex_refresh_token"] not in r.text
    assert r.json()["debug"] == (f"got {'*' * len(SECRETS['codex_refresh_token'])}, gave "
                                 f"{'*' * len('NEW-ACCESS-1')}")
    notes = [parse_line(x).note for x in proxy.audit_path.read_text().splitlines()]
    assert notes[-1] == "the answer carried the person's codex_refresh_token back: masked (2x)"


async def test_malformed_request_gets_400_and_close(proxy: Proxy) -> None:
    with trio.fail_after(10):
        async with await trio.open_tcp_stream("127.0.0.1", proxy.port) as stream:
            await stream.send_all(b"GARBAGE\x00 / HTTP/9\r\n\r\n")
            data = b""
            while chunk := await stream.receive_some(1024):
                data += chunk
    assert data.startswith(b"HTTP/1.1 400")
