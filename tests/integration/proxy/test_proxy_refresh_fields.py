"""The Codex refresh's own fields, played by a hostile agent: the person's refresh token
goes to the endpoint with Codex's client and scope, whatever the agent asked for.

The agent's ``scope`` and ``client_id`` went to the endpoint beside the person's real
refresh token. ``scope=openid`` had the person's login rotated into a narrowed one, which
the proxy then kept and injected into every session's Codex calls (and wrote over the
person's ``auth.json``); another client's id had the endpoint refuse the refresh, or revoke
the person's whole chain as a token presented by a client it was not issued to. A refresh
that asks for another client or scope is refused now, and the endpoint not asked.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from conftest import SECRETS, Proxy, client
from proxy_fakes import FakeUpstream

from proxy import refresh_relay
from proxy.token_refresh import CODEX_CLIENT_ID, CODEX_SCOPE

TOKEN_URL = "https://auth.openai.com/oauth/token"
#: What the endpoint is sent for a refresh: Codex's own fields, the person's token.
CODEX_SENDS = {"client_id": CODEX_CLIENT_ID, "grant_type": "refresh_token",
               "refresh_token": SECRETS["codex_refresh_token"]}

#: A refresh's fields the agent asked otherwise than Codex does, as JSON or as a form.
ASKED = {
    "narrowed-scope": ("json", {"scope": "openid"}, "scope"),
    "widened-scope": ("json", {"scope": f"{CODEX_SCOPE} offline_access api.admin"}, "scope"),
    "empty-scope": ("json", {"scope": ""}, "scope"),
    "scope-escaped": ("raw", '{"grant_type":"refresh_token","refresh_token":"DUMMY",'
                             '"sc\\u006fpe":"openid"}', "scope"),
    "scope-twice-in-json": ("raw", '{"grant_type":"refresh_token","refresh_token":"DUMMY",'
                                   f'"scope":"{CODEX_SCOPE}","scope":"openid"}}', "scope"),
    "another-client": ("json", {"client_id": "app_agents_own"}, "client"),
    "another-client-as-form": ("form", {"client_id": "app_agents_own"}, "client"),
    "narrowed-scope-as-form": ("form", {"scope": "openid"}, "scope"),
}


async def _refresh(proxy: Proxy, session: str, kind: str, fields: object) -> tuple[int, str]:
    async with client(proxy, proxy.add_session(session)) as c:
        if kind == "raw":
            assert isinstance(fields, str)
            r = await c.post(TOKEN_URL, content=fields.encode(),
                             headers={"content-type": "application/json"})
        else:
            assert isinstance(fields, dict)
            doc = {"grant_type": "refresh_token", "refresh_token": "DUMMY", **fields}
            r = await c.post(TOKEN_URL, json=doc) if kind == "json" else \
                await c.post(TOKEN_URL, data=doc)
    return r.status_code, r.text


@pytest.mark.parametrize("asked", list(ASKED))
async def test_a_refresh_asking_for_another_scope_or_client_is_refused(
        proxy: Proxy, fake: FakeUpstream, tokens_written: list[dict[str, str | None]],
        asked: str) -> None:
    """The endpoint is not asked; the agent is told why and what Codex sends."""
    kind, fields, what = ASKED[asked]
    fake.refresh_answer = {"access_token": "NARROWED-ACCESS", "refresh_token": "NARROWED"}
    status, text = await _refresh(proxy, f"codex-{asked}", kind, fields)
    assert [s.body for s in fake.seen] == [], f"sent to the endpoint: {status} {text}"
    assert status == 403 and f"another {what}" in text and CODEX_CLIENT_ID in text, text
    assert tokens_written == []


@pytest.mark.parametrize("kind", ["json", "form"])
@pytest.mark.parametrize(("fields", "more"), [
    ({"client_id": CODEX_CLIENT_ID, "scope": CODEX_SCOPE}, {"scope": CODEX_SCOPE}),
    ({"client_id": CODEX_CLIENT_ID, "scope": "email openid profile"}, {"scope": CODEX_SCOPE}),
    # The Codex CLI's own refresh today: no scope, and why it refreshes.
    ({"client_id": CODEX_CLIENT_ID, "refresh_reason": "proactive_expiry"},
     {"refresh_reason": "proactive_expiry"}),
    ({}, {})])
async def test_a_refresh_goes_with_codexs_own_fields(
        proxy: Proxy, fake: FakeUpstream, tokens_written: list[dict[str, str | None]],
        kind: str, fields: dict[str, str], more: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Codex's own refresh, or one that leaves the client and scope out: the endpoint gets
    Codex's client beside the person's token (and Codex's scope where one was named)."""
    monkeypatch.setattr(refresh_relay, "REFRESH_KEPT", 0.0)
    fake.refresh_answer = {"access_token": "NEW-ACCESS", "refresh_token": "NEW-REFRESH"}
    status, text = await _refresh(proxy, f"codex-own-{kind}-{len(fields)}-{len(more)}", kind,
                                  fields)
    assert status == 200, text
    sent = fake.seen[0].body.decode()
    got = json.loads(sent) if kind == "json" else dict(parse_qsl(sent))
    assert got == CODEX_SENDS | more
    assert tokens_written == [fake.refresh_answer]


async def test_an_answer_without_a_refresh_token_keeps_the_one_held(
        proxy: Proxy, fake: FakeUpstream, tokens_written: list[dict[str, str | None]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An endpoint that does not rotate the refresh token: the next refresh goes with the
    one held (the chain is not lost), and the agent keeps its dummy."""
    monkeypatch.setattr(refresh_relay, "REFRESH_KEPT", 0.0)
    fake.refresh_answer = {"access_token": "NEW-ACCESS"}
    for n in range(2):
        status, text = await _refresh(proxy, f"codex-unrotated-{n}", "json", {})
        assert status == 200 and "NEW-ACCESS" not in text, text
    assert [json.loads(s.body)["refresh_token"] for s in fake.seen] == [
        SECRETS["codex_refresh_token"]] * 2
    assert tokens_written == [{"access_token": "NEW-ACCESS"}] * 2


#: Headers that name a client or bind the new tokens to a key of the agent's, beside the
#: person's refresh token (OAuth's client authentication, DPoP's proof, a session cookie).
CLIENT_HEADERS = {
    "basic-client": ("authorization", "Basic YXBwX2FnZW50c19vd246c2VjcmV0"),
    "bearer": ("authorization", "Bearer agents-own"),
    "dpop": ("dpop", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln"),
    "cookie": ("cookie", "__Secure-next-auth.session-token=agents-own"),
}


@pytest.mark.parametrize("header", list(CLIENT_HEADERS))
async def test_a_refresh_goes_without_the_agents_client_headers(
        proxy: Proxy, fake: FakeUpstream, header: str) -> None:
    """``Authorization: Basic`` names a client to an OAuth endpoint as ``client_id`` does,
    and a DPoP proof binds the new tokens to the agent's key: the person's token went with
    them. The Codex CLI sends neither; the endpoint gets none."""
    name, value = CLIENT_HEADERS[header]
    fake.refresh_answer = {"access_token": "NEW-ACCESS", "refresh_token": "NEW-REFRESH"}
    async with client(proxy, proxy.add_session(f"codex-{header}")) as c:
        r = await c.post(TOKEN_URL, json={"grant_type": "refresh_token",
                                          "refresh_token": "DUMMY"}, headers={name: value})
    assert r.status_code == 200, r.text
    assert fake.seen[0].header(name) == [], fake.seen[0].headers
