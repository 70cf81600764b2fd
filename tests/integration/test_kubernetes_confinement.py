"""A cluster whose network plugin does not enforce NetworkPolicies, against the FAKE API
server (the one test double: no real API server can run here; see tests/fakes/kube_api.py).

Such a cluster stores each session's policy and applies none of it: the pod reaches its
node's kubelet, the cloud's metadata service and the internet, past the proxy. The fake's
pods join a plain Docker bridge the test makes (no lockdown, as such a plugin gives), whose
gateway is the node, with a listener standing in for the kubelet on its port 10250. Beside
it, the positive control: on a network that holds pods in (the sessions' network, whose
lockdown stands in for an enforcing plugin) the same listener is not reached and the
session runs.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import docker
import pytest

from appliance.backends.docker_network import SessionNetwork
from tests.integration.test_kubernetes import run_as_agent
from tests.support.appliance import wait_for
from tests.support.kube import NAMESPACE, Kube, kube_appliance

pytestmark = pytest.mark.docker
KUBELET_PORT = 10250


def _kubelet(address: str) -> tuple[socket.socket, list[str]]:
    """A listener at the node's kubelet port that notes each connection."""
    listener = socket.create_server((address, KUBELET_PORT))
    seen: list[str] = []

    def serve() -> None:
        while True:
            try:
                conn, peer = listener.accept()
            except OSError:
                return
            seen.append(peer[0])
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener, seen


@pytest.fixture
def unenforced(tmp_path: Path, agent_image: str) -> Iterator[tuple[Kube, list[str]]]:
    with closing(docker.from_env()) as engine:
        net = engine.networks.create(f"clauderon-test-open-{uuid.uuid4().hex[:8]}",
                                     driver="bridge")
        try:
            net.reload()
            node = net.attrs["IPAM"]["Config"][0]["Gateway"]
            listener, seen = _kubelet(node)
            with closing(listener), kube_appliance(tmp_path, image=agent_image, agents=False,
                                                   pod_network=net.name, node_ip=node) as k:
                yield k, seen
        finally:
            net.remove()


def test_a_cluster_that_ignores_network_policies_runs_no_session(
        unenforced: tuple[Kube, list[str]]) -> None:
    kube, kubelet = unenforced
    s = kube.create("kopen")
    assert s["phase"] == "failed", s
    assert "does not enforce NetworkPolicies" in s["status_reason"], s
    assert kubelet, "the probe never reached the node: the test proves nothing"
    assert kube.names("pods") == []  # nothing of it is left running


def test_a_pod_the_cluster_will_not_delete_keeps_its_reason_and_goes_later(
        unenforced: tuple[Kube, list[str]]) -> None:
    """The pod with open egress is deleted when it fails its check; the control plane
    fails that delete. The person is still told why (not the delete's 500), and the pod,
    which reaches past the proxy, is deleted once the control plane answers again."""
    kube, kubelet = unenforced
    refuse = kube.state / "refuse-delete"
    refuse.write_text("pods\n")
    s = kube.create("kstuck", timeout=180)
    assert s["phase"] == "failed", s
    assert "does not enforce NetworkPolicies" in s["status_reason"], s
    assert kubelet, "the probe never reached the node: the test proves nothing"
    assert kube.names("pods") == ["clauderon-kstuck"]  # the refusal did hold it

    def told() -> list[dict[str, object]]:
        events = kube.app.client().get(f"/api/sessions/{s['id']}/events")["events"]
        return [e for e in events if e["kind"] == "action_failed"]
    # The failing delete is told in its events (once per reason), not in place of the reason.
    assert "500" in str(wait_for(told, what="the failing delete told")[0]["payload"])
    assert kube.app.session("kstuck")["status_reason"] == s["status_reason"]
    assert len(told()) == 1
    refuse.unlink()
    wait_for(lambda: kube.names("pods") == [], timeout=120,
             what="the pod with open egress deleted once the cluster deletes again")


@pytest.fixture
def enforced(tmp_path: Path, agent_image: str) -> Iterator[Kube]:
    with kube_appliance(tmp_path, image=agent_image, agents=False, node_at_gateway=True) as k:
        yield k


def test_a_cluster_that_holds_pods_in_runs_them(enforced: Kube) -> None:
    kube = enforced
    network = SessionNetwork.for_settings(kube.app.settings)
    assert network is not None
    listener, seen = _kubelet(network.ensure().gateway)  # the node, as the pods see it
    with closing(listener):
        kube.app.client().post("/api/sessions", {"repo_path": str(kube.repo),
                                                 "name": "kheld", "backend": "kubernetes"})
        s = kube.app.wait_phase("kheld", "running", "failed", timeout=120)
        assert s["phase"] == "running", s
        # The probe again, by hand, as the agent: the lockdown drops it, as it did the
        # appliance's.
        node = kube.core().read_namespaced_pod("clauderon-kheld", NAMESPACE).status.host_ip
        code, _ = run_as_agent(kube.container("clauderon-kheld"),
                               f"timeout 5 bash -c 'exec 3<>/dev/tcp/{node}/{KUBELET_PORT}'")
    assert code == 124 and seen == []
