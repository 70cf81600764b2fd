"""The Codex token endpoint, played by a hostile agent: only the refresh the proxy put the
person's refresh token into answers with the person's tokens.

The agent may POST any grant to ``auth.openai.com/oauth/token`` (an authorization code or a
device code of an account it holds, say); the proxy passes it on with the agent's own
values. Its answer carries that account's tokens, not the person's: kept as the person's,
they would be injected into every Codex call from then on and written over the person's
``auth.json`` on the host, so the person's own Codex would work for the agent's account
(the person's prompts and code in its history) and the person's refresh token be lost.
"""

from __future__ import annotations

import json

from conftest import SECRETS, Proxy, client
from proxy_fakes import FakeUpstream

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
                            headers={"authorization": "Bearer dummy"})
    assert tokens_written == [], "the agent's tokens were written over the person's auth.json"
    assert SECRETS["codex_refresh_token"] not in fake.seen[0].body.decode()  # nothing real sent
    assert after.status_code == 200
    assert fake.seen[1].header("authorization") == [f"Bearer {SECRETS['codex_access_token']}"]
    assert r.status_code == 200 and r.json() == AGENT  # the agent's own, untouched


async def test_a_refresh_is_still_kept(
        proxy: Proxy, fake: FakeUpstream, tokens_written: list[dict[str, str | None]]) -> None:
    """The refresh grant, as a form, with the dummy: the person's new tokens are kept and
    none goes back."""
    auth = proxy.add_session("codex-form-refresh")
    fake.refresh_answer = {"access_token": "NEW-ACCESS", "refresh_token": "NEW-REFRESH"}
    async with client(proxy, auth) as c:
        r = await c.post("https://auth.openai.com/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": "DUMMY", "client_id": "app"})
    assert tokens_written == [fake.refresh_answer]
    assert "NEW-" not in r.text and json.loads(r.text)["refresh_token"] == "DUMMY"
