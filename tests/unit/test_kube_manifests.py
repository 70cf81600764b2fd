"""The Kubernetes manifests as data (snapshot-checked), the pod reader, the config table.

The snapshot is ``snapshots/kube_session.json``; ``CLAUDERON_UPDATE_SNAPSHOTS=1`` rewrites it
(then read the diff: it is the contract every cluster gets).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from appliance.backends import kubernetes_manifests as m
from appliance.backends.base import CloneSpec, RunState, SpecFile
from appliance.backends.kubernetes_exec import exit_code, fed
from appliance.backends.kubernetes_lockdown import pod_lacks, policy_differs
from appliance.backends.kubernetes_state import run_state, start_error, start_step
from appliance.config_kubernetes import KubeSettings, parse
from appliance.contract import HostContext, PodReach, pod_workload_for
from appliance.errors import ConfigError
from appliance.placeholders import placeholder_env
from appliance.sessions import BackendKind, Session

SNAPSHOT = Path(__file__).parent / "snapshots" / "kube_session.json"
UPDATE = os.environ.get("CLAUDERON_UPDATE_SNAPSHOTS") == "1"
SID = "0b7e8f0e-1111-4222-8333-944445555666"
KUBE = KubeSettings(namespace="agents", storage_class="fast", pvc_size="20Gi",
                    image_pull_policy="Always", service_account="clauderon-session",
                    run_as_user=1000, node_selector={"disk": "ssd"},
                    tolerations=({"key": "agents", "operator": "Exists",
                                  "effect": "NoSchedule"},),
                    proxy_address="10.20.0.5")


def spec(kube: KubeSettings = KUBE) -> Any:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    s = Session(id=SID, name="flaky", repo_path="/src/app", worktree_path="/w/flaky",
                branch="clauderon/flaky", base_ref="main", image="registry.example/agent:1",
                cpu=1.5, memory="3g", proxy_token_hash="p" * 64, hook_token_hash="h" * 64,
                created_at=now, updated_at=now, backend=BackendKind.KUBERNETES)
    host = HostContext(instance="inst-1", network="n", gateway="g", proxy_port=3128,
                       hook_port=3031, ca_cert_path=None, uploads_root="/u",
                       git_name="Dev", git_email="dev@example.invalid")
    return pod_workload_for(
        s, host=host, reach=PodReach(host=kube.proxy_address, proxy_port=3128, hook_port=3031),
        clone=CloneSpec(remote_url="https://github.com/owner/app.git", branch=s.branch,
                        start="a" * 40, base="main"),
        uid=1000, ca_pem=b"-----BEGIN CERTIFICATE-----\n", files=(
            SpecFile(path="/etc/clauderon/hooks/send_status.sh", content=b"#!/bin/sh\n",
                     mode=0o755),
            SpecFile(path="/etc/claude-code/managed-settings.json", content=b"{}")),
        proxy_token="PROXYTOKEN", hook_token="HOOKTOKEN",
        placeholders=placeholder_env(b"k" * 32, s.id))


def rendered(kube: KubeSettings = KUBE) -> dict[str, Any]:
    w = spec(kube)
    policy = m.network_policy(w, kube, proxy_port=3128, hook_port=3031)
    return {"pod": m.pod(w, kube), "pvc": m.pvc(w, kube),
            "secret": m.secret(w, kube), "networkpolicy": policy}


def test_the_session_objects_match_the_snapshot() -> None:
    # The version that made the pod names a digest of the module: any change changes it.
    text = json.dumps(rendered(), indent=2, sort_keys=True).replace(m.MADE_BY, "MADE_BY") + "\n"
    if UPDATE:
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text(), "run with CLAUDERON_UPDATE_SNAPSHOTS=1, read the diff"


def test_the_pod_is_hardened_and_holds_no_secret() -> None:
    pod = rendered()["pod"]
    spec_ = pod["spec"]
    assert spec_["automountServiceAccountToken"] is False
    assert spec_["securityContext"]["runAsNonRoot"] is True
    assert spec_["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in spec_["initContainers"] + spec_["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsUser"] == 1000 and sc["runAsNonRoot"] is True
        assert c["resources"]["limits"] == {"cpu": "1500m", "memory": str(3 * 2**30)}
        assert c["resources"]["requests"] == c["resources"]["limits"]
    text = json.dumps(pod)
    assert "PROXYTOKEN" not in text and "HOOKTOKEN" not in text
    assert not any(v.get("hostPath") for v in spec_["volumes"])
    assert spec_["nodeSelector"] == {"disk": "ssd"}
    assert spec_["serviceAccountName"] == "clauderon-session"
    assert spec_["dnsPolicy"] == "None"  # an IP: nothing to resolve
    pvc = rendered()["pvc"]
    assert "PROXYTOKEN" not in json.dumps(pvc)
    assert json.loads(pvc["metadata"]["annotations"][m.ANNOTATION_POD]) == pod
    for key in ("hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace",
                "enableServiceLinks"):
        assert spec_[key] is False, key
    # The policy is made again, from the claim's labels, before each pod.
    assert m.policy_for(pvc["metadata"]["name"], pvc["metadata"]["labels"], KUBE,
                        proxy_port=3128, hook_port=3031) == rendered()["networkpolicy"]


def _stale(pod: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``pod`` as an older version might have recorded it: ``changes`` to its spec (None:
    the key absent), each container's security context left out."""
    old = json.loads(json.dumps(pod))
    for key, value in changes.items():
        if value is None:
            old["spec"].pop(key, None)
        else:
            old["spec"][key] = value
    for c in old["spec"]["initContainers"] + old["spec"]["containers"]:
        c.pop("securityContext")
    return old


