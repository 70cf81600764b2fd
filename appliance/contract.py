"""The container contract (DESIGN.md), as one pure function: session -> WorkloadSpec.

Both backends run what this returns, so the rules live here once: the name and labels,
the session's workspace (its own repository, see :mod:`appliance.workspaces`) at
``/workspace`` and the user's object folders it borrows read-only at their host paths
(nothing else of the user's git directory), the CA certificate read-only, the uploads
folder, a non-root user, the proxy URL carrying the session's proxy credentials, CA trust
variables, the session's own **placeholder** credentials only (honeytokens, see
:mod:`appliance.placeholders`), the hook URL and token, and the host's git
identity.

Containment: the sessions' network only (:mod:`appliance.netplan`), with
``host.docker.internal`` naming its gateway, where the proxy and the hook endpoint listen;
no DNS beyond the container itself; every capability dropped, no-new-privileges; CPU,
memory and process limits (the session's own, else the appliance's defaults).

Nothing secret is mounted: not ``secrets/``, the database, the audit log, sockets, the CA
key or logs. Only what is listed below reaches the container.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from appliance.backends.base import (
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_SESSION,
    CloneSpec,
    Mount,
    SpecFile,
    WorkloadSpec,
)
from appliance.config_values import DEFAULT_CPU, DEFAULT_MEMORY, DEFAULT_PIDS_LIMIT
from appliance.netplan import CONTAINER_DNS, CONTAINER_DNS_OPTIONS
from appliance.sessions import Session

WORKSPACE = "/workspace"
CONTAINER_CA_PATH = "/etc/clauderon/proxy-ca.pem"
CONTAINER_UPLOADS = "/workspace-uploads"
CONTAINER_HOME = "/home/agent"
HOST_ALIAS = "host.docker.internal"



@dataclass(frozen=True, slots=True, kw_only=True)
class HostContext:
    """Facts about the host every session's workload shares."""

    instance: str
    #: The sessions' network and its gateway (the proxy and hook listeners' address).
    network: str
    gateway: str
    proxy_port: int
    hook_port: int
    ca_cert_path: str | None
    uploads_root: str
    git_name: str | None = None
    git_email: str | None = None
    #: Each session's agent home lives in ``<homes_root>/<session id>`` (kept across
    #: container recreation: transcripts, agent state); None: a throwaway tmpfs.
    homes_root: str | None = None
    #: Limits for a session that asked for none.
    default_cpu: float = DEFAULT_CPU
    default_memory: str = DEFAULT_MEMORY
    pids_limit: int = DEFAULT_PIDS_LIMIT


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoMounts:
    #: The user's object folders the workspace borrows (``objects/info/alternates``).
    borrowed_objects: tuple[str, ...]
    owner_uid: int
    owner_gid: int


def proxy_url(session_id: str, token: str, port: int, *, host: str = HOST_ALIAS) -> str:
    return f"http://{session_id}:{token}@{host}:{port}"


#: Where every TLS client in the image looks for the proxy's CA.
CA_ENV: dict[str, str] = {var: CONTAINER_CA_PATH for var in (
    "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO",
    "CODEX_CA_CERTIFICATE")}


def agent_env(session: Session, *, proxy: str, hook_url: str, hook_token: str,
              reach_host: str, placeholders: Mapping[str, str], git_name: str | None,
              git_email: str | None) -> dict[str, str]:
    """The environment of the contract, on either backend: the proxy (with the session's
    proxy credentials), the hook URL and token, the session's own placeholders only, the
    git identity."""
    no_proxy = f"localhost,127.0.0.1,{reach_host}"
    env: dict[str, str] = {
        "TERM": "xterm-256color",
        "HOME": CONTAINER_HOME,
        "CLAUDERON_SESSION_ID": session.id,
        "CLAUDERON_SESSION_NAME": session.name,
        "CLAUDERON_HOOK_URL": hook_url,
        "CLAUDERON_HOOK_TOKEN": hook_token,
        "HTTPS_PROXY": proxy,
        "HTTP_PROXY": proxy,
        "https_proxy": proxy,
        "http_proxy": proxy,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
        **placeholders,
    }
    if git_name:
        env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = git_name
    if git_email:
        env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = git_email
    return env


