"""The container contract: what a session's workload is given, and what it never sees."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance.backends.base import (
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_SESSION,
    WorkloadSpec,
)
from appliance.config import Settings
from appliance.contract import (
    CONTAINER_CA_PATH,
    CONTAINER_UPLOADS,
    WORKSPACE,
    HostContext,
    RepoMounts,
    workload_for,
)
from appliance.placeholders import placeholder_env
from appliance.sessions import Session, SessionId

SID = SessionId("5e55f00d-0000-4000-8000-00000000abcd")
PROXY_TOKEN = "f" * 64
KEY = b"instance-key-for-tests-0123456789"
HOOK_TOKEN = "e" * 64
CA_VARS = ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO",
           "CODEX_CA_CERTIFICATE")
#: Real-looking credentials present on the host while the spec is built.
REAL_SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-REALREALREALREALREALREALREAL",
    "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-REALREALREALREALREALREAL",
    "OPENAI_API_KEY": "sk-proj-REALREALREALREALREALREALREALREAL",
    "GH_TOKEN": "ghp_REALREALREALREALREALREALREALREALREAL",
    "GITHUB_TOKEN": "ghp_REALREALREALREALREALREALREALREALREAL",
    "NPM_TOKEN": "npm_REALREALREALREALREALREALREALREALREAL",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(home=tmp_path / "home")
    s.ensure_layout()
    s.ca_cert_path.write_text("-----BEGIN CERTIFICATE-----\n")
    s.ca_key_path.write_text("-----BEGIN PRIVATE KEY-----\n")
    s.db_path.write_text("")
    s.audit_path.write_text("")
    s.instance_secret_path.write_text("00" * 32)
    for name, value in REAL_SECRETS.items():
        (s.secrets_dir / name.lower()).write_text(value)
    return s


def make_session(settings: Settings, **changes: object) -> Session:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    s = Session(
        id=SID, name="flaky", repo_path="/src/app",
        worktree_path=str(settings.worktrees_dir / "flaky"), branch="clauderon/flaky",
        base_ref="main", image="clauderon-agent:dev", cpu=2.0, memory="4g",
        proxy_token_hash="p" * 64, hook_token_hash="h" * 64, created_at=now, updated_at=now,
    )
    return replace(s, **changes)  # type: ignore[arg-type]


def host_for(settings: Settings, *, ca: bool = True) -> HostContext:
    return HostContext(
        instance="inst-1", network="clauderon-inst-1", gateway="172.30.0.1",
        proxy_port=3128, hook_port=3031,
        ca_cert_path=str(settings.ca_cert_path) if ca else None,
        uploads_root=str(settings.uploads_dir), git_name="Ada", git_email="ada@example.org",
    )


REPO = RepoMounts(borrowed_objects=("/src/app/.git/objects", "/src/shared/objects"),
                  owner_uid=1000, owner_gid=1001)


def spec_for(settings: Settings, *, ca: bool = True, **changes: object) -> WorkloadSpec:
    return workload_for(make_session(settings, **changes), host=host_for(settings, ca=ca),
                        repo=REPO, proxy_token=PROXY_TOKEN, hook_token=HOOK_TOKEN,
                        placeholders=placeholder_env(KEY, SID))


def mounts_by_target(spec: WorkloadSpec) -> dict[str, tuple[str, bool]]:
    return {m.target: (m.source, m.read_only) for m in spec.mounts}


def test_name_image_and_labels(settings: Settings) -> None:
    spec = spec_for(settings)
    assert spec.session_id == SID
    # Docker's: by id, never by the name (the engine's DNS tells neighbours every name).
    assert spec.name == f"clauderon-{SID}"
    assert spec.image == "clauderon-agent:dev"
    assert dict(spec.labels) == {
        LABEL_SESSION: SID, LABEL_MANAGED: "true", LABEL_INSTANCE: "inst-1",
        LABEL_NAME: "flaky",
    }


def test_workspace_and_borrowed_objects_read_only(settings: Settings) -> None:
    m = mounts_by_target(spec_for(settings))
    assert m[WORKSPACE] == (str(settings.worktrees_dir / "flaky"), False)
    # The workspace's alternates name the user's object folders by host path: the same path
    # inside, read-only; nothing else of the user's git directory is there.
    assert m["/src/app/.git/objects"] == ("/src/app/.git/objects", True)
    assert m["/src/shared/objects"] == ("/src/shared/objects", True)
    assert not any(t.startswith("/src/app/.git") and not t.endswith("objects") for t in m)


def test_uploads_read_only(settings: Settings) -> None:
    m = mounts_by_target(spec_for(settings))
    assert m[CONTAINER_UPLOADS] == (str(settings.uploads_dir / SID), True)


def test_ca_mounted_read_only_with_trust_variables(settings: Settings) -> None:
    spec = spec_for(settings)
    assert mounts_by_target(spec)[CONTAINER_CA_PATH] == (str(settings.ca_cert_path), True)
    for var in CA_VARS:
        assert spec.env[var] == CONTAINER_CA_PATH


def test_no_ca_no_mount_no_variables(settings: Settings) -> None:
    spec = spec_for(settings, ca=False)
    assert CONTAINER_CA_PATH not in mounts_by_target(spec)
    for var in CA_VARS:
        assert var not in spec.env
    assert len(spec.mounts) == 4  # workspace, two borrowed object folders, uploads


def test_only_placeholder_credentials(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REAL_SECRETS.items():
        monkeypatch.setenv(name, value)
    spec = spec_for(settings)
    for name, placeholder in placeholder_env(KEY, SID).items():
        assert spec.env[name] == placeholder
        assert "clauderon" in placeholder or placeholder[:4] in ("ghp_", "npm_")
    # Another session's placeholders are its own (honeytokens tell sessions apart).
    other = placeholder_env(KEY, "another-session")
    assert not set(other.values()) & set(spec.env.values())
    blob = repr(spec)
    for value in REAL_SECRETS.values():
        assert value not in blob
    for name in REAL_SECRETS:
        assert os.environ[name] not in spec.env.values()


def test_proxy_carries_session_id_and_token(settings: Settings) -> None:
    env = spec_for(settings).env
    expected = f"http://{SID}:{PROXY_TOKEN}@host.docker.internal:3128"
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        assert env[var] == expected
    for var in ("NO_PROXY", "no_proxy"):
        assert set(env[var].split(",")) == {"localhost", "127.0.0.1", "host.docker.internal"}
    assert env["CLAUDERON_HOOK_URL"] == "http://host.docker.internal:3031/api/hooks"
    assert env["CLAUDERON_HOOK_TOKEN"] == HOOK_TOKEN
    assert env["CLAUDERON_SESSION_ID"] == SID
    assert env["CLAUDERON_SESSION_NAME"] == "flaky"


def test_tokens_appear_only_where_they_belong(settings: Settings) -> None:
    env = spec_for(settings).env
    assert {k for k, v in env.items() if PROXY_TOKEN in v} == {
        "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"}
    assert {k for k, v in env.items() if HOOK_TOKEN in v} == {"CLAUDERON_HOOK_TOKEN"}


def test_user_gateway_limits_home(settings: Settings) -> None:
    spec = spec_for(settings)
    assert spec.user == "1000:1001"
    # The sessions' network's own gateway, not Docker's host-gateway (docker0).
    assert dict(spec.extra_hosts) == {"host.docker.internal": "172.30.0.1"}
    assert spec.cpu == 2.0
    assert spec.memory == "4g"
    assert spec.env["HOME"] == "/home/agent"
    assert "uid=1000" in spec.tmpfs["/home/agent"]
    assert "gid=1001" in spec.tmpfs["/home/agent"]
    assert spec.env["GIT_AUTHOR_NAME"] == spec.env["GIT_COMMITTER_NAME"] == "Ada"
    assert spec.env["GIT_AUTHOR_EMAIL"] == "ada@example.org"


def test_a_session_without_limits_gets_the_defaults(settings: Settings) -> None:
    spec = spec_for(settings, cpu=None, memory=None)
    assert (spec.cpu, spec.memory, spec.pids_limit) == (2.0, "4g", 1024)
    host = replace(host_for(settings), default_cpu=0.5, default_memory="1g", pids_limit=99)
    spec = workload_for(make_session(settings, cpu=None, memory=None), host=host, repo=REPO,
                        proxy_token=PROXY_TOKEN, hook_token=HOOK_TOKEN,
                        placeholders=placeholder_env(KEY, SID))
    assert (spec.cpu, spec.memory, spec.pids_limit) == (0.5, "1g", 99)


def test_contained_network_no_dns_no_privileges(settings: Settings) -> None:
    spec = spec_for(settings)
    assert spec.network == "clauderon-inst-1"
    assert spec.dns == ("127.0.0.1",)  # the container's own loopback: no name leaves it
    assert spec.cap_drop == ("ALL",) and spec.cap_add == ()
    assert spec.no_new_privileges is True
    assert spec.pids_limit == 1024
    # The proxy and the hook endpoint are reached by the alias naming the gateway.
    assert "@host.docker.internal:3128" in spec.env["HTTPS_PROXY"]
    assert spec.env["CLAUDERON_HOOK_URL"].startswith("http://host.docker.internal:3031/")


def test_a_spec_that_says_nothing_is_locked_down() -> None:
    bare = WorkloadSpec(session_id="s", name="n", image="i", labels={}, env={}, mounts=(),
                        workdir="/", user="1:1")
    assert bare.network is None  # the backend gives it no network at all
    assert bare.cap_drop == ("ALL",) and bare.no_new_privileges


def test_workdir_follows_the_subdirectory(settings: Settings) -> None:
    assert spec_for(settings).workdir == WORKSPACE
    assert spec_for(settings, subdirectory="pkg/web").workdir == "/workspace/pkg/web"


def test_nothing_secret_is_mounted(settings: Settings) -> None:
    spec = spec_for(settings)
    forbidden = [settings.secrets_dir, settings.db_path, settings.audit_path,
                 settings.socket_path, settings.ca_key_path, settings.logs_dir,
                 settings.instance_secret_path, settings.config_path,
                 settings.proxy_config_path]
    for mount in spec.mounts:
        source = Path(mount.source)
        assert source != settings.home
        for path in forbidden:
            assert source != path, mount
            assert path not in source.parents, mount  # not inside it
            assert source not in path.parents, mount  # not a folder holding it
    sources = {m.source for m in spec.mounts}
    assert sources == {str(settings.worktrees_dir / "flaky"), "/src/app/.git/objects",
                       "/src/shared/objects", str(settings.uploads_dir / SID),
                       str(settings.ca_cert_path)}


def test_agent_home_persists_in_the_sessions_own_folder(settings: Settings) -> None:
    host = replace(host_for(settings), homes_root=str(settings.homes_dir))
    spec = workload_for(make_session(settings), host=host, repo=REPO, proxy_token=PROXY_TOKEN,
                        hook_token=HOOK_TOKEN, placeholders=placeholder_env(KEY, SID))
    assert mounts_by_target(spec)["/home/agent"] == (f"{settings.homes_dir}/{SID}", False)
    assert dict(spec.tmpfs) == {}
