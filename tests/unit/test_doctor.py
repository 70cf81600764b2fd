"""The credentials doctor (pure): what the proxy publishes holds names, sources and masked
values only, and the report says which agents can work and what to set otherwise."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from appliance.credentials import Credential, CredentialSet, doctor
from appliance.credentials.model import SPECS

CANARY = "sk-ant-api03-DOCTOR-CANARY-0123456789abcdef"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def creds(*found: Credential) -> CredentialSet:
    return CredentialSet.of(found)


def test_published_never_holds_a_value() -> None:
    raw = doctor.published(creds(
        Credential(name="anthropic_api_key", value=CANARY, source="env"),
        Credential(name="github_token", value="short-CANARY", source="file")),
        ["npm_token: refusing secret file ... (mode 0644)"], NOW)
    assert "CANARY" not in raw
    report = doctor.report(raw)
    shown = {c.name: c for c in report.credentials}
    assert shown["anthropic_api_key"].masked == "sk-a…ef"
    assert shown["anthropic_api_key"].source == "env"
    assert shown["github_token"].masked == "…"  # short: nothing of it
    assert report.warnings == ("npm_token: refusing secret file ... (mode 0644)",)
    assert report.loaded_at == NOW.isoformat() and report.published


def test_every_known_credential_is_listed_set_or_not() -> None:
    report = doctor.report(doctor.published(creds(), [], NOW))
    assert [c.name for c in report.credentials] == [s.name for s in SPECS]
    assert all(c.source is None and c.masked is None for c in report.credentials)
    claude = next(c for c in report.credentials if c.name == "anthropic_api_key")
    assert claude.env == ("ANTHROPIC_API_KEY",)


def test_agents_ready_with_either_of_their_credentials() -> None:
    report = doctor.report(doctor.published(creds(
        Credential(name="anthropic_oauth_token", value="x" * 40, source="1password")), [], NOW))
    ready = {a.agent: a for a in report.agents}
    assert ready["claude"].ready and ready["claude"].using == "anthropic_oauth_token"
    assert ready["claude"].hint is None
    assert not ready["codex"].ready
    assert ready["codex"].hint is not None and "OPENAI_API_KEY" in ready["codex"].hint


def test_nothing_published_yet() -> None:
    for raw in (None, "not json", json.dumps([1, 2])):
        report = doctor.report(raw)
        assert not report.published
        assert not any(a.ready for a in report.agents)
        hint = next(a.hint for a in report.agents if a.agent == "claude")
        assert hint is not None and "ANTHROPIC_API_KEY" in hint


ID = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjF9.REAL-SIGNATURE"
ACCESS = Credential(name="codex_access_token", value="REAL-ACCESS", source="codex-auth.json")
ACCOUNT = Credential(name="codex_account_id", value="acct-1", source="codex-auth.json")
ID_TOKEN = Credential(name="codex_id_token", value=ID, source="codex-auth.json")
API_KEY = Credential(name="openai_api_key", value="sk-REAL", source="env")


@pytest.mark.parametrize(("found", "login"), [
    ((ACCESS, ACCOUNT, ID_TOKEN), {"account_id": "acct-1",
                                   "id_token": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"
                                               ".eyJleHAiOjF9.clauderon-unsigned"}),
    ((ACCESS, ACCOUNT, ID_TOKEN, API_KEY), None),  # the API key goes first
    ((ACCOUNT, ID_TOKEN), None),  # no login
    ((ACCESS, ID_TOKEN), None),
    ((ACCESS, ACCOUNT), None),
])
def test_the_chatgpt_login_published_holds_no_token(
        found: tuple[Credential, ...], login: dict[str, str] | None) -> None:
    raw = doctor.published_login(creds(*found))
    assert "REAL" not in raw
    assert doctor.codex_login(raw) == login


@pytest.mark.parametrize("raw", [None, "", "[]", "{}", '{"account_id": "a"}',
                                 '{"account_id": "a", "id_token": 1}',
                                 '{"account_id": "", "id_token": "t"}'])
def test_no_chatgpt_login_read_from_anything_else(raw: str | None) -> None:
    assert doctor.codex_login(raw) is None


@pytest.mark.parametrize(("found", "using"), [
    ((ACCESS, ACCOUNT, ID_TOKEN), "codex_access_token"),  # the session's Codex signs in so
    ((ACCESS, ACCOUNT, ID_TOKEN, API_KEY), "openai_api_key"),
    ((ACCESS, ACCOUNT), None), ((ACCOUNT, ID_TOKEN), None),  # a login in part: not one
])
def test_codex_is_ready_with_a_whole_chatgpt_login(
        found: tuple[Credential, ...], using: str | None) -> None:
    codex = next(a for a in doctor.report(doctor.published(creds(*found), [], NOW)).agents
                 if a.agent == "codex")
    assert (codex.ready, codex.using) == (using is not None, using)
    assert codex.hint is None if using else "codex login" in (codex.hint or "")