@pytest.mark.parametrize("changes", [
    {},
    {"securityContext": None, "automountServiceAccountToken": None},
    {"automountServiceAccountToken": True, "enableServiceLinks": True},
    {"hostNetwork": True, "hostPID": True, "hostIPC": True, "shareProcessNamespace": True},
    {"dnsPolicy": "ClusterFirst", "dnsConfig": None},
    {"securityContext": {"runAsUser": 0}},
], ids=["containers", "no-pod-context", "token", "host", "cluster-dns", "root"])
def test_a_pod_recorded_by_an_older_version_gets_todays_containment(
        changes: dict[str, Any]) -> None:
    pod = rendered()["pod"]
    assert m.contained(_stale(pod, **changes), KUBE) == pod
    assert m.contained(pod, KUBE) == pod  # today's record is kept as it is


def _admitted(pod: dict[str, Any]) -> dict[str, Any]:
    """``pod`` as a cluster's admission webhooks and defaults hand it back: a sidecar with
    no security context, more capabilities dropped, an option, labels and fields of theirs."""
    out = json.loads(json.dumps(pod))
    spec_ = out["spec"]
    spec_["containers"].append({"name": "istio-proxy", "image": "proxy:1"})
    spec_["containers"][0]["securityContext"]["capabilities"]["drop"].append("NET_RAW")
    spec_["dnsConfig"]["options"].append({"name": "ndots", "value": "2"})
    spec_.update(schedulerName="default-scheduler", priority=0, nodeName="node-1",
                 tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}])
    out["metadata"].setdefault("labels", {})["sidecar.istio.io/status"] = "injected"
    return out


@pytest.mark.parametrize(("changes", "lacks"), [
    ({}, ["a security context"]),
    ({"securityContext": None, "automountServiceAccountToken": None},
     ["a security context", "no Kubernetes API token"]),
    ({"automountServiceAccountToken": True, "enableServiceLinks": True},
     ["a security context", "no Kubernetes API token", "no service links"]),
    ({"hostNetwork": True}, ["a security context", "nothing of the node's"]),
    ({"dnsPolicy": "ClusterFirst", "dnsConfig": None}, ["a security context", "no cluster DNS"]),
], ids=["containers", "no-pod-context", "token", "host", "cluster-dns"])
def test_a_running_pod_an_older_version_made_is_found(changes: dict[str, Any],
                                                      lacks: list[str]) -> None:
    """What a pod made before a rule lacks (the reconciler makes it again); today's pod,
    also as a cluster's webhooks change it, lacks nothing (no remake in a loop)."""
    pod = rendered()["pod"]
    said = pod_lacks(_stale(pod, **changes))
    assert len(said) == len(lacks) and all(s.startswith(w) for s, w in zip(said, lacks,
                                                                           strict=True)), said
    assert pod_lacks(pod) == []
    assert pod_lacks(_admitted(pod)) == []
    assert pod_lacks(m.contained(_stale(pod, **changes), KUBE)) == []


