"""The firewall is the start's to put in place, not the create's: a hostile agent gains
nothing from the gap between them.

A create needs the sessions' network to exist (the engine refuses an unknown one) but runs
nothing in the container, so the Docker backend installs the firewall before each *start*
only (an install is several iptables runs, on every create's critical path otherwise).
The attack: the firewall is gone (flushed by a restart, an operator, anything) between the
services' start and a session's create. A container the backend created and started must
still find every port of the host but the services' closed; the positive control, the same
container started by the engine directly (no firewall), reaches the host's listener, so
the probe can tell the difference.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import trio

from appliance import firewall
from appliance.backends.base import LABEL_INSTANCE, LABEL_MANAGED, LABEL_SESSION, WorkloadSpec
from appliance.backends.docker import DockerBackend
from appliance.backends.docker_network import SessionNetwork
from appliance.config import load_settings
from appliance.config_values import DEFAULT_PIDS_LIMIT
from tests.support.engine import AGENT_IMAGE


@pytest.fixture
def network(tmp_path: Path, engine: docker.DockerClient, agent_image: str
            ) -> Iterator[SessionNetwork]:
    home = tmp_path / "home"
    home.mkdir()
    network = SessionNetwork.for_settings(load_settings({"CLAUDERON_HOME": str(home)}))
    assert network is not None
    try:
        yield network
    finally:
        for c in engine.containers.list(all=True, filters={
                "label": f"{LABEL_INSTANCE}={network.plan.instance}"}):
            c.remove(force=True)
        network.remove()


@pytest.fixture
def host_listener(network: SessionNetwork) -> Iterator[tuple[str, int]]:
    """An HTTP listener on the network's gateway, on a port that is not a service's."""
    gateway = network.ensure().gateway

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((gateway, 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gateway, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def spec(network: SessionNetwork) -> WorkloadSpec:
    sid = f"lockdown-{os.urandom(4).hex()}"
    return WorkloadSpec(
        session_id=sid, name=f"clauderon-{sid}", image=AGENT_IMAGE,
        labels={LABEL_MANAGED: "true", LABEL_INSTANCE: network.plan.instance,
                LABEL_SESSION: sid},
        env={}, mounts=(), workdir="/", user="1000:1000", command=("sleep", "300"),
        network=network.plan.name, pids_limit=DEFAULT_PIDS_LIMIT)


def agent_fetch(engine: docker.DockerClient, container_id: str, url: str) -> str:
    """What the agent (uid 1000) gets from ``url``: an HTTP status, or curl's failure."""
    code, out = engine.containers.get(container_id).exec_run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--connect-timeout", "3",
         "--max-time", "5", url], user="1000")
    return out.decode() if code == 0 else f"curl failed ({code})"


def chain_rules(network: SessionNetwork) -> list[str]:
    listing = subprocess.run(["iptables", "-w", "5", "-S"], capture_output=True, text=True,
                             check=True).stdout
    return [line for line in listing.splitlines() if network.plan.chain in line]


def test_a_container_the_backend_starts_has_the_firewall_even_if_it_was_gone_at_create(
    network: SessionNetwork, host_listener: tuple[str, int], engine: docker.DockerClient
) -> None:
    gateway, port = host_listener
    url = f"http://{gateway}:{port}/"
    backend = DockerBackend(url=None, instance=network.plan.instance, network=network)
    firewall.remove(network.plan)  # gone before the creates

    # Positive control: created by the backend, started by the engine alone (no firewall):
    # the agent reaches the host's listener, so the probe below could fail.
    bare = trio.run(backend.create, spec(network))
    assert chain_rules(network) == [], "a create installs no firewall (the start does)"
    engine.api.start(bare)
    assert agent_fetch(engine, bare, url) == "200"

    # The backend's own start: the firewall is back before the container runs.
    ours = trio.run(backend.create, spec(network))

    async def start() -> None:
        await backend.start(ours)

    trio.run(start)
    assert any(r.startswith("-A INPUT") for r in chain_rules(network))
    assert agent_fetch(engine, ours, url).startswith("curl failed")
    # And the control container, started before, is now behind the same firewall.
    assert agent_fetch(engine, bare, url).startswith("curl failed")
