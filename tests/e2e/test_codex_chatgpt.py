"""A person whose only OpenAI credential is Codex's ChatGPT login runs Codex in a session:
the container holds the account id, an unsigned copy of the id_token and stand-ins (its
session's own ChatGPT placeholder); the real Codex asks ChatGPT's Responses through the
real proxy, which puts the person's access token and account id in, and no real token is
anywhere in the container. A session never given the login (Claude, Codex on an API key)
gets none of it, whatever it sends."""

from __future__ import annotations

import json
from pathlib import Path

from appliance.placeholders import chatgpt_placeholder
from appliance.tokens import load_or_create_instance_key
from proxy.token_refresh import CODEX_CLIENT_ID, unsigned_copy
from tests.e2e.agent_checks import exec_in, scan, wait_hook
from tests.e2e.conftest import OPENAI_CANARY
from tests.e2e.test_codex_refresh import ACCOUNT, CHATGPT_RESPONSES, WORKSPACES, _jwt, _login
from tests.support.agent_app import behind_proxy, in_container
from tests.support.appliance import wait_for
from tests.support.fake_models import MODEL_PATHS, FakeModels

ACCESS, REFRESH = "REAL-CHATGPT-ACCESS-e2e-0123456789", "REAL-CHATGPT-REFRESH-e2e-0123456789"
ID_TOKEN = _jwt(4102444800, "REAL-CHATGPT-ID-SIGNATURE-e2e")


def test_a_chatgpt_login_alone_runs_codex_with_the_real_tokens_outside_only(
    tmp_path: Path, agent_image: str, fake: FakeModels, repo: Path
) -> None:
    person = tmp_path / "person-codex-auth.json"
    person.write_text(_login(ACCESS, REFRESH, ID_TOKEN, "2099-01-01T00:00:00Z"))
    fake.gets["/backend-api/wham/accounts/check"] = WORKSPACES
    toml = fake.proxy_toml("api.openai.com", "auth.openai.com", "chatgpt.com")
    with behind_proxy(tmp_path / "home", agent_image, toml, agents=True,
                      env={"CODEX_AUTH_JSON_PATH": str(person)}) as app:
        wait_for(lambda: app.client().get("/api/credentials")["published"],
                 what="the proxy's credentials")
        app.cli("create", "--repo", str(repo), "--name", "codex-chatgpt", "--agent", "codex",
                "--prompt", "say hello", "--skip-permissions")
        s = app.session("codex-chatgpt")
        # Any model request (ChatGPT's body is compressed: not read here).
        wait_for(lambda: [c for c in fake.seen if c.method == "POST" and c.path in MODEL_PATHS],
                 what="a model request")
        sent = [(c.method, c.path, c.headers.get("authorization")) for c in fake.seen]
        asked = [c for c in fake.seen if (c.method, c.path) == ("POST", CHATGPT_RESPONSES)]
        assert asked, sent
        wait_hook(app, s["id"], "Stop")
        assert {c.headers["authorization"] for c in asked} == {f"Bearer {ACCESS}"}
        assert {c.headers["chatgpt-account-id"] for c in asked} == {ACCOUNT}

        held = json.loads(exec_in(s["backend_id"], ["cat", "/home/agent/.codex/auth.json"]).stdout)
        assert held["OPENAI_API_KEY"] is None
        tokens = held["tokens"]
        own = chatgpt_placeholder(load_or_create_instance_key(app.settings.instance_secret_path),
                                  s["id"])
        assert (tokens["access_token"], tokens["refresh_token"], tokens["account_id"]) == (
            own, own, ACCOUNT)
        assert tokens["id_token"] == unsigned_copy(ID_TOKEN)
        for real in (ACCESS, REFRESH, "REAL-CHATGPT-ID-SIGNATURE-e2e"):
            assert scan(s["backend_id"], real, user="0:0") == [], real


