"""An appliance with its Kubernetes backend on the FAKE API server, and a git remote.

:func:`kube_appliance` runs, for one test: the fake API server
(:mod:`tests.fakes.kube_api`, the one test double here) as a process whose pods are Docker
containers on the appliance's sessions' network; a git smart-HTTP server over TLS that
accepts only the credential the proxy injects (``GitServer`` of the proxy tests), which the
proxy reaches as ``github.com``; the user's repository, a clone whose ``origin`` is
``https://github.com/owner/repo.git``; a kubeconfig for the official client; and the
appliance's services with a ``[kubernetes]`` table naming all of it. Pods reach the proxy
and the hook endpoint at the sessions' network gateway (``proxy_address``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import trustme
from kubernetes import client, config

from appliance.backends.docker_network import SessionNetwork
from tests.integration.proxy.proxy_fakes import GitServer
from tests.support.appliance import Appliance, wait_for

NAMESPACE = "sessions"
GIT_TOKEN = "ghp-REAL-GIT-CANARY-0123456789"
ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
       "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}


@dataclass
class Kube:
    app: Appliance
    repo: Path
    bare: Path
    git: GitServer
    kubeconfig: Path
    state: Path

    def core(self) -> Any:
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=cfg)
        return client.CoreV1Api(client.ApiClient(cfg))

    def networking(self) -> Any:
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=cfg)
        return client.NetworkingV1Api(client.ApiClient(cfg))

    def names(self, resource: str) -> list[str]:
        if resource == "networkpolicies":
            found = self.networking().list_namespaced_network_policy(NAMESPACE)
        else:
            method = {"pods": "pod", "persistentvolumeclaims": "persistent_volume_claim",
                      "secrets": "secret"}[resource]
            found = getattr(self.core(), f"list_namespaced_{method}")(NAMESPACE)
        return [o.metadata.name for o in found.items]

    def container(self, pod: str) -> str:
        """The Docker container that is the pod's agent container."""
        import docker

        found = docker.from_env().containers.list(
            filters={"label": f"fake-kube.pod={NAMESPACE}/{pod}", "name": "k8s_agent_"})
        assert found, f"no running container for the pod {pod}"
        return str(found[0].id)

    def create(self, name: str, timeout: float = 120, **body: Any) -> dict[str, Any]:
        """Session ``name`` of :attr:`repo` on the cluster, once it runs or failed."""
        self.app.client().post("/api/sessions", {"repo_path": str(self.repo), "name": name,
                                                 "backend": "kubernetes", **body})
        return self.app.wait_phase(name, "running", "failed", timeout=timeout)

    def policy_log(self, event: str) -> list[dict[str, Any]]:
        """What the fake API server recorded of pods and their NetworkPolicies."""
        log = self.state / "policy-log.jsonl"
        lines = log.read_text().splitlines() if log.exists() else []
        return [e for e in map(json.loads, lines) if e["event"] == event]

    def git_log(self, ref: str, where: Path | None = None) -> list[str]:
        path = str(where or self.repo)
        out = subprocess.run(["git", "-c", f"safe.directory={path}", "-C", path, "log",
                              "--format=%s", ref],
                             capture_output=True, text=True, check=False)
        return out.stdout.split("\n")[:-1] if out.returncode == 0 else []


def write_kubeconfig(path: Path, server: str, token: str, **cluster: Any) -> Path:
    """A kubeconfig at ``path``: one cluster at ``server`` (``cluster``: its TLS keys), a
    bearer ``token``, the namespace the appliance uses."""
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "appliance", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "appliance",
                                                  "namespace": NAMESPACE}}]}))
    return path


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, env={**os.environ, **ENV},
                   capture_output=True)


def _serve_in_thread(server: GitServer) -> tuple[threading.Thread, list[Any]]:
    """The trio server on a thread of its own (the test's calls block)."""
    handle: list[Any] = []
    started = threading.Event()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            handle.extend([trio.lowlevel.current_trio_token(), nursery.cancel_scope])
            await nursery.start(server.serve)
            started.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    started.wait(30)
    return thread, handle


