"""The Codex token endpoint, played by a hostile agent: only the refresh the proxy put the
person's refresh token into answers with the person's tokens.

The agent may POST any grant to ``auth.openai.com/oauth/token`` (an authorization code or a
device code of an account it holds, say); the proxy passes it on with the agent's own
values. Its answer carries that account's tokens, not the person's: kept as the person's,
they would be injected into every Codex call from then on and written over the person's
``auth.json`` on the host, so the person's own Codex would work for the agent's account
(the person's prompts and code in its history) and the person's refresh token be lost.

Two refreshes at once (two sessions, or one agent twice) must not both present the
person's refresh token: the token endpoint rotates it, and one presented again after it was
spent is a theft to a server that detects reuse, which revokes the whole login. (A refresh
soon after a successful one is answered as that one was, the endpoint not asked:
``test_proxy_refresh_turns.py``; the tests of the turn here are of refreshes that go.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from urllib.parse import parse_qs

import h11
import pytest
import trio
import trio.testing
import trustme
from conftest import SECRETS, Proxy, client, override, serve_as
from proxy_fakes import FakeUpstream, Seen, _Base

from proxy import refresh_relay
from proxy.proxy_config import Upstream

#: Tokens of an account the agent holds, as the token endpoint grants them for its code.
AGENT = {"access_token": "AGENT-ACCOUNT-ACCESS", "refresh_token": "AGENT-ACCOUNT-REFRESH",
         "id_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2ln"}


async def test_a_grant_of_the_agents_own_is_not_kept_as_the_persons_tokens(
        proxy: Proxy, fake: FakeUpstream, tokens_written: list[dict[str, str | None]]) -> None:
    """An authorization-code grant with the agent's own code: the answer's tokens go back
    to the agent as they came (they are its account's), and the person's stay."""
    auth = proxy.add_session("codex-own-grant")
    fake.refresh_answer = dict(AGENT)
    async with client(proxy, auth) as c:
        r = await c.post("https://auth.openai.com/oauth/token", data={
            "grant_type": "authorization_code", "code": "agents-own-code",
            "redirect_uri": "http://localhost:1455/auth/callback", "client_id": "app"})
        after = await c.get("https://chatgpt.com/backend-api/codex/models",
                            headers={"authorization": "Bearer DUMMY"})
    assert tokens_written == [], "the agent's tokens were written over the person's auth.json"
    assert SECRETS["codex_refresh_token"] not in fake.seen[0].body.decode()  # nothing real sent
    assert after.status_code == 200
    assert fake.seen[1].header("authorization") == [f"Bearer {SECRETS['codex_access_token']}"]
    assert r.status_code == 200 and r.json() == AGENT  # the agent's own, untouched


@pytest.fixture
def each_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every refresh goes to the endpoint, however soon after the last."""
    monkeypatch.setattr(refresh_relay, "REFRESH_KEPT", 0.0)


async def test_a_refresh_is_still_kept(
        proxy: Proxy, fake: FakeUpstream, tokens_written: list[dict[str, str | None]]) -> None:
    """The refresh grant, as a form, with the dummy: the person's new tokens are kept and
    none goes back."""
    auth = proxy.add_session("codex-form-refresh")
    fake.refresh_answer = {"access_token": "NEW-ACCESS", "refresh_token": "NEW-REFRESH"}
    async with client(proxy, auth) as c:
        r = await c.post("https://auth.openai.com/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": "DUMMY"})
    assert tokens_written == [fake.refresh_answer]
    assert "NEW-" not in r.text and json.loads(r.text)["refresh_token"] == "DUMMY"


class RotatingTokens(_Base):
    """A token endpoint that rotates the refresh token and detects reuse: a spent one
    presented again revokes the login (400). It holds its first answer until ``release``
    (or a second refresh arrives), so that two refreshes are under way at once."""

    def __init__(self, ca: trustme.CA) -> None:
        super().__init__(ca)
        self.valid = SECRETS["codex_refresh_token"]
        self.spent: set[str] = set()
        self.revoked = False
        self.release = trio.Event()

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        n = len(self.seen)
        if n == 1:
            await self.release.wait()
        else:
            self.release.set()
        sent = parse_qs(seen.body.decode())["refresh_token"][0]
        if sent in self.spent or self.revoked:
            self.revoked = True
            await self.reply(stream, conn, 400, b'{"error":"refresh_token_reused"}')
            return True
        if sent != self.valid:
            await self.reply(stream, conn, 400, b'{"error":"invalid_grant"}')
            return True
        self.spent.add(sent)
        self.valid = f"ROTATED-REFRESH-{n}"
        await self.reply(stream, conn, 200, json.dumps(
            {"access_token": f"ROTATED-ACCESS-{n}", "refresh_token": self.valid}).encode())
        return True


