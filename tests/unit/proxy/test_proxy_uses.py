"""What a session may do with the person's credentials beyond GitHub (pure): no credential
minted from one, nothing published with a registry's."""

from __future__ import annotations

import pytest

from proxy import uses
from proxy.uses import method_override, path_override, readings, use_refusal

NPM, HUB, AUTH = "registry.npmjs.org", "registry-1.docker.io", "auth.docker.io"


@pytest.mark.parametrize(("credential", "host", "method", "target", "refused"), [
    # Minting an API key from the person's Anthropic login, however the path is written.
    ("anthropic_oauth_token", "api.anthropic.com", "POST",
     "/api/oauth/claude_cli/create_api_key", True),
    ("anthropic_api_key", "api.anthropic.com", "POST", "/api/oauth/claude_cli/create_api_key",
     True),
    ("anthropic_oauth_token", "api.anthropic.com", "POST",
     "/API/%6Fauth/claude_cli/create_api_key", True),
    ("anthropic_oauth_token", "api.anthropic.com", "POST",
     "/v1/../api/oauth/claude_cli/create_api_key", True),
    ("anthropic_oauth_token", "api.anthropic.com", "POST",
     "//api/oauth/claude_cli/create_api_key/", True),
    ("anthropic_oauth_token", "api.anthropic.com", "POST",
     "/api/oauth/claude_cli\\create_api_key", True),
    ("anthropic_oauth_token", "api.anthropic.com", "POST",
     "/api/oauth/claude_cli/create_api_key;x", True),
    ("anthropic_oauth_token", "api.anthropic.com", "POST",
     "/api/oauth/claude_cli/create%255Fapi%255Fkey", True),
    # A tail some servers cut or read past: a fragment, a NUL, a format suffix, a space.
    *(("anthropic_oauth_token", "api.anthropic.com", "POST",
       f"/api/oauth/claude_cli/create_api_key{tail}", True)
      for tail in ("#x", "%23x", "%00", "%2500", ".json", "%20", "%09", "~", "!")),
    ("anthropic_api_key", "api.anthropic.com", "POST", "/v1/organizations#/invites", True),
    ("anthropic_api_key", "api.anthropic.com", "POST", "/v1/organizations%00", True),
    ("openai_api_key", "api.openai.com", "POST", "/v1/organization.json", True),
    ("anthropic_oauth_token", "api.anthropic.com", "PUT",
     "/api/oauth/organizations/org-1/prepaid%23", True),
    ("sentry_auth_token", "sentry.io", "POST", "/api/0/api-tokens%00", True),
    ("grafana_api_key", "grafana.example", "POST", "/api/auth/keys#", True),
    # A longer name is another endpoint.
    ("openai_api_key", "api.openai.com", "POST", "/v1/organization_settings", False),
    ("anthropic_oauth_token", "api.anthropic.com", "POST",
     "/api/oauth/claude_cli/create_api_key_usage", False),
    ("anthropic_oauth_token", "api.anthropic.com", "PUT",
     "/api/oauth/organizations/org-1\\prepaid", True),
    ("anthropic_api_key", "api.anthropic.com", "POST", "/v1/organizations;x/invites", True),
    # Its money: overage, prepaid credits, the payment method; reading them is fine.
    ("anthropic_oauth_token", "api.anthropic.com", "PUT",
     "/api/oauth/organizations/org-1/overage_spend_limit", True),
    ("anthropic_oauth_token", "api.anthropic.com", "POST",
     "/api/oauth/organizations/org-1/prepaid/bundles", True),
    ("anthropic_oauth_token", "api.anthropic.com", "GET",
     "/api/oauth/organizations/org-1/prepaid/credits", False),
    # What the agent itself calls goes: its messages, settings, profile, usage.
    ("anthropic_oauth_token", "api.anthropic.com", "POST", "/v1/messages?beta=true", False),
    ("anthropic_oauth_token", "api.anthropic.com", "GET", "/api/claude_code/settings", False),
    ("anthropic_oauth_token", "api.anthropic.com", "GET", "/api/oauth/profile", False),
    ("anthropic_oauth_token", "api.anthropic.com", "GET", "/api/oauth/usage", False),
    ("anthropic_oauth_token", "api.anthropic.com", "GET", "/api/oauth/claude_cli/roles", False),
    ("sentry_auth_token", "sentry.io", "POST", "/api/0/api-tokens/", True),
    # An admin key's organisation: invites, keys, service accounts are the person's; reads go.
    ("anthropic_api_key", "api.anthropic.com", "POST", "/v1/organizations/invites", True),
    ("anthropic_api_key", "api.anthropic.com", "POST", "/v1/organizations/api_keys/k1", True),
    ("anthropic_api_key", "api.anthropic.com", "GET", "/v1/organizations/users", False),
    ("openai_api_key", "api.openai.com", "POST",
     "/v1/organization/projects/p1/service_accounts", True),
    ("openai_api_key", "api.openai.com", "POST", "/v1/organization/admin_api_keys", True),
    ("openai_api_key", "api.openai.com", "DELETE", "/V1/Organization/users/u1", True),
    ("openai_api_key", "api.openai.com", "GET", "/v1/organization/usage/completions", False),
    ("openai_api_key", "api.openai.com", "POST", "/v1/responses", False),
    ("anthropic_api_key", "api.anthropic.com", "POST", "/v1/messages", False),
    ("sentry_auth_token", "sentry.io", "POST", "/api/0/organizations/acme/members/", True),
    ("sentry_auth_token", "sentry.io", "POST", "/api/0/organizations/acme/org-auth-tokens/",
     True),
    ("sentry_auth_token", "sentry.io", "GET", "/api/0/organizations/acme/org-auth-tokens/",
     False),
    ("sentry_auth_token", "sentry.io", "POST",
     "/api/0/sentry-app-installations/i1/authorizations/", True),
    ("sentry_auth_token", "sentry.io", "PUT", "/api/0/issues/1/", False),
    ("pagerduty_token", "api.pagerduty.com", "POST", "/users", True),
    ("pagerduty_token", "api.pagerduty.com", "POST", "/incidents", False),
    ("grafana_api_key", "grafana.example", "POST", "/api/auth/keys", True),
    ("grafana_api_key", "grafana.example", "POST", "/api/serviceaccounts/3/tokens", True),
    ("grafana_api_key", "grafana.example", "POST", "/api/org/invites", True),
    ("grafana_api_key", "grafana.example", "POST", "/api/dashboards/db", False),
    ("github_token", "api.github.com", "GET", "/copilot_internal/v2/token", True),
    # OpenAI's Realtime hands out a key of its own (a client secret), by either endpoint.
    ("openai_api_key", "api.openai.com", "POST", "/v1/realtime/client_secrets", True),
    ("openai_api_key", "api.openai.com", "POST", "/v1/realtime/sessions", True),
    ("openai_api_key", "api.openai.com", "POST", "/v1/realtime/transcription_sessions", True),
    ("openai_api_key", "api.openai.com", "POST", "/v1/realtime/CLIENT_SECRETS/", True),
    ("openai_api_key", "api.openai.com", "POST", "/v1/realtime/calls", False),
    ("github_token", "api.github.com", "GET", "/repos/o/r/pulls", False),
    # npm's token endpoint mints (whatever allow_writes lets a session publish: below).
    ("npm_token", NPM, "POST", "/-/npm/v1/tokens", True),
    # TRACE answers with the request itself, the credential in it: never sent with one.
    ("github_token", "api.github.com", "TRACE", "/", True),
    ("anthropic_api_key", "api.anthropic.com", "trace", "/v1/messages", True),
    ("grafana_api_key", "grafana.example", "TRACK", "/", True),
    ("sentry_auth_token", "sentry.io", "GET", "/api/0/projects/", False),
    # A registry: reads and npm's audit pass, a publish does not.
    ("npm_token", NPM, "GET", "/@scope%2fpkg", False),
    ("npm_token", NPM, "GET", "/pkg/-/pkg-1.0.0.tgz", False),
    ("npm_token", NPM, "POST", "/-/npm/v1/security/advisories/bulk", False),
    ("npm_token", NPM, "PUT", "/pkg", True),
    ("npm_token", NPM, "POST", "/-/npm/v1/security/../tokens", True),
    ("npm_token", NPM, "DELETE", "/pkg/-rev/3-abc", True),
    ("docker_token", HUB, "GET", "/v2/person/app/manifests/latest", False),
    ("docker_token", HUB, "PUT", "/v2/person/app/manifests/latest", True),
    ("docker_token", HUB, "POST", "/v2/person/app/blobs/uploads/", True),
    # The registry's token endpoint: a pull token, never one that pushes or deletes.
    ("docker_token", AUTH, "GET", "/token?service=registry.docker.io&scope="
                                  "repository:person/app:pull", False),
    ("docker_token", AUTH, "GET", "/token?scope=repository:person/app:pull,push", True),
    ("docker_token", AUTH, "GET", "/token?scope=repository:a:pull&scope=repository:b:*", True),
    ("docker_token", AUTH, "GET", "/token?scope=repository:person/app:delete", True),
    # Several scopes in one parameter, separated by spaces: each is judged.
    ("docker_token", AUTH, "GET", "/token?scope=repository:a:push%20repository:b:pull", True),
    ("docker_token", AUTH, "GET", "/token?scope=repository:a:pull+repository:b:pull", False),
    # A refresh token with it (never expires, any scope): asked by any true value.
    ("docker_token", AUTH, "GET", "/token?scope=repository:a:pull&offline_token=true", True),
    ("docker_token", AUTH, "GET", "/token?scope=repository:a:pull&offline_token=", True),
    ("docker_token", AUTH, "GET", "/token?scope=repository:a:pull&offline_token=0", False),
    # Others' credentials are used as the service allows (GitHub has its own rules).
    ("github_token", "api.github.com", "POST", "/repos/o/r/issues", False),
    ("github_token", "api.github.com", "GET", "/graphql?query=mutation%7BmergePullRequest%7D",
     True),
    ("github_token", "api.github.com", "GET", "/graphql", False),
    ("github_token", "api.github.com", "GET", "/repos/o/r/pulls?state=open", False),
    # A character newer than the proxy's Unicode, with a credential that has endpoints it
    # must not reach: a newer collation may read it as a digit or a letter of one.
    ("openai_api_key", "api.openai.com", "GET", "/v%F0%9D%8B%81/organizations/invites", True),
    ("github_token", "api.github.com", "GET", "/repos/o/r/contents/%F0%9F%AB%A8", True),
    ("openai_api_key", "api.openai.com", "POST", "/v1/files/%F0%9F%98%80", False),  # known
    ("docker_token", HUB, "GET", "/v2/p/app-%F0%9F%AB%A8/tags/list", False),  # none to reach
])
def test_what_a_session_may_do_with_a_credential(credential: str, host: str, method: str,
                                                  target: str, refused: bool) -> None:
    why = use_refusal(credential, host, method, target)
    assert (why is not None) == refused, why


