"""The Codex refresh spelt otherwise, played by a hostile agent against a token endpoint
that reads requests more leniently than the proxy does.

The real refresh token goes into a refresh only, and its answer is kept as the person's.
A request the proxy reads as a refresh and the endpoint as another grant (the agent's own
authorization code) ran that grant with the person's token in it, and the agent's account's
tokens were kept as the person's: injected into every Codex call, and written over the
person's ``auth.json``.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import h11
import pytest
import trio
import trustme
from conftest import SECRETS, Proxy, client, override
from proxy_fakes import Listener, Seen, _Base

from proxy.proxy_config import Upstream

AGENT = {"access_token": "AGENT-ACCOUNT-ACCESS", "refresh_token": "AGENT-ACCOUNT-REFRESH"}
PERSONS = {"access_token": "PERSONS-NEW-ACCESS", "refresh_token": "PERSONS-NEW-REFRESH"}
TOKEN_URL = "https://auth.openai.com/oauth/token"


class LenientTokens(Listener):
    """A token endpoint read as PHP reads a request: the last ``Content-Type`` names the
    body's syntax, a name's ``.`` or space is a ``_`` and a trailing ``[]`` is dropped, the
    last of a name wins, and a GET has no body (the bytes after its head are the next
    request). It runs the grant it reads: the agent's code gets the agent's account's
    tokens, the person's refresh token the person's new ones; 405 to a GET."""

    def __init__(self, ca: trustme.CA) -> None:
        super().__init__(ca)
        self.bodies: list[bytes] = []

    async def _connection(self, stream: trio.abc.Stream) -> None:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method = lines[0].split(" ", 1)[0]
            headers = [(n.strip().lower(), v.strip())
                       for n, _, v in (line.partition(":") for line in lines[1:])]
            length = 0 if method == "GET" else int(dict(headers).get("content-length", "0"))
            while len(buf) < length:
                buf += await stream.receive_some(65536)
            body, buf = buf[:length], buf[length:]
            self.bodies.append(body)
            ctype = [v for n, v in headers if n == "content-type"][-1:] or [""]
            status, answer = (405, {}) if method == "GET" else self.grant(body, ctype[0])
            text = json.dumps(answer).encode()
            await stream.send_all(b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\n"
                                  b"content-length: %d\r\n\r\n%s" % (status, len(text), text))

    @staticmethod
    def grant(body: bytes, ctype: str) -> tuple[int, dict[str, str]]:
        if ctype.startswith("application/json"):
            params = json.loads(body)
        else:
            params = {k.replace(".", "_").replace(" ", "_").removesuffix("[]"): v
                      for k, v in parse_qsl(body.decode(), keep_blank_values=True)}
        if params.get("grant_type") == "authorization_code":
            return 200, AGENT
        if params.get("refresh_token") == SECRETS["codex_refresh_token"]:
            return 200, PERSONS
        return 400, {"error": "invalid_grant"}


@pytest.fixture
async def lenient(proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA
                  ) -> LenientTokens:
    endpoint = LenientTokens(upstream_ca)
    await nursery.start(endpoint.serve)
    override(proxy, upstreams={"auth.openai.com": Upstream(scheme="https", host="127.0.0.1",
                                                           port=endpoint.port)})
    return endpoint


#: A second grant where the proxy's form reading sees none: another name to it, the grant's
#: to a server that folds names.
SPELT_OTHERWISE = ["grant.type", "grant type", "grant_type[]"]


@pytest.mark.parametrize("name", SPELT_OTHERWISE)
async def test_a_refresh_naming_a_second_grant_otherwise_is_no_refresh(
        proxy: Proxy, lenient: LenientTokens, tokens_written: list[dict[str, str | None]],
        name: str) -> None:
    """``grant.type=authorization_code`` is no name the proxy knew; to the endpoint it is
    the grant, so the person's refresh token went into the agent's code grant."""
    async with client(proxy, proxy.add_session("codex-folded-name")) as c:
        r = await c.post(TOKEN_URL, data={
            "grant_type": "refresh_token", "refresh_token": "DUMMY", "client_id": "app",
            name: "authorization_code", "code": "agents-own-code"})
    assert tokens_written == [], f"the agent's tokens were kept as the person's: {r.text}"
    assert SECRETS["codex_refresh_token"].encode() not in lenient.bodies[0]


async def test_a_json_refresh_with_a_second_type_is_sent_as_json_alone(
        proxy: Proxy, lenient: LenientTokens, tokens_written: list[dict[str, str | None]]
        ) -> None:
    """A JSON refresh, its ``Content-Type`` given twice, a form's last: the endpoint read the
    JSON text as a form, whose ``&`` (in the client id) began the agent's code grant. The
    endpoint gets Codex's client id now; one of the agent's is refused."""
    body = json.dumps({"grant_type": "refresh_token", "refresh_token": "DUMMY",
                       "scope": "openid profile email&grant_type=authorization_code&code=x"})
    async with client(proxy, proxy.add_session("codex-two-types")) as c:
        r = await c.post(TOKEN_URL, content=body.encode(), headers=[
            ("content-type", "application/json"),
            ("content-type", "application/x-www-form-urlencoded")])
        ok = await c.post(TOKEN_URL, content=json.dumps(
            {"grant_type": "refresh_token", "refresh_token": "DUMMY"}).encode(), headers=[
            ("content-type", "application/json"),
            ("content-type", "application/x-www-form-urlencoded")])
    assert AGENT not in tokens_written, f"the agent's tokens were kept as the person's: {r.text}"
    assert r.status_code == 403 and ok.status_code == 200, (r.text, ok.text)
    assert tokens_written == [PERSONS]


async def test_a_get_with_a_body_plants_no_answer_for_the_next_refresh(
        proxy: Proxy, lenient: LenientTokens, tokens_written: list[dict[str, str | None]]
        ) -> None:
    """A GET whose body is a whole request (the agent's code grant): the endpoint reads no
    body on a GET, so it answered that request too, after the 405. The connection was kept
    for the session's next refresh, which read the planted answer as its own: the agent's
    account's tokens, kept as the person's."""
    planted = b"grant_type=authorization_code&code=agents-own-code"
    smuggled = (b"POST /oauth/token HTTP/1.1\r\nhost: auth.openai.com\r\ncontent-type: "
                b"application/x-www-form-urlencoded\r\ncontent-length: %d\r\n\r\n%s"
                % (len(planted), planted))
    async with client(proxy, proxy.add_session("codex-bodiless")) as c:
        first = await c.request("GET", TOKEN_URL, content=smuggled)
        second = await c.post(TOKEN_URL, data={
            "grant_type": "refresh_token", "refresh_token": "DUMMY"})
    assert AGENT not in tokens_written, f"the planted answer was kept: {first.status_code}"
    assert tokens_written == [PERSONS] and second.status_code == 200
    assert "PERSONS-NEW" not in second.text


class Shaped(_Base):
    """A token endpoint that answers a refresh with the given head, body and trailers
    (``:reason`` is the status line's reason)."""

    def __init__(self, ca: trustme.CA, headers: list[tuple[str, str]], body: bytes,
                 trailers: list[tuple[str, str]]) -> None:
        super().__init__(ca)
        self.shape = headers, body, trailers

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        headers, body, trailers = self.shape
        framing = [("transfer-encoding", "chunked")] if trailers else [
            ("content-length", str(len(body)))]
        reason = "".join(v for k, v in headers if k == ":reason")
        headers = [(k, v) for k, v in headers if k != ":reason"]
        await self.send(stream, conn, h11.Response(status_code=200, headers=headers + framing,
                                                   reason=reason),
                        h11.Data(data=body), h11.EndOfMessage(headers=trailers))
        return True


NEW = {"access_token": "NEW-REAL-ACCESS", "refresh_token": "NEW-REAL-REFRESH"}
JSON_TYPE = [("content-type", "application/json")]
FORM_TYPE = [("content-type", "application/x-www-form-urlencoded")]
#: Where an answer may hold the new tokens, and those the proxy keeps from it (the ones
#: Codex reads: the top of a JSON object, or of a form, which GitHub's token endpoint answers).
HIDDEN = {
    "form": (FORM_TYPE, b"access_token=NEW-REAL-ACCESS&refresh_token=NEW-REAL-REFRESH"
             b"&token_type=bearer", [], NEW),
    "form-typed-as-text": ([("content-type", "text/plain")],
                           b"access_token=NEW-REAL-ACCESS&refresh_token=NEW-REAL-REFRESH", [], NEW),
    "nested": (JSON_TYPE, json.dumps({"data": {**NEW, "expires_in": 3600}}).encode(), [], None),
    "in-a-list": (JSON_TYPE, json.dumps([NEW]).encode(), [], None),
    "other-names": (JSON_TYPE, b'{"accessToken":"NEW-REAL-ACCESS","Refresh_Token":'
                    b'{"value":"NEW-REAL-REFRESH"}}', [], None),
    "byte-order-mark": (JSON_TYPE, b"\xef\xbb\xbf" + json.dumps(NEW).encode(), [], NEW),
    "utf-16": (JSON_TYPE, json.dumps(NEW).encode("utf-16"), [], NEW),
    "text": ([("content-type", "text/plain")],
             b"access: NEW-REAL-ACCESS\nrefresh: NEW-REAL-REFRESH\n", [], None),
    "a-header": ([*JSON_TYPE, ("x-refresh-token", "NEW-REAL-REFRESH"),
                  ("location", "https://x/#access_token=NEW-REAL-ACCESS")],
                 b'{"expires_in":3600}', [], None),
    "reason": ([*JSON_TYPE, (":reason", "OK NEW-REAL-ACCESS")], b"{}", [], None),
    "trailers": (JSON_TYPE, b'{"expires_in":3600}',
                 [("x-access-token", "NEW-REAL-ACCESS"), ("x-refresh-token", "NEW-REAL-REFRESH")],
                 None),
}


@pytest.mark.parametrize("where", list(HIDDEN))
async def test_a_refresh_answer_hands_back_no_new_token_wherever_it_is(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA,
        tokens_written: list[dict[str, str | None]], where: str) -> None:
    """The tokens were taken out of the top of a JSON object only: a form, a nested or
    otherwise named token, one in a header went to the agent as it came."""
    headers, body, trailers, kept = HIDDEN[where]
    endpoint = Shaped(upstream_ca, headers, body, trailers)
    await nursery.start(endpoint.serve)
    override(proxy, upstreams={"auth.openai.com": Upstream(scheme="https", host="127.0.0.1",
                                                           port=endpoint.port)})
    async with client(proxy, proxy.add_session(f"codex-{where}")) as c:
        r = await c.post(TOKEN_URL, data={
            "grant_type": "refresh_token", "refresh_token": "DUMMY"})
    seen = f"{r.status_code} {r.reason_phrase} {r.headers} {r.text}"
    assert "NEW-REAL" not in seen, seen
    assert tokens_written == ([] if kept is None else [kept])
