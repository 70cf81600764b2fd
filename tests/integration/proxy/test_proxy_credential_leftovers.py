"""What is left of the person's credentials around a request, played by a hostile agent
through the real proxy (real TLS both ways, fake services on loopback).

* The minting path spelled as IIS (``%u002f``) or a lax UTF-8 decoder (overlong ``%c0%af``
  for ``/``, ``%c0%ae`` for ``.``) reads it: a server behind would answer the agent a new
  API key made from the person's login. Refused; a GitHub file with a real non-ASCII name
  is still read with the person's token.
* A cookie set in an answer to a request with the person's credential (a login's session
  cookie) would be a lasting credential in the agent's hands: dropped, and named in the
  audit line; so in a WebSocket's 101 too. An answer with no credential in its request
  keeps its cookies.
* One refresh of the person's Codex login stalled at its endpoint holds up no refresh of
  other grant (the agent's own code, which the person's token does not go into), and one
  of the same token waits for it only so long, then is told to try again.
* A refresh whose URL has a query is refused with a 400 that says why.
"""

from __future__ import annotations

import json

import h11
import httpx
import pytest
import trio
import trio.testing
import trustme
from conftest import SECRETS, Proxy, client, serve_as
from proxy_fakes import FakeUpstream, Seen, Tunnel, _Base, read_head

from proxy import refresh_relay

SPELLINGS = [
    "/api/oauth/claude_cli%c0%afcreate_api_key",  # overlong "/"
    "/api/oauth/claude_cli%C0%AFcreate_api_key",
    "/api/oauth/claude_cli%e0%80%afcreate_api_key",  # overlong "/", three bytes
    "/api/oauth/claude_cli%u002fcreate_api_key",  # IIS's %u
    "/api/oauth/claude_cli%U002Fcreate_api_key",
    "/v1/%c0%ae%c0%ae/api/oauth/claude_cli/create_api_key",  # overlong ".."
    "/v1/%u002e%u002e/api/oauth/claude_cli/create_api_key",
    "/api/oauth/claude_cli%25c0%25afcreate_api_key",  # escaped once more
    "/api/oauth/claude_cli/create%u005fapi%c1%9fkey",  # overlong "_"
    "/api/oauth/claude_cli/create_api_key%00",  # a C server's path ends at the NUL
    "/api/oauth/claude_cli/create_api_key.json",  # a format suffix
]


@pytest.mark.parametrize("path", SPELLINGS)
async def test_the_minting_path_spelled_for_a_lax_decoder_is_refused(
        proxy: Proxy, fake: FakeUpstream, path: str) -> None:
    async with client(proxy, proxy.add_session("lax-minter")) as c:
        r = await c.post(f"https://api.anthropic.com{path}", json={},
                         headers={"authorization": "Bearer dummy"})
    assert [seen.target for seen in fake.seen] == [], \
        f"{path} went to the service with the person's login"
    assert (r.status_code, r.headers["x-proxy-error-type"]) == (403, "CREDENTIAL_USE")
    assert "new credential" in r.text


async def test_a_github_file_with_a_non_ascii_name_is_still_read(
        proxy: Proxy, fake: FakeUpstream) -> None:
    async with client(proxy, proxy.add_session("cafe-reader")) as c:
        r = await c.get("https://api.github.com/repos/o/r/contents/caf%C3%A9.txt",
                        headers={"authorization": "Bearer dummy"})
    assert r.status_code == 200, r.text
    assert [seen.target for seen in fake.seen] == ["/repos/o/r/contents/caf%C3%A9.txt"]
    assert fake.seen[0].header("authorization") == [f"Bearer {SECRETS['github_token']}"]


class CookieSetter(_Base):
    """A service that answers a login's session cookie (and a bot-management one)."""

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        await self.reply(stream, conn, 200, b'{"ok":true}', extra=[
            ("set-cookie", "sessionKey=sk-ant-sid01-PERSONS-SESSION; Path=/; HttpOnly"),
            ("Set-Cookie", "__cf_bm=bot; Path=/"), ("set-cookie2", "legacy=1")])
        return True


async def test_a_cookie_set_in_answer_to_the_persons_credential_is_dropped(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA) -> None:
    setter = await serve_as(proxy, nursery, CookieSetter(upstream_ca),
                            "api.anthropic.com", "cookies.test")
    async with client(proxy, proxy.add_session("cookie-keeper")) as c:
        r = await c.get("https://api.anthropic.com/v1/models",
                        headers={"authorization": "Bearer dummy"})
        control = await c.get("https://cookies.test/")
    assert setter.seen[0].header("authorization") != ["Bearer dummy"]  # the person's went in
    assert r.status_code == 200
    got = [k for k, _ in r.headers.multi_items() if k.startswith("set-cookie")]
    assert got == [], f"the agent got the cookies {r.headers.get_list('set-cookie')}"
    lines = [json.loads(x) for x in proxy.audit_path.read_text().splitlines()]
    said = next(x for x in lines if x["host"] == "api.anthropic.com")
    assert "sessionKey, __cf_bm, legacy" in said["note"]
    assert "PERSONS-SESSION" not in proxy.audit_path.read_text()
    assert control.headers.get_list("set-cookie")[0].startswith("sessionKey=")


class CookieUpgrader(_Base):
    """A service that upgrades to a WebSocket with a login's session cookie in its 101."""

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        await self.send(stream, conn, h11.InformationalResponse(status_code=101, headers=[
            ("connection", "upgrade"), ("upgrade", "websocket"),
            ("set-cookie", "sessionKey=sk-ant-sid01-PERSONS-SESSION; Path=/; HttpOnly")]))
        with trio.fail_after(30):
            while await stream.receive_some(65536):
                pass
        return False


