"""Fixtures: the real proxy server in-process on port 0, fake upstreams on loopback.

Every upstream host the tests use is overridden (``[upstreams]``) to a fake on 127.0.0.1
and ``deny_unlisted`` is on, so no request can leave this machine. Sessions live in a real
SQLite store (``appliance.store``) and are read by the real ``StoreDirectory``.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import trio
import trustme
from proxy_fakes import FakeUpstream, GitServer, Listener

from appliance.audit import AuditLog
from appliance.config import Settings
from appliance.credentials import Credential, CredentialSet
from appliance.sessions import AccessMode, Session, new_session_id
from appliance.store import Store
from appliance.tokens import hash_token
from proxy.certs import CertStore, load_or_create_ca
from proxy.controls import Controls
from proxy.directory import StoreDirectory
from proxy.localaddrs import own_addresses
from proxy.proxy_config import ProxyConfig, Upstream
from proxy.server import serve
from proxy.state import ProxyState

SECRETS = {
    "anthropic_oauth_token": "sk-ant-oat01-REAL-OAUTH-CANARY-0123456789",
    "openai_api_key": "sk-REAL-OPENAI-CANARY-0123456789",
    "github_token": "ghp_REALGITHUBCANARY0123456789",
    "npm_token": "npm_REALNPMCANARY0123456789",
    "codex_access_token": "REAL-CODEX-ACCESS-CANARY",
    "codex_refresh_token": "REAL-CODEX-REFRESH-CANARY",
    "codex_account_id": "acct-1234",
    "pagerduty_token": "REAL-PAGERDUTY-CANARY",
}
#: What each test session's Codex holds for the tokens of the person's ChatGPT login (its
#: auth.json's dummies): the login goes only with it (``proxy/inject.py``).
CHATGPT_DUMMY = "DUMMY"
L = TypeVar("L", bound=Listener)


class Dummies(Controls):
    """No controls (as without a store), each session holding :data:`CHATGPT_DUMMY`."""

    def chatgpt(self, session_id: str) -> str:
        return CHATGPT_DUMMY
FAKE_HOSTS = ("api.anthropic.com", "api.openai.com", "api.github.com", "auth.openai.com",
              "chatgpt.com", "registry.npmjs.org", "api.pagerduty.com")


@dataclass
class Proxy:
    port: int
    ca_path: Path
    audit_path: Path
    state: ProxyState
    store: Store
    home: Path

    def url(self, session_id: str, token: str) -> str:
        return f"http://{session_id}:{token}@127.0.0.1:{self.port}"

    def add_session(self, name: str, mode: AccessMode = AccessMode.READ_WRITE) -> tuple[str, str]:
        return add_session(self.store, name, mode)


def client(proxy: Proxy, auth: tuple[str, str]) -> httpx.AsyncClient:
    """An HTTPS client of the world through the proxy as the session ``auth``."""
    ctx = ssl.create_default_context(cafile=str(proxy.ca_path))
    return httpx.AsyncClient(proxy=proxy.url(*auth), verify=ctx, timeout=20)


def override(proxy: Proxy, **changes: object) -> None:
    """Change the running proxy's configuration (``upstreams`` are merged in)."""
    upstreams = changes.pop("upstreams", {})
    assert isinstance(upstreams, dict)
    config = proxy.state.config
    proxy.state.config = replace(config, upstreams={**config.upstreams, **upstreams},
                                 **changes)  # type: ignore[arg-type]
    proxy.state.pool.reconfigure(proxy.state.config)


def route(proxy: Proxy, port: int, *hosts: str, **changes: object) -> None:
    """The proxy sends ``hosts``' requests to the upstream on loopback at ``port`` (and
    takes ``changes``, as :func:`override` does)."""
    at = Upstream(scheme="https", host="127.0.0.1", port=port)
    override(proxy, upstreams=dict.fromkeys(hosts, at), **changes)