async def two_at_once(proxy: Proxy, tokens: RotatingTokens) -> dict[str, str]:
    """Two sessions' refreshes, the second sent while the first is held at the endpoint;
    the first let go once the second reached the endpoint or waits in the proxy for its
    turn. Each session's answer, its status first."""
    answers: dict[str, str] = {}

    async def refresh(name: str) -> None:
        async with client(proxy, proxy.add_session(name)) as c:
            r = await c.post("https://auth.openai.com/oauth/token", data={
                "grant_type": "refresh_token", "refresh_token": "DUMMY"})
        answers[name] = f"{r.status_code} {r.text}"

    def second_waits() -> bool:
        return proxy.state.refreshes_waiting() > 0

    with trio.fail_after(30):
        async with trio.open_nursery() as both:
            both.start_soon(refresh, "codex-first")
            while not tokens.seen:
                await trio.testing.wait_all_tasks_blocked()
            both.start_soon(refresh, "codex-second")
            while len(tokens.seen) < 2 and not second_waits():
                await trio.testing.wait_all_tasks_blocked()
            tokens.release.set()
    return answers


@pytest.mark.usefixtures("each_goes")
async def test_two_refreshes_at_once_do_not_present_a_spent_refresh_token(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA,
        tokens_written: list[dict[str, str | None]]) -> None:
    """A refresh is under way when a second one comes: the second goes with the token the
    first was answered, not the one the first spent."""
    tokens = await serve_as(proxy, nursery, RotatingTokens(upstream_ca), "auth.openai.com")
    answers = await two_at_once(proxy, tokens)
    sent = [parse_qs(seen.body.decode())["refresh_token"][0] for seen in tokens.seen]
    assert not tokens.revoked, f"the person's login was revoked: both refreshes sent {sent}"
    assert sent == [SECRETS["codex_refresh_token"], "ROTATED-REFRESH-1"]
    assert [answer.split()[0] for answer in answers.values()] == ["200", "200"], answers
    assert tokens_written[-1]["refresh_token"] == tokens.valid


class RotatingThenBroken(RotatingTokens):
    """As :class:`RotatingTokens`, but the second refresh gets an answer head no parser
    takes, quoting the body it was sent (the proxy's 502 quotes the parser's error)."""

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        if len(self.seen) == 1:
            return await super().answer(stream, conn, seen)
        self.release.set()
        await stream.send_all(b"HTTP/1.1 400 Bad\r\nquoting " + seen.body + b"\r\n\r\n")
        return False


@pytest.mark.usefixtures("each_goes")
async def test_a_broken_answer_to_a_refresh_that_waited_quotes_no_refresh_token(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA) -> None:
    """The second refresh was let in while the first held the person's first refresh token,
    and went once the first was answered, with the rotated one: its 502 must not quote that
    one (masked only for the token the request's verdict knew, it did)."""
    tokens = await serve_as(proxy, nursery, RotatingThenBroken(upstream_ca), "auth.openai.com")
    answers = await two_at_once(proxy, tokens)
    assert "ROTATED-REFRESH-1" in tokens.seen[1].body.decode()  # what travelled
    assert answers["codex-second"].startswith("502"), answers
    assert "ROTATED-REFRESH-1" not in answers["codex-second"], answers["codex-second"]


class QueryFirst(_Base):
    """A token endpoint whose framework reads a parameter from the URL's query before the
    body (many merge the two so): the grant the query names is the one it runs."""

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        params = {**parse_qs(seen.body.decode()), **parse_qs(seen.target.partition("?")[2])}
        if params["grant_type"] == ["authorization_code"]:
            await self.reply(stream, conn, 200, json.dumps(AGENT).encode())
        else:
            await self.reply(stream, conn, 400, b'{"error":"invalid_grant"}')
        return True


async def test_a_refresh_whose_url_names_another_grant_is_no_refresh(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA,
        tokens_written: list[dict[str, str | None]]) -> None:
    """The body names the refresh grant (so the real refresh token went in and the answer
    was kept), the query the agent's own code: the endpoint ran the code's grant, and the
    agent's account's tokens were kept as the person's. Refused before it goes (400)."""
    endpoint = await serve_as(proxy, nursery, QueryFirst(upstream_ca), "auth.openai.com")
    async with client(proxy, proxy.add_session("codex-query-grant")) as c:
        r = await c.post("https://auth.openai.com/oauth/token?grant_type=authorization_code"
                         "&code=agents-own-code", data={
                             "grant_type": "refresh_token", "refresh_token": "DUMMY"})
    assert tokens_written == [], "the agent's tokens were kept as the person's"
    assert endpoint.seen == [] and r.status_code == 400


class Answering(_Base):
    """A token endpoint that answers a refresh with new tokens and the given status."""

    def __init__(self, ca: trustme.CA, status: int) -> None:
        super().__init__(ca)
        self.status = status

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        await self.reply(stream, conn, self.status, json.dumps(
            {"access_token": "NEW-REAL-ACCESS", "refresh_token": "NEW-REAL-REFRESH"}).encode())
        return True


