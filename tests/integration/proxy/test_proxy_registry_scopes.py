"""The registry's token endpoint, played by a hostile agent: a session may ask the person's
Docker Hub credential for a pull token only.

A scope is ``type:name:actions``, and OAuth writes several in one ``scope`` parameter,
separated by spaces (containerd sends them so): read as one, only the last scope's actions
were judged, and a push token for another repository went with the pull the last one asked.
And a pull token asked ``offline_token=true`` comes with a refresh token, which never
expires and gets tokens of any scope: a credential of the person's the agent keeps.
"""

from __future__ import annotations

import pytest
from conftest import SECRETS, Proxy, client, route
from proxy_fakes import FakeUpstream

DOCKER = "dckr_pat_REAL-DOCKER-CANARY"


@pytest.fixture
def secrets() -> dict[str, str]:
    return {**SECRETS, "docker_token": DOCKER}


@pytest.mark.parametrize("scope", [
    "repository:person/app:push%20repository:person/base:pull",
    "repository:person/app:push+repository:person/base:pull",
    "repository:person/app:pull,push%09repository:person/base:pull",
    "repository:person/app:*%0arepository:person/base:pull",
])
async def test_a_push_scope_beside_a_pull_one_is_refused(
        proxy: Proxy, fake: FakeUpstream, scope: str) -> None:
    route(proxy, fake.port, "auth.docker.io")
    async with client(proxy, proxy.add_session("registry")) as c:
        r = await c.get(f"https://auth.docker.io/token?service=registry.docker.io&scope={scope}",
                        headers={"authorization": "Bearer dummy"})
        pull = await c.get("https://auth.docker.io/token?service=registry.docker.io"
                           "&scope=repository:person/base:pull",
                           headers={"authorization": "Bearer dummy"})
    assert [seen.target for seen in fake.seen] == [
        "/token?service=registry.docker.io&scope=repository:person/base:pull"], \
        "a push token was asked for with the person's credential"
    assert (r.status_code, r.headers["x-proxy-error-type"]) == (403, "CREDENTIAL_USE")
    assert "push" in r.text or "*" in r.text, r.text
    assert pull.status_code == 200  # the control: a pull token goes, with the credential
    assert fake.seen[0].header("authorization") == [f"Bearer {DOCKER}"]


@pytest.mark.parametrize("offline", ["true", "1", "True", "t", "yes"])
async def test_a_pull_token_asked_with_a_refresh_token_is_refused(
        proxy: Proxy, fake: FakeUpstream, offline: str) -> None:
    route(proxy, fake.port, "auth.docker.io")
    pull = "/token?service=registry.docker.io&scope=repository:person/base:pull"
    async with client(proxy, proxy.add_session("registry-offline")) as c:
        r = await c.get(f"https://auth.docker.io{pull}&offline_token={offline}",
                        headers={"authorization": "Bearer dummy"})
        control = await c.get(f"https://auth.docker.io{pull}&offline_token=false",
                              headers={"authorization": "Bearer dummy"})
    assert [seen.target for seen in fake.seen] == [f"{pull}&offline_token=false"], \
        "a refresh token was asked for with the person's credential"
    assert (r.status_code, r.headers["x-proxy-error-type"]) == (403, "CREDENTIAL_USE")
    assert "offline_token" in r.text, r.text
    assert control.status_code == 200