async def test_a_cookie_set_in_a_websockets_101_to_the_persons_credential_is_dropped(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA) -> None:
    upgrader = await serve_as(proxy, nursery, CookieUpgrader(upstream_ca), "api.openai.com")
    sid, token = proxy.add_session("ws-cookie-keeper")
    tunnel = await Tunnel.open(proxy.port, f"{sid}:{token}", "api.openai.com", proxy.ca_path)
    await tunnel.tls.send_all(
        b"GET /v1/realtime HTTP/1.1\r\nHost: api.openai.com\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nAuthorization: Bearer dummy\r\n\r\n")
    head = (await read_head(tunnel.tls, 1)).decode("latin-1")
    await tunnel.aclose()
    assert upgrader.seen[0].header("authorization") != ["Bearer dummy"]  # the person's went in
    assert head.startswith("HTTP/1.1 101"), head
    assert "set-cookie" not in head.lower(), f"the agent got the cookie in {head!r}"
    # The exchange's opening line is written before the agent is handed the 101.
    said = [json.loads(x) for x in proxy.audit_path.read_text().splitlines()
            if json.loads(x)["status"] == 101]
    assert said and "sessionKey" in said[0]["note"], said
    assert "PERSONS-SESSION" not in proxy.audit_path.read_text()


class StallingTokens(_Base):
    """A token endpoint that holds a refresh of the person's token until ``release``; any
    other grant it answers at once with the tokens of the agent's own account."""

    def __init__(self, ca: trustme.CA) -> None:
        super().__init__(ca)
        self.release = trio.Event()

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        if SECRETS["codex_refresh_token"].encode() in seen.body:
            await self.release.wait()
            answer = {"access_token": "PERSONS-NEW-ACCESS", "refresh_token": "PERSONS-NEW"}
        else:
            answer = {"access_token": "AGENT-ACCESS", "refresh_token": "AGENT-REFRESH"}
        await self.reply(stream, conn, 200, json.dumps(answer).encode())
        return True


async def test_a_stalled_refresh_holds_up_no_grant_of_another_token(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA,
        tokens_written: list[dict[str, str | None]]) -> None:
    tokens = await serve_as(proxy, nursery, StallingTokens(upstream_ca), "auth.openai.com")
    answers: dict[str, str] = {}

    async def post(name: str, form: dict[str, str]) -> None:
        async with client(proxy, proxy.add_session(name)) as c:
            r = await c.post("https://auth.openai.com/oauth/token", data=form)
        answers[name] = f"{r.status_code} {r.text}"

    async with trio.open_nursery() as both:
        both.start_soon(post, "slow-refresh", {
            "grant_type": "refresh_token", "refresh_token": "DUMMY"})
        while not tokens.seen:
            await trio.testing.wait_all_tasks_blocked()
        both.start_soon(post, "own-grant", {
            "grant_type": "authorization_code", "code": "agents-own-code", "client_id": "app"})
        while "own-grant" not in answers and not proxy.state.refreshes_waiting():
            await trio.testing.wait_all_tasks_blocked()
        own = answers.get("own-grant")
        tokens.release.set()
    assert own is not None, "a refresh of another token waited for the stalled one"
    assert own.startswith("200") and "AGENT-REFRESH" in own
    assert answers["slow-refresh"].startswith("200")
    assert "PERSONS-NEW" not in answers["slow-refresh"]
    assert tokens_written == [{"access_token": "PERSONS-NEW-ACCESS",
                               "refresh_token": "PERSONS-NEW"}]


async def test_a_refresh_waits_for_another_of_the_same_token_only_so_long(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A second refresh of the person's token while the first stalls: it may not go (the
    token would be presented twice), and it is told to try again instead of hanging."""
    monkeypatch.setattr(refresh_relay, "REFRESH_WAIT", 0.0)  # no waiting at all
    tokens = await serve_as(proxy, nursery, StallingTokens(upstream_ca), "auth.openai.com")
    answers: dict[str, httpx.Response] = {}
    form = {"grant_type": "refresh_token", "refresh_token": "DUMMY"}

    async def post(name: str) -> None:
        async with client(proxy, proxy.add_session(name)) as c:
            answers[name] = await c.post("https://auth.openai.com/oauth/token", data=form)

    async with trio.open_nursery() as both:
        both.start_soon(post, "stalled")
        while not tokens.seen:
            await trio.testing.wait_all_tasks_blocked()
        both.start_soon(post, "second")
        while "second" not in answers and not proxy.state.refreshes_waiting():
            await trio.testing.wait_all_tasks_blocked()
        second = answers.get("second")
        tokens.release.set()
    assert second is not None, "the second refresh hung behind the stalled one"
    assert second.status_code == 503 and "try the refresh again" in second.text
    assert len(tokens.seen) == 1 and answers["stalled"].status_code == 200


async def test_a_refresh_url_with_a_query_is_refused(
        proxy: Proxy, fake: FakeUpstream, tokens_written: list[dict[str, str | None]]) -> None:
    async with client(proxy, proxy.add_session("query-refresher")) as c:
        r = await c.post("https://auth.openai.com/oauth/token?grant_type=authorization_code",
                         data={"grant_type": "refresh_token", "refresh_token": "DUMMY"})
    assert fake.seen == [], "the refresh went to the token endpoint"
    assert r.status_code == 400 and "has no query" in r.text, r.text
    assert tokens_written == []