@pytest.mark.parametrize("target", [
    "/v1/messages", "/v1/organizations/invites?limit=1", "/v%F0%9D%8B%81/org%C3%B8nizations",
    "/repos/o/r/..%2f..%2fuser/keys;x=1", "/%u0131nvites", "/" + "a" * (uses.KEPT_PATH + 1),
])
def test_a_path_kept_reads_as_one_read_anew(target: str) -> None:
    path = target.split("?", 1)[0]
    assert readings(target) == readings(path) == uses._read(path)
    assert readings(target) == uses._read(path)  # the second time, from what was kept


def test_a_long_path_is_not_kept() -> None:
    uses._kept.cache_clear()
    readings("/" + "%uFDFA" * uses.KEPT_PATH)
    assert uses._kept.cache_info().currsize == 0
    readings("/v1/messages?beta=true")
    readings("/v1/messages")
    assert uses._kept.cache_info().currsize == 1
    assert uses._kept.cache_info().maxsize == uses.KEPT_READINGS


def test_a_refusal_holds_when_its_path_was_kept_for_another() -> None:
    # Kept readings serve every request of the path; the judgement stays the request's own.
    assert use_refusal("openai_api_key", "api.openai.com", "GET", "/v1/organization/invites")\
        is None
    assert use_refusal("openai_api_key", "api.openai.com", "POST", "/v1/organization/invites")