async def serve_as(proxy: Proxy, nursery: trio.Nursery, upstream: L, *hosts: str,
                   **changes: object) -> L:
    """``upstream`` serving, and the proxy sending ``hosts``' requests to it (:func:`route`)."""
    await nursery.start(upstream.serve)
    route(proxy, upstream.port, *hosts, **changes)
    return upstream


#: The GitHub repositories a test's session is made on (its writes reach only these).
REPOS = ("o/r", "owner/repo", "owner/guarded", "owner/escaped", "owner/ro", "owner/big")


def add_session(store: Store, name: str, mode: AccessMode) -> tuple[str, str]:
    sid = new_session_id()
    token = f"tok-{name}-secret"
    now = datetime.now(UTC)
    store.insert_session(Session(
        id=sid, name=name, repo_path="/tmp/repo", worktree_path=f"/tmp/wt/{name}",
        branch=f"clauderon/{name}", base_ref="main", image="debian:bookworm-slim",
        access_mode=mode, proxy_token_hash=hash_token(token), created_at=now, updated_at=now,
        github_repos=REPOS,
    ))
    return sid, token


@pytest.fixture
def upstream_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    settings = Settings(home=tmp_path / "home")
    settings.ensure_layout()
    return settings.home


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    s = Store.open(home / "db.sqlite")
    yield s
    s.close()


@pytest.fixture
async def fake(nursery: trio.Nursery, upstream_ca: trustme.CA) -> FakeUpstream:
    up = FakeUpstream(upstream_ca)
    await nursery.start(up.serve)
    return up


@pytest.fixture
async def git_server(nursery: trio.Nursery, upstream_ca: trustme.CA, tmp_path: Path) -> GitServer:
    root = tmp_path / "srv"
    root.mkdir()
    server = GitServer(upstream_ca, root, SECRETS["github_token"])
    await nursery.start(server.serve)
    return server


@pytest.fixture
def tokens_written() -> list[dict[str, str | None]]:
    return []


@pytest.fixture
def proxy_hosts() -> tuple[str, ...]:
    """Where the proxy listens (a module that needs the bridge gateway overrides this)."""
    return ("127.0.0.1",)


@pytest.fixture
def secrets() -> dict[str, str]:
    """The person's credentials the proxy holds (a module that needs others overrides this)."""
    return SECRETS


@pytest.fixture
async def proxy(
    nursery: trio.Nursery, home: Path, store: Store, fake: FakeUpstream, git_server: GitServer,
    upstream_ca: trustme.CA, tokens_written: list[dict[str, str | None]],
    proxy_hosts: tuple[str, ...], secrets: dict[str, str],
) -> AsyncIterator[Proxy]:
    bundle = home / "upstream-ca.pem"
    upstream_ca.cert_pem.write_to_path(str(bundle))
    upstreams = {h: Upstream(scheme="https", host="127.0.0.1", port=fake.port) for h in FAKE_HOSTS}
    upstreams["github.com"] = Upstream(scheme="https", host="127.0.0.1", port=git_server.port)
    config = ProxyConfig(upstreams=upstreams, extra_ca_bundle=bundle, deny_unlisted=True)
    creds = CredentialSet.of(Credential(name=k, value=v, source="env") for k, v in secrets.items())
    certs = CertStore(load_or_create_ca(home / "proxy-ca.pem", home / "proxy-ca-key.pem"))
    with AuditLog(home / "audit.jsonl") as audit:
        state = ProxyState(
            config=config, creds=creds, certs=certs,
            directory=StoreDirectory(store, cache_seconds=0), audit=audit,
            forbidden=own_addresses(), token_sink=lambda t: tokens_written.append(dict(t)),
            controls=Dummies(),
        )
        bound = await nursery.start(functools.partial(serve, state, hosts=proxy_hosts, port=0))
        yield Proxy(port=bound.port, ca_path=home / "proxy-ca.pem", audit_path=home / "audit.jsonl",
                    state=state, store=store, home=home)
        state.stop()


@pytest.fixture
def upstream_ca_path(upstream_ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "upstream-ca-only.pem"
    upstream_ca.cert_pem.write_to_path(str(path))
    return path
