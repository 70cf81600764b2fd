"""The one refresh of the person's Codex login at a time, played from a real container
(curl as uid 1000 in the agent image) against a token endpoint on loopback.

* An endpoint that stalls its answer held the one turn until the proxy's read limit (ten
  minutes): every other session's refresh waited its 30 seconds and was told to try again.
  The refresh has a deadline of its own now, and its agent a 504 that names it.
* An agent that loops refreshes had each one rotate the person's refresh token at the
  endpoint, one at a time but as fast as it asked. A refresh within minutes of a successful
  one is answered as that one was (the agent's dummies), and the endpoint is not asked.
* That kept answer answered the refresh Codex makes on a 401 too: when the endpoint had
  revoked the new access token, the agent got it again and again, for minutes. A 401 to the
  kept token sends the next refresh to the endpoint, once: a token rejected again is
  not refreshed again, so an agent's 401s loop no refreshes.
"""

from __future__ import annotations

import json

import docker
import h11
import pytest
import trio
import trustme
from agent_curl import GATEWAY, agent_curl
from conftest import SECRETS, Proxy, serve_as
from proxy_fakes import Seen, _Base

from proxy import refresh_relay
from proxy.token_refresh import CODEX_CLIENT_ID

pytestmark = pytest.mark.docker

TOKEN_URL = "https://auth.openai.com/oauth/token"
#: A refresh as the Codex CLI sends it, with the dummy its ``auth.json`` holds.
CODEX_REFRESH = json.dumps({"client_id": CODEX_CLIENT_ID, "grant_type": "refresh_token",
                            "refresh_token": "DUMMY", "scope": "openid profile email"})


@pytest.fixture
def proxy_hosts() -> tuple[str, ...]:
    return ("127.0.0.1", GATEWAY)


class Rotating(_Base):
    """A token endpoint that rotates the refresh token on every refresh (a spent one is a
    400); with ``stall``, it holds the first refresh until ``release``."""

    def __init__(self, ca: trustme.CA, *, stall: bool = False) -> None:
        super().__init__(ca)
        self.valid = SECRETS["codex_refresh_token"]
        self.stall = stall
        self.reached = trio.Event()
        self.release = trio.Event()

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        n = len(self.seen)
        self.reached.set()
        if self.stall and n == 1:
            await self.release.wait()
        if json.loads(seen.body)["refresh_token"] != self.valid:
            await self.reply(stream, conn, 400, b'{"error":"refresh_token_reused"}')
            return True
        self.valid = f"ROTATED-REFRESH-{n}"
        await self.reply(stream, conn, 200, json.dumps({
            "access_token": f"ROTATED-ACCESS-{n}", "refresh_token": self.valid,
            "id_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwZXJzb24ifQ.c2ln"}).encode())
        return True


#: Codex's models, asked as the Codex CLI does: its dummy access token in.
MODELS = ["-H", "authorization: Bearer DUMMY", "https://chatgpt.com/backend-api/codex/models"]


def refresh_args(times: int = 1) -> list[str]:
    return ["-H", "content-type: application/json", "--data-binary", CODEX_REFRESH,
            *[TOKEN_URL] * times]