@pytest.mark.parametrize("change", [
    {"privileged": True}, {"allowPrivilegeEscalation": True},
    {"capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}}, {"runAsUser": 0},
    {"capabilities": {"drop": ["NET_RAW"]}}, {"seccompProfile": {"type": "Unconfined"}},
])
def test_one_container_without_a_rule_is_found(change: dict[str, Any]) -> None:
    pod = json.loads(json.dumps(rendered()["pod"]))
    pod["spec"]["initContainers"][0]["securityContext"].update(change)
    assert [s.split(" (")[0] for s in pod_lacks(pod)] == ["a security context"]


@pytest.mark.parametrize(("edit", "said"), [
    (lambda p: p["spec"]["egress"].append({"ports": [{"protocol": "UDP", "port": 53}]}),
     "not this version's"),
    (lambda p: p["spec"]["egress"].append({}), "not this version's"),
    (lambda p: p["spec"].update(policyTypes=["Ingress"]), "not this version's"),
    (lambda p: p["spec"].update(ingress=[{}]), "not this version's"),
    (lambda p: p["spec"]["podSelector"].update(matchLabels={"other": "x"}),
     "not this version's"),
    (lambda p: p["spec"]["egress"][0]["to"][0]["ipBlock"].update(cidr="0.0.0.0/0"),
     "not this version's"),
    # What the API's defaults and a webhook change is today's still.
    (lambda p: p["spec"].pop("ingress"), ""),
    (lambda p: [q.pop("protocol") for q in p["spec"]["egress"][0]["ports"]], ""),
    (lambda p: p["spec"]["egress"][0]["ports"].reverse(), ""),
    (lambda p: p["metadata"].update(annotations={"webhook": "seen"}, generation=2), ""),
])
def test_a_policy_an_older_version_wrote_is_found(edit: Any, said: str) -> None:
    wanted = rendered()["networkpolicy"]
    found = json.loads(json.dumps(wanted))
    edit(found)
    assert (said in policy_differs(found, wanted)) if said else \
        policy_differs(found, wanted) == ""
    assert policy_differs(None, wanted) == "its NetworkPolicy is missing"
    assert policy_differs(wanted, wanted) == ""


def test_the_policy_allows_the_proxy_and_hook_only() -> None:
    policy = rendered()["networkpolicy"]["spec"]
    assert policy["ingress"] == [] and policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["egress"] == [{"to": [{"ipBlock": {"cidr": "10.20.0.5/32"}}], "ports": [
        {"protocol": "TCP", "port": 3031}, {"protocol": "TCP", "port": 3128}]}]
    by_name = replace(KUBE, proxy_address="clauderon.agents.svc",
                      appliance_labels={"app": "clauderon"})
    named = rendered(by_name)
    egress = named["networkpolicy"]["spec"]["egress"]
    assert egress == [{"to": [{"podSelector": {"matchLabels": {"app": "clauderon"}}}],
                       "ports": [{"protocol": "TCP", "port": 3031},
                                 {"protocol": "TCP", "port": 3128}]}]


BY_NAME = replace(KUBE, proxy_address="clauderon.agents.svc.cluster.local",
                  appliance_labels={"app": "clauderon"})


@pytest.mark.parametrize("kube", [KUBE, BY_NAME], ids=["by-address", "by-name"])
def test_a_pod_has_no_resolver_to_tunnel_through(kube: KubeSettings) -> None:
    """The hostile agent's DNS tunnel: queries for names under a domain it controls, which
    the cluster resolver forwards to the internet, past the proxy and its audit. The policy
    allows no DNS at all, and the pod's only nameserver is its own loopback, whether the
    proxy is an address or the appliance's Service name."""
    objects = rendered(kube)
    for rule in objects["networkpolicy"]["spec"]["egress"]:
        assert {p["port"] for p in rule["ports"]} == {3031, 3128}, rule
        assert all("namespaceSelector" not in peer for peer in rule["to"]), rule
    spec_ = objects["pod"]["spec"]
    assert spec_["dnsPolicy"] == "None"
    assert spec_["dnsConfig"]["nameservers"] == ["127.0.0.1"]


@pytest.mark.parametrize(("addresses", "aliases"), [
    (["10.96.0.7"], [{"ip": "10.96.0.7", "hostnames": ["clauderon.agents.svc"]}]),
    (["fd00::7", "10.96.0.7", "10.96.0.7"],
     [{"ip": "10.96.0.7", "hostnames": ["clauderon.agents.svc"]},
      {"ip": "fd00::7", "hostnames": ["clauderon.agents.svc"]}]),
])
def test_the_service_name_is_pinned_in_the_pod(addresses: list[str],
                                                aliases: list[dict[str, Any]]) -> None:
    template = rendered(BY_NAME)["pod"]
    pod = m.pinned(template, "clauderon.agents.svc", addresses)
    assert pod["spec"]["hostAliases"] == aliases
    assert "hostAliases" not in template["spec"]  # the record is not changed
    with pytest.raises(ValueError, match="no address"):
        m.pinned(template, "clauderon.agents.svc", [])


def _pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"image": "i"}]},
            "status": status}


