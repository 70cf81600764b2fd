"""The agent gets no credential of its own from the person's, and publishes nothing under
their name (the real appliance, a real session container, fake services on loopback).

The attacker is the agent, as uid 1000 in its container, with placeholders in its
environment and the proxy putting the person's credentials in: it asks Anthropic to turn the
person's login into an API key (also with the path written so a prefix check would miss
it), the registry's token endpoint for a token that may push, npm to publish a package, the
Docker registry to take a manifest and the model provider's organisation to invite someone.
Each is refused with 403 before the service sees it, and its audit line says why. The
controls: a read from each registry, a pull token and a model call go through, with the
real credential.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent_app import behind_proxy, create, in_container
from tests.support.appliance import Appliance, wait_for
from tests.support.tls_fake import TlsFake

REAL = {"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-REAL-LOGIN", "NPM_TOKEN": "npm_REALNPM",
        "DOCKER_TOKEN": "dckr_pat_REALDOCKER"}


class FakeServices(TlsFake):
    """Anthropic, npm's registry, Docker Hub and its token endpoint: each request recorded
    with the credential it carried; the answers a real service would give the attacker (a
    new API key, a push token, a published package) so a leak would show."""

    HOSTS = ("api.anthropic.com", "registry.npmjs.org", "registry-1.docker.io",
             "auth.docker.io")

    def __init__(self, folder: Path) -> None:
        self.seen: list[tuple[str, str, str, str]] = []
        self.lock = threading.Lock()
        self._listen(folder, "fake-services", self.HOSTS, _Handler)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServices
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: object) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        host = (self.headers.get("Host") or "").split(":")[0]
        said = self.headers.get("Authorization") or self.headers.get("x-api-key") or ""
        with self.fake.lock:
            self.fake.seen.append((host, self.command, self.path, said))
        answer: dict[str, Any] = {"ok": True}
        if "/api/oauth/" in self.path:
            answer = {"raw_key": "sk-ant-api03-MINTED-FOR-THE-AGENT"}
        elif host == "auth.docker.io":
            answer = {"token": "REGISTRY-JWT-" + self.path.rpartition(":")[2]}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815


@pytest.fixture
def services(tmp_path: Path) -> Iterator[FakeServices]:
    with FakeServices(tmp_path) as fake:
        yield fake


@pytest.fixture
def app(tmp_path: Path, agent_image: str, services: FakeServices) -> Iterator[Appliance]:
    with behind_proxy(tmp_path / "home", agent_image, services.proxy_toml(), env=REAL) as a:
        yield a


def test_the_agent_mints_no_credential_and_publishes_nothing_with_the_persons(
        app: Appliance, services: FakeServices, repo: Path) -> None:
    s = create(app, repo, "publisher")

    def call(method: str, url: str, header: str) -> tuple[str, str]:
        _, out = in_container(app, s, (
            f"curl -s --path-as-is -o /tmp/answer -w '%{{http_code}}' -X {method} "
            f"-H \"{header}\" -H 'content-type: application/json' -d '{{}}' '{url}'; "
            "echo; cat /tmp/answer"))
        code, _, body = out.partition("\n")
        return code.strip()[-3:], body

    login = "Authorization: Bearer $CLAUDE_CODE_OAUTH_TOKEN"
    npm, docker = "Authorization: Bearer $NPM_TOKEN", "Authorization: Bearer $DOCKER_TOKEN"
    attacks = [
        ("POST", "https://api.anthropic.com/api/oauth/claude_cli/create_api_key", login),
        ("POST", "https://api.anthropic.com/v1/../API/%6fauth/claude_cli/create_api_key", login),
        ("GET", "https://auth.docker.io/token?scope=repository:person/app:pull,push", docker),
        ("PUT", "https://registry.npmjs.org/left-pad", npm),
        ("PUT", "https://registry-1.docker.io/v2/person/app/manifests/latest", docker),
        ("POST", "https://api.anthropic.com/v1/organizations/invites", login),
        # Spellings a server may read as the minting path: a backslash as a slash (a WHATWG
        # URL parser, IIS), an escaped one, a `;` parameter (Tomcat), an escape escaped.
        ("POST", "https://api.anthropic.com/api/oauth/claude_cli\\create_api_key", login),
        ("POST", "https://api.anthropic.com/api/oauth/claude_cli%5Ccreate_api_key", login),
        ("POST", "https://api.anthropic.com/api/oauth/claude_cli/create_api_key;x", login),
        ("POST", "https://api.anthropic.com/api/oauth/claude_cli/create%255Fapi%255Fkey", login),
    ]
    for method, url, header in attacks:
        code, body = call(method, url, header)
        assert code == "403", (url, code, body)
        assert "MINTED" not in body and "REGISTRY-JWT" not in body
    assert services.seen == []

    # The controls: reads, a pull token and a model call go, with the real credentials.
    controls = [
        ("GET", "https://registry.npmjs.org/left-pad", npm),
        ("POST", "https://registry.npmjs.org/-/npm/v1/security/advisories/bulk", npm),
        ("GET", "https://auth.docker.io/token?scope=repository:person/app:pull", docker),
        ("GET", "https://registry-1.docker.io/v2/person/app/manifests/latest", docker),
        ("POST", "https://api.anthropic.com/v1/messages", login),
    ]
    assert [call(*c)[0] for c in controls] == ["200"] * len(controls)
    assert [(host, said) for host, _, _, said in services.seen] == [
        ("registry.npmjs.org", "Bearer npm_REALNPM")] * 2 + [
        ("auth.docker.io", "Bearer dckr_pat_REALDOCKER"),
        ("registry-1.docker.io", "Bearer dckr_pat_REALDOCKER"),
        ("api.anthropic.com", "Bearer sk-ant-oat01-REAL-LOGIN")]

    refused = app.audit(lambda x: x["session"] == s["id"] and x["status"] == 403,
                        at_least=len(attacks))
    assert [x["error"] for x in refused] == ["CREDENTIAL_USE"] * len(attacks)
    assert "would make a new credential" in refused[0]["note"]
    assert "may push is the person's to ask for" in refused[2]["note"]
    assert "would publish or change something under their name" in refused[3]["note"]
    assert "who and what may use the person's organisation" in refused[5]["note"]

    # The person is told: the session's alert, and an event for each credential misused.
    alert = wait_for(lambda: app.session(s["id"])["alert"], what="the session's alert")
    assert alert.endswith("the request was blocked"), alert
    events = app.client().get(f"/api/sessions/{s['id']}/events")["events"]
    misused = {e["payload"]["credential"] for e in events if e["kind"] == "credential_use"}
    assert misused == {"anthropic_oauth_token", "docker_token", "npm_token"}