#: What a hostile agent never given the login tries at ChatGPT: Codex's own paths with no
#: token, its API key's placeholder, the stand-in every login's auth.json once held, an
#: account id of its choosing; and a refresh of the person's login with a dummy of its own.
PROBE = r"""
for token in "" "$OPENAI_API_KEY" clauderon-placeholder-access-token; do
  for path in /backend-api/plugins/export/curated /backend-api/wham/usage; do
    curl -sS -o /dev/null -w "%{http_code}\n" --cacert "$SSL_CERT_FILE" \
      -H "authorization: Bearer $token" -H "chatgpt-account-id: acct-agents-own" \
      "https://chatgpt.com$path"
  done
  curl -sS -o /dev/null -w "%{http_code}\n" --cacert "$SSL_CERT_FILE" -X POST \
    -H "authorization: Bearer $token" -H "content-type: application/json" \
    -d '{"model":"gpt-5","input":"hi","stream":true}' \
    https://chatgpt.com/backend-api/codex/responses
  curl -sS -o /dev/null -w "%{http_code}\n" --cacert "$SSL_CERT_FILE" \
    -H "content-type: application/json" -d "{\"grant_type\":\"refresh_token\",\
\"client_id\":\"$CLIENT\",\"refresh_token\":\"${token:-clauderon-placeholder-token}\"}" \
    https://auth.openai.com/oauth/token
done
"""


def test_a_session_never_given_the_chatgpt_login_gets_none_of_it(
    tmp_path: Path, agent_image: str, fake: FakeModels, repo: Path
) -> None:
    """The host has an API key and a ChatGPT login: Codex runs on the key. Its sessions
    and a Claude session asked Codex's paths at chatgpt.com with any token or none, and
    the proxy put the person's ChatGPT access token and account in; a refresh with any
    dummy had the person's refresh token sent and the login rotated. The login goes with
    the session's own ChatGPT placeholder alone, which only a Codex signed in with it holds."""
    person = tmp_path / "person-codex-auth.json"
    person.write_text(_login(ACCESS, REFRESH, ID_TOKEN, "2099-01-01T00:00:00Z"))
    before = person.read_text()
    fake.refresh_answer = {"access_token": "ROTATED-ACCESS", "refresh_token": "ROTATED"}
    toml = fake.proxy_toml("api.anthropic.com", "api.openai.com", "auth.openai.com",
                           "chatgpt.com")
    with behind_proxy(tmp_path / "home", agent_image, toml, agents=True,
                      env={"OPENAI_API_KEY": OPENAI_CANARY,
                           "CODEX_AUTH_JSON_PATH": str(person)}) as app:
        wait_for(lambda: app.client().get("/api/credentials")["published"],
                 what="the proxy's credentials")
        for agent in ("codex", "claude"):
            app.cli("create", "--repo", str(repo), "--name", f"no-login-{agent}", "--agent",
                    agent, "--prompt", "say hello", "--skip-permissions")
        codex, claude = app.session("no-login-codex"), app.session("no-login-claude")
        wait_hook(app, codex["id"], "Stop")
        wait_hook(app, claude["id"], "Stop")
        held = json.loads(exec_in(codex["backend_id"], ["cat", "/home/agent/.codex/auth.json"])
                          .stdout)
        assert held == {"OPENAI_API_KEY": held["OPENAI_API_KEY"]}, held
        for s in (codex, claude):
            _, said = in_container(app, s, f"CLIENT={CODEX_CLIENT_ID}\n{PROBE}")
            assert said.split() == ["404", "404", "200", "200"] * 3, said
        at_chatgpt = [c for c in fake.seen if c.path.startswith(("/backend-api/", "/oauth/"))]
        real = [(c.method, c.path, c.headers.get("authorization")) for c in at_chatgpt
                if ACCESS in repr(c.headers) or ACCOUNT in repr(c.headers)
                or REFRESH.encode() in c.body]
        assert real == [], f"the person's ChatGPT login went to a session never given it: {real}"
        assert len(at_chatgpt) >= 24, [c.path for c in fake.seen]
        assert person.read_text() == before, "the person's login was rotated for the agent"
