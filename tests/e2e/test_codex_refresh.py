"""The real Codex CLI refreshes the person's ChatGPT login through the real proxy: the
proxy sends the person's refresh token in place of the container's dummy, keeps the new
tokens (the host's ``auth.json``, and the access token it injects from then on) and hands
the container dummies only."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from appliance.placeholders import chatgpt_placeholder
from appliance.tokens import load_or_create_instance_key
from proxy.token_refresh import CODEX_CLIENT_ID, unsigned_copy
from tests.e2e.agent_checks import exec_in, scan, wait_hook
from tests.e2e.conftest import OPENAI_CANARY
from tests.support.agent_app import behind_proxy
from tests.support.appliance import Appliance, wait_for
from tests.support.fake_models import FakeModels

ACCOUNT = "acct-REAL-e2e-0123"
OLD_ACCESS, OLD_REFRESH = "REAL-OLD-ACCESS-e2e-0123456789", "REAL-OLD-REFRESH-e2e-0123456789"
NEW_ACCESS, NEW_REFRESH = "REAL-NEW-ACCESS-e2e-0123456789", "REAL-NEW-REFRESH-e2e-0123456789"
#: A Codex home of its own: the session's interactive codex serves its own (API-key) login
#: to any ``codex exec`` of its home.
LOGIN = "/home/agent/.codex-chatgpt"
CHATGPT_RESPONSES = "/backend-api/codex/responses"


def _jwt(exp: int, signature: str) -> str:
    """An id_token of the login (its account, plan and expiry), signed by ``signature``."""
    def part(doc: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()
    claims = {"exp": exp, "email": "person@example.com", "https://api.openai.com/auth": {
        "chatgpt_account_id": ACCOUNT, "chatgpt_plan_type": "pro"}}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{signature}"


NEW_ID = _jwt(4102444800, "REAL-NEW-ID-SIGNATURE-e2e")


#: Where Codex finds the login's workspace before it asks the model.
WORKSPACES = {"accounts": [{"id": ACCOUNT, "account_id": ACCOUNT, "structure": "personal",
                            "plan_type": "pro", "can_access_with_session": True,
                            "workspace_backend_origin": "https://chatgpt.com",
                            "account_routing_override": "NO_CONSTRAINT"}],
              "default_account_id": ACCOUNT, "account_ordering": [ACCOUNT]}


def _login(access: str, refresh: str, id_token: str, last_refresh: str) -> str:
    return json.dumps({"OPENAI_API_KEY": None, "last_refresh": last_refresh, "tokens": {
        "id_token": id_token, "access_token": access, "refresh_token": refresh,
        "account_id": ACCOUNT}})


def _own(app: Appliance, session: dict[str, Any]) -> str:
    """The session's ChatGPT placeholder: the dummy the proxy lets the person's login in for."""
    key = load_or_create_instance_key(app.settings.instance_secret_path)
    return chatgpt_placeholder(key, session["id"])


def _log_in_with_dummies(app: Appliance, session: dict[str, Any]) -> None:
    """Codex logged in with ChatGPT in a home of its own, holding dummies (the session's
    ChatGPT placeholder for both tokens, as the appliance writes them), an expired id_token
    with no real signature, refreshed last in 2020 (the appliance writes the API key's
    placeholder alone here: the host has a key)."""
    own = _own(app, session)
    dummy = _login(own, own, _jwt(1600000000, "not-a-signature"), "2020-01-01T00:00:00Z")
    written = exec_in(session["backend_id"], ["bash", "-c", f"mkdir -m 700 {LOGIN} && "
                                              f"cat > {LOGIN}/auth.json"], stdin=dummy.encode())
    assert written.exit_code == 0, written.stderr


def test_the_real_codex_refreshes_the_persons_login_and_holds_dummies_only(
    tmp_path: Path, agent_image: str, fake: FakeModels, repo: Path
) -> None:
    person = tmp_path / "person-codex-auth.json"
    person.write_text(_login(OLD_ACCESS, OLD_REFRESH, _jwt(1600000000, "REAL-OLD-ID-SIG"),
                             "2020-01-01T00:00:00Z"))
    fake.refresh_answer = {"access_token": NEW_ACCESS, "refresh_token": NEW_REFRESH,
                           "id_token": NEW_ID, "token_type": "Bearer", "expires_in": 864000}
    fake.gets["/backend-api/wham/accounts/check"] = WORKSPACES
    toml = fake.proxy_toml("api.anthropic.com", "api.openai.com", "auth.openai.com",
                           "chatgpt.com")
    with behind_proxy(tmp_path / "home", agent_image, toml, agents=True,
                      env={"OPENAI_API_KEY": OPENAI_CANARY,
                           "CODEX_AUTH_JSON_PATH": str(person)}) as app:
        app.cli("create", "--repo", str(repo), "--name", "codex-refresh", "--agent", "codex",
                "--prompt", "say hello", "--skip-permissions")
        s = app.session("codex-refresh")
        wait_hook(app, s["id"], "Stop")
        _log_in_with_dummies(app, s)
        fake.reset()
        done = exec_in(s["backend_id"], [
            "env", "-u", "OPENAI_API_KEY", "-u", "CODEX_API_KEY", f"CODEX_HOME={LOGIN}",
            "codex", "exec", "--skip-git-repo-check", "answer after a refresh"])
        assert done.exit_code == 0, done.stderr
        assert b"Failed to refresh token" not in done.stderr, done.stderr[-600:]
        assert fake.answer.encode() in done.stdout

        [sent] = fake.refreshes()
        body = sent.json()
        assert body["refresh_token"] == OLD_REFRESH, body
        assert body["client_id"] == CODEX_CLIENT_ID and body["grant_type"] == "refresh_token"
        assert set(body) == {"client_id", "grant_type", "refresh_reason", "refresh_token"}
        # ChatGPT's Responses, asked with the login's access token (its body compressed).
        asked = [c for c in fake.seen if (c.method, c.path) == ("POST", CHATGPT_RESPONSES)]
        assert asked and all(c.at > sent.at for c in asked)
        assert {c.headers["authorization"] for c in asked} == {f"Bearer {NEW_ACCESS}"}
        assert {c.headers["chatgpt-account-id"] for c in asked} == {ACCOUNT}

        kept = wait_for(lambda: (t := json.loads(person.read_text())["tokens"])
                        ["refresh_token"] == NEW_REFRESH and t, what="the new tokens kept")
        assert (kept["access_token"], kept["id_token"]) == (NEW_ACCESS, NEW_ID)

        held = exec_in(s["backend_id"], ["cat", f"{LOGIN}/auth.json"])
        tokens = json.loads(held.stdout)["tokens"]
        assert (tokens["refresh_token"], tokens["access_token"]) == (_own(app, s),) * 2
        assert tokens["id_token"] == unsigned_copy(NEW_ID)
        for real in (OLD_ACCESS, OLD_REFRESH, NEW_ACCESS, NEW_REFRESH,
                     "REAL-NEW-ID-SIGNATURE-e2e", "REAL-OLD-ID-SIG"):
            assert scan(s["backend_id"], real, user="0:0") == [], real


NEWER_ACCESS, NEWER_REFRESH = "REAL-NEWER-ACCESS-e2e-0123456789", "REAL-NEWER-REFRESH-e2e-012345"
NEWER_ID = _jwt(4102444800, "REAL-NEWER-ID-SIGNATURE-e2e")


def _answer(access: str, refresh: str, id_token: str) -> dict[str, Any]:
    return {"access_token": access, "refresh_token": refresh, "id_token": id_token,
            "token_type": "Bearer", "expires_in": 864000}


def _refreshed_on_401(fake: FakeModels, old: str, new: str, refresh: str) -> None:
    """One refresh, with the real ``refresh`` token; the model asked with ``old`` before
    it (refused) and with ``new`` after it, last. A call Codex had under way while the
    refresh went may still carry ``old`` (put in before the new tokens came back), refused
    like the others; no other token reaches the model."""
    [sent] = fake.refreshes()
    assert sent.json()["refresh_token"] == refresh, sent.json()
    asked = [(c.at > sent.at, c.headers["authorization"]) for c in fake.seen
             if (c.method, c.path) == ("POST", CHATGPT_RESPONSES)]
    assert (False, f"Bearer {old}") in asked and asked[-1] == (True, f"Bearer {new}"), asked
    assert {a[1] for a in asked} == {f"Bearer {old}", f"Bearer {new}"}, asked


def test_a_401_from_the_model_has_the_real_codex_refresh_the_login_at_the_endpoint(
    tmp_path: Path, agent_image: str, fake: FakeModels, repo: Path
) -> None:
    """The model refuses the login's access token (revoked): the real Codex refreshes, the
    endpoint sees one refresh with the person's refresh token, and Codex asks again with
    the new access token. Right after, the new one is refused too: the refresh that follows
    goes to the endpoint (not the kept answer of the last one), with the newest refresh
    token. The container holds no real token at any point."""
    person = tmp_path / "person-codex-auth.json"
    person.write_text(_login(OLD_ACCESS, OLD_REFRESH, _jwt(4102444800, "REAL-OLD-ID-SIG"),
                             "2099-01-01T00:00:00Z"))
    fake.gets["/backend-api/wham/accounts/check"] = WORKSPACES
    fake.revoked = {OLD_ACCESS}
    fake.refresh_answer = _answer(NEW_ACCESS, NEW_REFRESH, NEW_ID)
    toml = fake.proxy_toml("api.openai.com", "auth.openai.com", "chatgpt.com")
    with behind_proxy(tmp_path / "home", agent_image, toml, agents=True,
                      env={"CODEX_AUTH_JSON_PATH": str(person)}) as app:
        wait_for(lambda: app.client().get("/api/credentials")["published"],
                 what="the proxy's credentials")
        app.cli("create", "--repo", str(repo), "--name", "codex-revoked", "--agent", "codex",
                "--prompt", "say hello", "--skip-permissions")
        s = app.session("codex-revoked")
        wait_hook(app, s["id"], "Stop")
        _refreshed_on_401(fake, OLD_ACCESS, NEW_ACCESS, OLD_REFRESH)

        fake.reset()
        fake.revoked = {NEW_ACCESS}
        fake.refresh_answer = _answer(NEWER_ACCESS, NEWER_REFRESH, NEWER_ID)
        copied = exec_in(s["backend_id"], ["bash", "-c", f"mkdir -m 700 {LOGIN} && "
                                           f"cp /home/agent/.codex/auth.json {LOGIN}/"])
        assert copied.exit_code == 0, copied.stderr
        done = exec_in(s["backend_id"], [
            "env", "-u", "OPENAI_API_KEY", "-u", "CODEX_API_KEY", f"CODEX_HOME={LOGIN}",
            "codex", "exec", "--skip-git-repo-check", "answer after a 401"])
        assert done.exit_code == 0, done.stderr[-600:]
        assert fake.answer.encode() in done.stdout
        _refreshed_on_401(fake, NEW_ACCESS, NEWER_ACCESS, NEW_REFRESH)

        wait_for(lambda: json.loads(person.read_text())["tokens"]["refresh_token"]
                 == NEWER_REFRESH, what="the newest tokens kept")
        for real in (OLD_ACCESS, OLD_REFRESH, NEW_ACCESS, NEW_REFRESH, NEWER_ACCESS,
                     NEWER_REFRESH, "REAL-OLD-ID-SIG", "REAL-NEW-ID-SIGNATURE-e2e",
                     "REAL-NEWER-ID-SIGNATURE-e2e"):
            assert scan(s["backend_id"], real, user="0:0") == [], real
