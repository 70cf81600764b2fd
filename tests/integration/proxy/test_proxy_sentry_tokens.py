"""Sentry's organisation auth tokens, played by a hostile agent: a POST to
``/api/0/organizations/<org>/org-auth-tokens/`` answers a new token of the person's
organisation (for uploads, releases, the API), which outlives the session and leaves with
it. Refused with the person's ``sentry_auth_token`` as its user tokens are."""

from __future__ import annotations

import pytest
from conftest import SECRETS, Proxy, client, route
from proxy_fakes import FakeUpstream

SENTRY = "sntryu_REAL-SENTRY-CANARY-0123456789"


@pytest.fixture
def secrets() -> dict[str, str]:
    return {**SECRETS, "sentry_auth_token": SENTRY}


@pytest.mark.parametrize("path", [
    "/api/0/organizations/person/org-auth-tokens/",
    "/api/0/organizations/person/org-auth-tokens",
    "/api/0/organizations/person/ORG-AUTH-TOKENS/",
])
async def test_an_organisation_token_is_not_minted_with_the_persons_sentry_token(
        proxy: Proxy, fake: FakeUpstream, path: str) -> None:
    route(proxy, fake.port, "sentry.io")
    async with client(proxy, proxy.add_session("sentry-minter")) as c:
        r = await c.post(f"https://sentry.io{path}", json={"name": "ci"},
                         headers={"authorization": "Bearer dummy"})
        control = await c.get("https://sentry.io/api/0/organizations/person/issues/",
                              headers={"authorization": "Bearer dummy"})
    assert [seen.target for seen in fake.seen] == ["/api/0/organizations/person/issues/"], \
        "an organisation token was asked for with the person's credential"
    assert (r.status_code, r.headers["x-proxy-error-type"]) == (403, "CREDENTIAL_USE")
    assert control.status_code == 200
    assert fake.seen[0].header("authorization") == [f"Bearer {SENTRY}"]