@pytest.mark.parametrize("status", [201, 203, 400])
async def test_a_refresh_answered_otherwise_than_200_hands_back_no_new_token(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA,
        tokens_written: list[dict[str, str | None]], status: int) -> None:
    """Only a 200's tokens were taken out: the new tokens of a refresh answered 201, 203
    (a transforming cache) or an error went to the agent as they came. A success's are kept
    (the spent refresh token is no use), an error's only masked."""
    await serve_as(proxy, nursery, Answering(upstream_ca, status), "auth.openai.com")
    async with client(proxy, proxy.add_session(f"codex-{status}")) as c:
        r = await c.post("https://auth.openai.com/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": "DUMMY"})
    assert "NEW-REAL" not in r.text, r.text
    assert r.status_code == status
    assert tokens_written == ([] if status >= 300 else [
        {"access_token": "NEW-REAL-ACCESS", "refresh_token": "NEW-REAL-REFRESH"}])


class HoldsTheFirst(_Base):
    """A token endpoint that holds the first refresh until ``release`` and answers every
    other at once, each with new tokens of its own."""

    def __init__(self, ca: trustme.CA) -> None:
        super().__init__(ca)
        self.release = trio.Event()

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        n = len(self.seen)
        if n == 1:
            await self.release.wait()
        await self.reply(stream, conn, 200, json.dumps(
            {"access_token": f"NEW-ACCESS-{n}", "refresh_token": f"NEW-REFRESH-{n}"}).encode())
        return True

    def senders(self) -> list[str]:
        return [seen.header("x-sender")[0] for seen in self.seen]


async def held_endpoint(proxy: Proxy, nursery: trio.Nursery, ca: trustme.CA) -> HoldsTheFirst:
    tokens = HoldsTheFirst(ca)
    await nursery.start(tokens.serve)
    override(proxy, upstreams={"auth.openai.com": Upstream(scheme="https", host="127.0.0.1",
                                                           port=tokens.port)})
    return tokens


async def post_refresh(proxy: Proxy, auth: tuple[str, str], sender: str,
                       answers: list[tuple[str, int]]) -> None:
    async with client(proxy, auth) as c:
        r = await c.post("https://auth.openai.com/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": "DUMMY"}, headers={"x-sender": sender})
    answers.append((sender, r.status_code))


@pytest.mark.usefixtures("each_goes")
async def test_an_agents_refreshes_queued_at_once_hold_up_no_other_session(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA) -> None:
    """One agent sends many refreshes at once: each waited its turn for the person's token,
    and another session's refresh waited behind all of them (past the 30 seconds a refresh
    waits, a 503). One refresh of each session goes at a time; another is told to wait."""
    tokens = await held_endpoint(proxy, nursery, upstream_ca)
    agent = proxy.add_session("codex-flood")
    answers: list[tuple[str, int]] = []

    async def settled(count: int) -> None:
        while len(answers) + proxy.state.refreshes_waiting() < count:
            await trio.testing.wait_all_tasks_blocked()

    with trio.fail_after(30):
        async with trio.open_nursery() as both:
            both.start_soon(post_refresh, proxy, agent, "agent", answers)
            while not tokens.seen:
                await trio.testing.wait_all_tasks_blocked()
            for _ in range(3):
                both.start_soon(post_refresh, proxy, agent, "agent", answers)
            await settled(3)
            both.start_soon(post_refresh, proxy, proxy.add_session("codex-other"), "other",
                            answers)
            await settled(4)
            tokens.release.set()
    assert tokens.senders()[:2] == ["agent", "other"], tokens.senders()
    assert sorted(answers) == [("agent", 200), ("agent", 503), ("agent", 503), ("agent", 503),
                               ("other", 200)]


@pytest.mark.usefixtures("each_goes")
async def test_a_slow_write_of_auth_json_holds_up_no_other_refresh(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The refreshed tokens were written to the host's ``auth.json`` with the one refresh
    at a time still held: a disk that takes its time held every session's refresh (told to
    try again, here at once). The writes still land in the order the tokens were given,
    the newest last."""
    monkeypatch.setattr(refresh_relay, "REFRESH_WAIT", 0.0)
    tokens = await held_endpoint(proxy, nursery, upstream_ca)
    tokens.release.set()
    disk = threading.Event()
    writing = trio.Event()
    written: list[dict[str, str | None]] = []

    def slow_disk(new: Mapping[str, str | None]) -> None:
        written.append(dict(new))
        if len(written) == 1:
            trio.from_thread.run_sync(writing.set)
            disk.wait()

    proxy.state.token_sink = slow_disk
    answers: list[tuple[str, int]] = []
    try:
        async with trio.open_nursery() as both:
            both.start_soon(post_refresh, proxy, proxy.add_session("codex-slow"), "slow",
                            answers)
            await writing.wait()
            await post_refresh(proxy, proxy.add_session("codex-next"), "next", answers)
            assert answers == [("next", 200)], "the next refresh waited for the write"
            disk.set()
    finally:
        disk.set()
    assert written == [{"access_token": "NEW-ACCESS-1", "refresh_token": "NEW-REFRESH-1"},
                       {"access_token": "NEW-ACCESS-2", "refresh_token": "NEW-REFRESH-2"}]
