"""What one model call says about a session's model health (pure), and that the agents'
model credentials are the ones the proxy's rules put in."""

from __future__ import annotations

import pytest

from appliance import modelhealth
from appliance.credentials.doctor import AGENT_CREDENTIALS
from appliance.sessions import Agent
from proxy.rules import DEFAULT_RULES, match_rule

ANTHROPIC = ("anthropic_oauth_token", "anthropic_api_key")


def judge(status: int, *, error: str | None = None, credential: str | None = None,
          rule: tuple[str, ...] = ANTHROPIC) -> modelhealth.Verdict | None:
    return modelhealth.judge(host="api.anthropic.com", status=status, error=error,
                             credential=credential, rule_credentials=rule)


def reason(verdict: modelhealth.Verdict | None) -> str:
    assert verdict is not None and not verdict.ok
    assert verdict.reason is not None
    return verdict.reason


def test_success_clears() -> None:
    assert judge(200, credential="anthropic_api_key") == modelhealth.OK
    assert judge(204) == modelhealth.OK


def test_no_credential_names_what_to_set() -> None:
    said = reason(judge(401))
    assert said.startswith("the model API answered 401: no credential is configured")
    assert "CLAUDE_CODE_OAUTH_TOKEN or ANTHROPIC_API_KEY" in said
    assert "clauderon status" in said


def test_a_refused_credential_names_its_variable() -> None:
    said = reason(judge(401, credential="anthropic_api_key"))
    assert said.startswith("the model API answered 401: check ANTHROPIC_API_KEY")
    said = reason(modelhealth.judge(host="api.openai.com", status=403, error=None,
                                    credential="openai_api_key",
                                    rule_credentials=("openai_api_key",)))
    assert "check OPENAI_API_KEY" in said


@pytest.mark.parametrize(("error", "words"), [
    ("DNS_RESOLUTION_FAILURE", "does not resolve"),
    ("CONNECTION_REFUSED", "refused"),
    ("CONNECTION_TIMEOUT", "timed out"),
    ("TLS_CERTIFICATE_ERROR", "extra_ca_bundle"),
    ("UPSTREAM_TIMEOUT", "did not answer in time"),
    ("DESTINATION_FORBIDDEN", "this machine"),
])
def test_unreachable_hosts_say_why(error: str, words: str) -> None:
    said = reason(judge(502, error=error))
    assert said.startswith("cannot reach api.anthropic.com: ") and words in said


@pytest.mark.parametrize(("status", "words"), [
    (404, "model name"), (429, "rate-limited"), (500, "a problem at"), (529, "retries"),
    (400, "answered 400"),
])
def test_other_answers(status: int, words: str) -> None:
    assert words in reason(judge(status, credential="anthropic_api_key"))


@pytest.mark.parametrize("error", ["BUDGET_EXCEEDED", "CLIENT_GONE", "CLIENT_PROTOCOL_ERROR"])
def test_our_own_refusals_and_hang_ups_say_nothing(error: str) -> None:
    assert judge(429, error=error) is None
    assert judge(200, error=error) is None


def test_interim_answers_say_nothing() -> None:
    assert judge(0) is None
    assert judge(101) is None
    assert judge(302) is None


def test_reasons_are_bounded_and_hold_no_value() -> None:
    said = reason(modelhealth.judge(host="x" * 1000, status=502,
                                    error="DNS_RESOLUTION_FAILURE", credential=None,
                                    rule_credentials=()))
    assert len(said) <= modelhealth.MAX_REASON


def test_each_agents_model_credentials_are_its_hosts_rule() -> None:
    hosts = {Agent.CLAUDE: ("api.anthropic.com", "/v1/messages"),
             Agent.CODEX: ("api.openai.com", "/v1/responses")}
    for agent, (host, path) in hosts.items():
        rule = match_rule(DEFAULT_RULES, host, path)
        assert rule is not None
        assert set(AGENT_CREDENTIALS[agent]) <= set(rule.credentials), agent


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_chatgpt_login_says_to_sign_codex_in_again(status: int) -> None:
    """The ChatGPT login comes from Codex's own sign-in, not a variable: the reason named
    CODEX_ACCESS_TOKEN, which the person never set."""
    said = reason(modelhealth.judge(host="chatgpt.com", status=status, error=None,
                                    credential="codex_access_token",
                                    rule_credentials=("codex_access_token", "codex_account_id")))
    assert said == (f"the model API answered {status}: the person's ChatGPT login was refused; "
                    "sign Codex in again where the appliance runs (`codex login`)")