async def test_a_stalled_refresh_ends_at_its_own_deadline_and_the_next_goes(
        engine: docker.DockerClient, proxy: Proxy, nursery: trio.Nursery,
        upstream_ca: trustme.CA, monkeypatch: pytest.MonkeyPatch,
        tokens_written: list[dict[str, str | None]]) -> None:
    """The endpoint holds one session's refresh; another session's comes after it. The
    first ends at the refresh's deadline (504, saying so); the second goes and is answered,
    with the person's token (the stalled one was never answered, so it was not spent)."""
    monkeypatch.setattr(refresh_relay, "REFRESH_DEADLINE", 2.0)
    tokens = await serve_as(proxy, nursery, Rotating(upstream_ca, stall=True), "auth.openai.com")
    said: dict[str, str] = {}

    async def refresh(name: str) -> None:
        said[name] = await agent_curl(proxy, proxy.add_session(name), *refresh_args(),
                                      max_time=45)

    try:
        async with trio.open_nursery() as both:
            both.start_soon(refresh, "codex-stalled")
            await tokens.reached.wait()
            both.start_soon(refresh, "codex-next")
    finally:
        tokens.release.set()
    stalled, after = said["codex-stalled"], said["codex-next"]
    assert stalled.startswith("HTTP/1.1 504 ") and "token refresh got no answer" in stalled, \
        f"the stalled refresh held the turn: it got {stalled!r}, the next {after!r}"
    assert after.startswith("HTTP/1.1 200 "), after
    assert "ROTATED" not in after and '"refresh_token": "DUMMY"' in after
    assert len(tokens.seen) == 2
    assert [t["refresh_token"] for t in tokens_written] == ["ROTATED-REFRESH-2"]


async def test_back_to_back_refreshes_rotate_the_persons_token_once(
        engine: docker.DockerClient, proxy: Proxy, nursery: trio.Nursery,
        upstream_ca: trustme.CA, tokens_written: list[dict[str, str | None]]) -> None:
    """One agent refreshes three times in a row, and then another session: the endpoint
    is asked once, and every answer is the first one's, the agent's dummies in it."""
    tokens = await serve_as(proxy, nursery, Rotating(upstream_ca), "auth.openai.com")
    looped = await agent_curl(proxy, proxy.add_session("codex-loop"), *refresh_args(3))
    other = await agent_curl(proxy, proxy.add_session("codex-other"), *refresh_args())
    answers = [part for part in (looped + other).split("HTTP/1.1 ")[1:]]
    sent = [json.loads(seen.body)["refresh_token"] for seen in tokens.seen]
    assert sent == [SECRETS["codex_refresh_token"]], \
        f"the person's refresh token was rotated {len(sent)} times in a row: {sent}"
    assert [a.split(" ", 1)[0] for a in answers] == ["200"] * 4, answers
    bodies = [json.loads(a.partition("\r\n\r\n")[2]) for a in answers]
    assert all(b["refresh_token"] == "DUMMY" and b["access_token"] == bodies[0][
        "access_token"] for b in bodies), bodies
    assert "ROTATED" not in looped + other
    assert [t["refresh_token"] for t in tokens_written] == ["ROTATED-REFRESH-1"]
    notes = [json.loads(line).get("note") or "" for line in proxy.audit_path.read_text()
             .splitlines()]
    assert sum("the endpoint not asked" in note for note in notes) == 3, notes


class Revoking(_Base):
    """A ChatGPT backend that answers every request 401, as one that revoked the token."""

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        await self.reply(stream, conn, 401, b'{"detail":"token revoked"}')
        return True


async def test_a_refresh_after_the_kept_token_was_refused_asks_the_endpoint_once(
        engine: docker.DockerClient, proxy: Proxy, nursery: trio.Nursery,
        upstream_ca: trustme.CA) -> None:
    """An agent refreshes, its request with the new token is answered 401, it refreshes
    again: the endpoint is asked for a new token. The new one answered 401 too, the next
    refresh is the kept answer, the endpoint not asked a third time."""
    tokens = await serve_as(proxy, nursery, Rotating(upstream_ca), "auth.openai.com")
    backend = await serve_as(proxy, nursery, Revoking(upstream_ca), "chatgpt.com")
    auth = proxy.add_session("codex-revoked")
    said = [await agent_curl(proxy, auth, *args) for args in (
        refresh_args(), MODELS, refresh_args(), MODELS, refresh_args())]
    assert [s.split(" ", 2)[1] for s in said] == ["200", "401", "200", "401", "200"], said
    assert [seen.header("authorization") for seen in backend.seen] == [
        ["Bearer ROTATED-ACCESS-1"], ["Bearer ROTATED-ACCESS-2"]], \
        "the refresh after a 401 to the kept token was answered with that token again"
    assert len(tokens.seen) == 2
    assert "ROTATED" not in "".join(said)