def workdir_for(session: Session) -> str:
    if session.subdirectory:
        return str(PurePosixPath(WORKSPACE) / session.subdirectory)
    return WORKSPACE


def workload_for(
    session: Session,
    *,
    host: HostContext,
    repo: RepoMounts,
    proxy_token: str,
    hook_token: str,
    placeholders: Mapping[str, str],
) -> WorkloadSpec:
    """The workload; ``placeholders`` are the session's own (``appliance.placeholders``)."""
    mounts = [
        Mount(source=session.worktree_path, target=WORKSPACE),
        # Further repositories: their own workspaces, on top of the primary's.
        *(Mount(source=e.worktree_path, target=f"{WORKSPACE}/{e.mount}")
          for e in session.extra_repos),
        *(Mount(source=d, target=d, read_only=True) for d in repo.borrowed_objects),
        Mount(source=f"{host.uploads_root}/{session.id}", target=CONTAINER_UPLOADS,
              read_only=True),
    ]
    env = agent_env(session, proxy=proxy_url(session.id, proxy_token, host.proxy_port),
                    hook_url=f"http://{HOST_ALIAS}:{host.hook_port}/api/hooks",
                    hook_token=hook_token, reach_host=HOST_ALIAS, placeholders=placeholders,
                    git_name=host.git_name, git_email=host.git_email)
    tmpfs = {CONTAINER_HOME: f"uid={repo.owner_uid},gid={repo.owner_gid},mode=0700"}
    if host.homes_root:
        mounts.append(Mount(source=f"{host.homes_root}/{session.id}", target=CONTAINER_HOME))
        tmpfs = {}
    if host.ca_cert_path:
        mounts.append(Mount(source=host.ca_cert_path, target=CONTAINER_CA_PATH, read_only=True))
        env.update(CA_ENV)
    return WorkloadSpec(
        **_common(session, host), env=env, mounts=tuple(mounts), tmpfs=tmpfs,
        user=f"{repo.owner_uid}:{repo.owner_gid}",
        # Not Docker's "host-gateway" (docker0's address): the sessions' network's own.
        extra_hosts={HOST_ALIAS: host.gateway}, network=host.network, dns=CONTAINER_DNS,
        dns_options=CONTAINER_DNS_OPTIONS, cap_drop=("ALL",), cap_add=(),
        no_new_privileges=True)


def _common(session: Session, host: HostContext) -> dict[str, Any]:
    """What a workload is on every backend: its names and labels, image, working folder
    and limits."""
    return {"session_id": session.id, "name": session.workload_name, "image": session.image,
            "labels": {LABEL_SESSION: session.id, LABEL_MANAGED: "true",
                       LABEL_INSTANCE: host.instance, LABEL_NAME: session.name},
            "workdir": workdir_for(session), "cpu": session.cpu or host.default_cpu,
            "memory": session.memory or host.default_memory, "pids_limit": host.pids_limit}


@dataclass(frozen=True, slots=True, kw_only=True)
class PodReach:
    """Where a pod reaches the proxy and the hook endpoint (``[kubernetes] proxy_address``)."""

    host: str
    proxy_port: int
    hook_port: int


def pod_workload_for(
    session: Session,
    *,
    host: HostContext,
    reach: PodReach,
    clone: CloneSpec,
    uid: int,
    ca_pem: bytes | None,
    files: tuple[SpecFile, ...],
    proxy_token: str,
    hook_token: str,
    placeholders: Mapping[str, str],
) -> WorkloadSpec:
    """The same contract for a pod: nothing from the host (the workspace is cloned in the
    cluster, the CA and the boot's read-only files come from the session's Secret), the
    proxy and the hook endpoint at ``reach``, the agent as ``uid``."""
    env = agent_env(session, proxy=proxy_url(session.id, proxy_token, reach.proxy_port,
                                             host=reach.host),
                    hook_url=f"http://{reach.host}:{reach.hook_port}/api/hooks",
                    hook_token=hook_token, reach_host=reach.host, placeholders=placeholders,
                    git_name=host.git_name, git_email=host.git_email)
    if ca_pem is not None:
        env.update(CA_ENV)
        files = (SpecFile(path=CONTAINER_CA_PATH, content=ca_pem), *files)
    return WorkloadSpec(**_common(session, host), env=env, mounts=(), user=f"{uid}:{uid}",
                        clone=clone, files=files)
