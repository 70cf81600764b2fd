"""An exec's deadline is its own: the health check's probe, held by the agent, ends at the
deadline its caller gave, not at the backend's longer default.

The attack: the probe asks the agent's tmux server (``tmux display``), which the agent
owns; an agent that puts a socket there that accepts and never answers holds the exec
(and one of the backend's few threads) as long as the exec may run. Real: the agent image,
a container running as the agent's uid whose own process is that socket, the real engine,
``DockerBackend`` and the Docker SDK. Nothing is timed: the exec is held by the agent's
socket for as long as the test runs, and the failure must name the caller's deadline.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import docker
import pytest
from docker.models.containers import Container

from appliance import checkup
from appliance.backends.docker import DockerBackend
from appliance.backends.docker_exec import EXEC_SECONDS
from appliance.errors import BackendError
from tests.conftest import AGENT_UID

#: The agent's process: its tmux server's socket, accepting every client and answering none.
HOLDER = """
import os, socket, sys
d = f"/tmp/tmux-{os.getuid()}"
os.makedirs(d, mode=0o700, exist_ok=True)
s = socket.socket(socket.AF_UNIX)
s.bind(d + "/default")
s.listen(8)
print("listening", flush=True)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    print("held", len(held), flush=True)
"""


@pytest.fixture
def agent(engine: docker.DockerClient, agent_image: str) -> Iterator[Container]:
    c = engine.containers.run(
        agent_image, entrypoint=["python3", "-c", HOLDER], user=f"{AGENT_UID}:{AGENT_UID}",
        detach=True, network_mode="none", name=f"t-exec-deadline-{uuid.uuid4().hex[:8]}",
        cap_drop=["ALL"], security_opt=["no-new-privileges"])
    try:
        lines = c.logs(stream=True, follow=True)
        try:
            for line in lines:
                if line.startswith(b"listening"):
                    break
        finally:
            lines.close()
        yield c
    finally:
        c.remove(force=True)


async def test_a_probe_the_agent_holds_fails_at_its_callers_deadline(
        agent: Container) -> None:
    backend = DockerBackend(url=None, instance=f"t-{uuid.uuid4().hex[:8]}")
    own = 1.0
    assert own < EXEC_SECONDS
    with pytest.raises(BackendError) as failed:
        await backend.exec(str(agent.id), ["sh", "-c", checkup.PROBE], seconds=own)
    assert "did not finish in the container within 1s" in failed.value.message, \
        failed.value.message
    agent.reload()
    assert agent.status == "running" and b"held 1" in agent.logs(), \
        "the probe was not the one the agent held"
