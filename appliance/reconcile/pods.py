"""What the reconciler does differently for a session on Kubernetes.

A pod's workspace is not on the host: :func:`pod_spec` turns the session into the pod
contract (:func:`appliance.contract.pod_workload_for`): the remote to clone, the session
branch and its start (the branch is made in the user's repository at the base first, as
for Docker: it is where the agent's work shows), the proxy address pods reach, and the
files the boot would write as root (the pod has no root), read-only from the Secret.

The branch comes back through the remote (:mod:`appliance.remotes`): :class:`RemoteTips`
asks the remote for each session's branch when the session changed (any hook event of the
agent writes its row) or every ``[kubernetes] sync_seconds``, and the plan's SyncBranch
fetches it (:func:`bring_in`). Both go through the proxy with the session's credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import trio

from appliance import remotes, repos
from appliance.agents.boot import boot_plan
from appliance.backends.base import CloneSpec, SpecFile, WorkloadSpec
from appliance.config import Settings
from appliance.config_kubernetes import KubeSettings
from appliance.contract import PodReach, pod_workload_for, proxy_url
from appliance.errors import ClauderonError, ConfigError
from appliance.github_client import proxy_ca
from appliance.placeholders import placeholder_env
from appliance.reconcile.deps import Deps
from appliance.sessions import BackendKind, Session
from appliance.tokens import Purpose, derive_token

log = logging.getLogger(__name__)

#: A session whose row changed is asked about again after this long, at the soonest.
MIN_SECONDS = 1.0


def on_kubernetes(s: Session) -> bool:
    return str(s.backend) == BackendKind.KUBERNETES


def _kube(settings: Settings) -> KubeSettings:
    if settings.kubernetes is None:
        raise ConfigError("the session is on Kubernetes but config.toml has no [kubernetes]")
    return settings.kubernetes


def host_proxy(deps: Deps, s: Session) -> str:
    """The proxy as the host reaches it, with the session's proxy credentials."""
    return proxy_url(s.id, derive_token(deps.key, s.id, Purpose.PROXY),
                     deps.settings.proxy_port, host="127.0.0.1")


def prepare_branch(s: Session, repo: repos.RepoInfo) -> tuple[str, str]:
    """The session branch in the user's repository (at the base the first time), and the
    remote pods clone: ``(remote url, start commit)``."""
    url = remotes.cluster_remote(repo)
    start = repos.branch_tip(repo, s.branch)
    if start is None:
        start = repos.resolve_ref(repo, s.base_ref)
        repos.create_branch(repo, s.branch, start)
    return url, start


async def pod_spec(deps: Deps, s: Session, repo: repos.RepoInfo) -> WorkloadSpec:
    kube = _kube(deps.settings)
    url, start = await trio.to_thread.run_sync(prepare_branch, s, repo)
    ca = proxy_ca(deps.settings)
    ca_pem = await trio.to_thread.run_sync(ca.read_bytes) if ca is not None else None
    placeholders = placeholder_env(deps.key, s.id)
    as_root = tuple(SpecFile(path=f.path, content=f.content, mode=int(f.mode, 8))
                    for f in boot_plan(s, placeholders,
                                       agents=deps.settings.custom_agents).files
                    if f.as_root)
    return pod_workload_for(
        s, host=deps.host,
        reach=PodReach(host=kube.proxy_address,
                       proxy_port=kube.proxy_port or deps.settings.proxy_port,
                       hook_port=kube.hook_port or deps.settings.hook_port),
        clone=CloneSpec(remote_url=url, branch=s.branch, start=start, base=s.base_ref),
        uid=kube.run_as_user, ca_pem=ca_pem, files=as_root,
        proxy_token=derive_token(deps.key, s.id, Purpose.PROXY),
        hook_token=derive_token(deps.key, s.id, Purpose.HOOK), placeholders=placeholders)


async def bring_in(deps: Deps, s: Session) -> None:
    """The session branch from the remote into the user's repository."""
    repo = await trio.to_thread.run_sync(repos.repo_facts, s.repo_path)
    url = await trio.to_thread.run_sync(remotes.cluster_remote, repo)
    await trio.to_thread.run_sync(lambda: remotes.fetch_branch(
        repo, url, s.branch, proxy=host_proxy(deps, s), ca=proxy_ca(deps.settings),
        scratch=deps.settings.shadows_dir / s.id,
        max_bytes=deps.settings.max_sync_mib << 20))


class RemoteTips:
    """Per session: when its branch was last asked of the remote, and for which row."""

    def __init__(self) -> None:
        self._asked: dict[str, tuple[float, str]] = {}
        self._tips: dict[str, str | None] = {}

    def read(self, deps: Deps, sessions: Iterable[Session], now: float) -> dict[str, str | None]:
        """Each session's branch on the remote; blocking (a worker thread's job)."""
        every = _kube(deps.settings).sync_seconds if deps.settings.kubernetes else 15.0
        for s in sessions:
            asked_at, row = self._asked.get(s.id, (float("-inf"), ""))
            stamp = str(s.updated_at)
            due = now - asked_at >= every or (stamp != row and now - asked_at >= MIN_SECONDS)
            if not due:
                continue
            self._asked[s.id] = (now, stamp)
            try:
                repo = repos.repo_facts(s.repo_path)
                url = remotes.cluster_remote(repo)
                self._tips[s.id] = remotes.remote_tip(
                    repo, url, s.branch, proxy=host_proxy(deps, s), ca=proxy_ca(deps.settings))
            except ClauderonError as exc:
                log.info("asking the remote for %s failed: %s", s.branch, exc.message,
                         extra={"session": s.id})
        return {s.id: self._tips.get(s.id) for s in sessions if s.id in self._tips}

    def forget(self, session_id: str) -> None:
        self._asked.pop(session_id, None)
        self._tips.pop(session_id, None)