@contextmanager
def kube_appliance(tmp: Path, *, image: str, agents: bool, proxy_lines: str = "",
                   ca_bundle: str = "", kube_extra: str = "",
                   env: dict[str, str] | None = None, host_view: bool = True,
                   pod_network: str | None = None, node_ip: str | None = None,
                   node_at_gateway: bool = False) -> Iterator[Kube]:
    """``host_view``: the appliance sees the volumes (``volume_root``); without it, files
    and transcripts are read inside the pods. ``pod_network``: the Docker network pods join
    instead of the sessions' (one without its lockdown: a cluster that does not enforce
    NetworkPolicies); ``node_ip``: the node's address in the pods' status
    (``node_at_gateway``: the sessions' network gateway)."""
    ca = trustme.CA()
    git = GitServer(ca, tmp / "remote", GIT_TOKEN)
    bare = tmp / "remote" / "owner" / "repo.git"
    bare.parent.mkdir(parents=True)
    _git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp)
    _git("config", "http.receivepack", "true", cwd=bare)
    repo = tmp / "repo"
    _git("init", "-q", "-b", "main", str(repo), cwd=tmp)
    (repo / "README.md").write_text("hello from the remote\n")
    _git("add", "-A", cwd=repo)
    _git("commit", "-qm", "initial", cwd=repo)
    _git("push", "-q", str(bare), "main", cwd=repo)
    _git("remote", "add", "origin", "https://github.com/owner/repo.git", cwd=repo)
    subprocess.run(["chown", "-R", "1000:1000", str(repo)], check=True)
    bundle = tmp / "upstreams-ca.pem"
    bundle.write_text(ca.cert_pem.bytes().decode() + ca_bundle)
    thread, handle = _serve_in_thread(git)
    home = tmp / "home"
    home.mkdir()
    (home / "proxy.toml").write_text(
        f'deny_unlisted = true\nextra_ca_bundle = "{bundle}"\n[upstreams]\n'
        f'"github.com" = "https://127.0.0.1:{git.port}"\n{proxy_lines}')
    app = Appliance(home, agents=agents, image=image,
                    env={"GITHUB_TOKEN": GIT_TOKEN, **(env or {})})
    fake: subprocess.Popen[bytes] | None = None
    log = open(tmp / "kube-api.log", "ab")  # noqa: SIM115
    try:
        network = SessionNetwork.for_settings(app.settings)
        assert network is not None
        gateway = network.ensure().gateway
        node_ip = gateway if node_at_gateway else node_ip
        state = tmp / "kube"
        fake = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.kube_api", str(state),
             pod_network or network.plan.name, f"clauderon.instance={app.instance}"],
            stdout=log, stderr=log, cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, **({"FAKE_KUBE_NODE_IP": node_ip} if node_ip else {})})
        ready = wait_for(lambda: (state / "ready.json").exists() and json.loads(
            (state / "ready.json").read_text()), what="the fake API server")
        kubeconfig = write_kubeconfig(tmp / "kubeconfig.yaml",
                                      f"https://127.0.0.1:{ready['port']}", ready["token"],
                                      **{"certificate-authority": ready["ca"]})
        with (home / "config.toml").open("a") as f:
            volumes = f'volume_root = "{state}/volumes/{NAMESPACE}"\n' if host_view else ""
            f.write(f'[kubernetes]\nkubeconfig = "{kubeconfig}"\nnamespace = "{NAMESPACE}"\n'
                    f'proxy_address = "{gateway}"\n{volumes}sync_seconds = 1\n{kube_extra}')
        app.start("proxy")
        wait_for(app.settings.ca_cert_path.exists, what="the proxy's CA")
        app.start("api", "reconciler")
        yield Kube(app=app, repo=repo, bare=bare, git=git, kubeconfig=kubeconfig, state=state)
    finally:
        app.cleanup()
        if fake is not None:
            fake.terminate()
            fake.wait(10)
        log.close()
        if handle:
            trio.from_thread.run_sync(handle[1].cancel, trio_token=handle[0])
        thread.join(10)
