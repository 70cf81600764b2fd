"""A person whose only OpenAI credential is Codex's ChatGPT login runs Codex in a session:
the container holds the account id, an unsigned copy of the id_token and stand-ins; the
real Codex asks ChatGPT's Responses through the real proxy, which puts the person's access
token and account id in, and no real token is anywhere in the container."""

from __future__ import annotations

import json
from pathlib import Path

from proxy.token_refresh import PLACEHOLDER_ACCESS, unsigned_copy
from tests.e2e.agent_checks import exec_in, scan, wait_hook
from tests.e2e.test_codex_refresh import ACCOUNT, CHATGPT_RESPONSES, WORKSPACES, _jwt, _login
from tests.support.agent_app import behind_proxy
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
        assert (tokens["access_token"], tokens["account_id"]) == (PLACEHOLDER_ACCESS, ACCOUNT)
        assert tokens["id_token"] == unsigned_copy(ID_TOKEN)
        for real in (ACCESS, REFRESH, "REAL-CHATGPT-ID-SIGNATURE-e2e"):
            assert scan(s["backend_id"], real, user="0:0") == [], real