def test_reading_pods() -> None:
    assert run_state(_pod(phase="Pending"))[0] is RunState.RUNNING
    assert run_state(_pod(phase="Succeeded"))[0] is RunState.STOPPED
    gone = _pod(phase="Running")
    gone["metadata"]["deletionTimestamp"] = "x"
    assert run_state(gone)[0] is RunState.DEAD
    stuck = _pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                               "reason": "Unschedulable", "message": "0/3"}])
    assert start_step(stuck)[0] == "pod"
    err = start_error(stuck, image="i")
    assert err is not None and err.retryable and "0/3" in err.message
    pull = _pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "True"}],
                initContainerStatuses=[{"name": "clone", "state": {"waiting": {
                    "reason": "ImagePullBackOff", "message": "nope"}}}])
    err = start_error(pull, image="i")
    assert err is not None and not err.retryable and err.field == "image"
    clone = _pod(phase="Failed", initContainerStatuses=[{"name": "clone", "state": {
        "terminated": {"exitCode": 1, "message": "not on the remote"}}}])
    err = start_error(clone, image="i")
    assert err is not None and "could not be cloned: not on the remote" in err.message


def test_exec_helpers() -> None:
    assert fed(["cat"], b"abc") == ["sh", "-c", 'head -c "$0" | "$@"', "3", "cat"]
    assert fed(["true"], None) == ["true"]
    assert exit_code('{"metadata":{},"status":"Success"}') == (0, "")
    failure = ('{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":'
               '[{"reason":"ExitCode","message":"7"}]}}')
    assert exit_code(failure) == (7, "")
    assert exit_code('{"status":"Failure","message":"not found"}')[0] == 126


@pytest.mark.parametrize(("table", "said"), [
    ({}, "proxy_address is required"),
    ({"proxy_address": "svc.local"}, "needs appliance_labels"),
    ({"proxy_address": "10.0.0.1", "pvc_size": "lots"}, "pvc_size"),
    ({"proxy_address": "10.0.0.1", "image_pull_policy": "Sometimes"}, "image_pull_policy"),
    ({"proxy_address": "10.0.0.1", "namespace": "Bad_NS"}, "namespace"),
    ({"proxy_address": "10.0.0.1", "in_cluster": True, "context": "x"}, "in_cluster"),
    ({"proxy_address": "10.0.0.1", "nodeselector": {}}, "unknown key 'nodeselector'"),
    ({"proxy_address": "10.0.0.1", "tolerations": [{"keyy": "a"}]}, "unknown key 'keyy'"),
])
def test_config_errors_name_the_key(table: dict[str, Any], said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(table, "/h/config.toml")
    assert said in caught.value.message and "[kubernetes]" in caught.value.message


def test_config_parses() -> None:
    kube = parse({"proxy_address": "10.0.0.1", "node_selector": {"disk": "ssd"},
                  "tolerations": [{"key": "a", "operator": "Exists"}], "pvc_size": "5Gi"},
                 "/h/config.toml")
    assert kube.proxy_is_ip and kube.pvc_size == "5Gi" and kube.namespace == "clauderon"



@pytest.mark.parametrize(("code", "said"), [
    (77, "this cluster does not enforce NetworkPolicies"),  # it reached the kubelet
    (1, "the workspace could not be cloned"),
])
def test_a_clone_that_reached_its_kubelet_is_unconfined(code: int, said: str) -> None:
    clone = rendered()["pod"]["spec"]["initContainers"][0]
    env = {e["name"]: e for e in clone["env"]}
    assert env["CLAUDERON_NODE"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert env["CLAUDERON_UNCONFINED"]["value"] == str(m.UNCONFINED_EXIT) == "77"
    script = clone["command"][-1]
    assert script.index("CLAUDERON_KUBELET_PORT") < script.index("git clone")  # first
    pod = _pod(phase="Failed", hostIP="10.0.0.4", initContainerStatuses=[{
        "name": "clone", "state": {"terminated": {"exitCode": code, "message": "x"}}}])
    err = start_error(pod, image="i")
    assert err is not None and not err.retryable and said in err.message
    if code == 77:
        assert "10.0.0.4:10250" in err.message


async def test_the_appliance_resolves_the_name_it_pins() -> None:
    """The name is resolved by the appliance, with its resolver, at each start (``localhost``
    here: no test sends a query off this machine)."""
    from appliance.backends import kubernetes_client

    assert "127.0.0.1" in await kubernetes_client.resolve("localhost", within=10)