def test_the_person_may_let_sessions_publish() -> None:
    assert use_refusal("npm_token", NPM, "PUT", "/pkg") is not None
    assert use_refusal("npm_token", NPM, "PUT", "/pkg", allow_writes={"npm_token"}) is None
    # A registry token that pushes is still the person's to ask for.
    push = "/token?scope=repository:person/app:pull,push"
    assert use_refusal("docker_token", AUTH, "GET", push, allow_writes={"docker_token"})
    # So is a new npm token: publishing is not minting.
    assert use_refusal("npm_token", NPM, "POST", "/-/npm/v1/tokens",
                       allow_writes={"npm_token"})


@pytest.mark.parametrize(("headers", "refused"), [
    ([(b"accept", b"*/*")], False),
    ([(b"X-Original-URL", b"/v1/echo")], True),
    ([(b"x-rewrite-url", b"/repos/o/r/pulls/1/merge")], True),
    ([(b"x_original_url", b"/v1/echo")], True),
    ([(b"x-original-method", b"GET")], False),
])
def test_a_request_names_no_path_but_its_own(headers: list[tuple[bytes, bytes]],
                                             refused: bool) -> None:
    assert (path_override(headers) is not None) == refused


@pytest.mark.parametrize(("headers", "refused"), [
    ([(b"accept", b"*/*")], False),
    ([(b"X-HTTP-Method-Override", b"PUT")], True),
    ([(b"x-http-method", b"DELETE")], True),
    ([(b"X-Method-Override", b"PATCH")], True),
    ([(b"x-http-method-override", b"GET")], True),  # even naming a read: the method is one
    ([(b"X_HTTP_METHOD_OVERRIDE", b"PUT")], True),  # one to a CGI environment
])
def test_a_request_names_no_method_but_its_own(headers: list[tuple[bytes, bytes]],
                                               refused: bool) -> None:
    assert (method_override(headers) is not None) == refused
