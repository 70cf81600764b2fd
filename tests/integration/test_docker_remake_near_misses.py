"""Near misses of the reconciler's look at a running container (``docker_spec.lacks``):
what a container gains after it was judged, or has that its shape alone allows.

A container joined to a second network after it was made (``docker network connect``, by
hand or by a tool on the host) has a way out that is neither the proxy nor the hook
endpoint: the agent reaches whatever stands on that network, past the sessions' firewall.
Only ``HostConfig.NetworkMode`` was compared, and a running container was judged once,
so the join was never seen. Played for real: a session is judged clean by a pass, then
joined to a network the test makes; from inside, as the agent (uid 1000), a second
interface on it; the reconciler makes the container again on the sessions' network alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.types
import pytest

from appliance.backends.docker_spec import lacks
from tests.integration.test_docker_remake_judged import copied, today
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance, wait_for


@pytest.fixture
def stray(engine: docker.DockerClient) -> Iterator[Any]:
    """A network of the test's own (internal: nothing on it leaves this machine)."""
    net = engine.networks.create(f"clauderon-test-stray-{uuid.uuid4().hex[:8]}",
                                 driver="bridge", internal=True)
    try:
        yield net
    finally:
        net.reload()
        for c in net.containers:
            net.disconnect(c, force=True)
        net.remove()


def interfaces(app: Appliance, session: dict[str, Any]) -> list[str]:
    """The network interfaces the agent (uid 1000) sees, loopback aside."""
    _, out = in_container(app, session, "ls /sys/class/net")
    return sorted(n for n in out.split() if n != "lo")


def test_a_container_joined_to_a_second_network_after_its_judgement_is_made_again(
        appliance: Appliance, repo: Path, engine: docker.DockerClient, stray: Any) -> None:
    s = create(appliance, repo, "joined")
    alone = interfaces(appliance, s)
    assert len(alone) == 1, alone
    # The pass that plans the next session's create lists (and judges) this running one.
    create(appliance, repo, "later")
    stray.connect(s["backend_id"])
    both = interfaces(appliance, s)
    assert len(both) == 2, both  # the agent is on the stray network too

    def remade() -> dict[str, Any] | None:
        now = appliance.session("joined")
        ids = [c.id for c in appliance.containers(s["id"])]
        done = now["phase"] == "running" and s["backend_id"] not in ids \
            and now["backend_id"] in ids
        return now if done else None

    now = wait_for(remade, timeout=90, what="the joined container to be made again")
    assert interfaces(appliance, now) == alone
    networks = engine.api.inspect_container(now["backend_id"])["NetworkSettings"]["Networks"]
    assert stray.name not in networks and len(networks) == 1, networks
    assert now["status_reason"].startswith("restarted: "), now
    assert "alone" in now["status_reason"], now


def test_a_container_with_another_sessions_worktree_is_judged_lacking(
        appliance: Appliance, repo: Path, engine: docker.DockerClient) -> None:
    """A host folder under ``/workspace/…`` is a session's shape; whose folder it is, only
    what the container was made with says (recorded on it when it is made)."""
    mine = create(appliance, repo, "mine")
    theirs = create(appliance, repo, "theirs")
    in_container(appliance, theirs, "echo 'their secret' > /workspace/secret.txt")
    appliance.stop("reconciler")
    ours = engine.api.inspect_container(mine["backend_id"])
    assert lacks(ours, today(ours)) == []  # what it was made with: nothing lacking
    binds = [docker.types.Mount(target=m["Destination"], source=m["Source"], type="bind",
                                read_only=not m["RW"])
             for m in ours["Mounts"] if m["Type"] == "bind"]
    attrs = copied(engine, mine["backend_id"], mounts=[*binds, docker.types.Mount(
        target="/workspace/theirs", source=theirs["worktree_path"], type="bind")])
    _, seen = in_container(appliance, mine, "cat /workspace/theirs/secret.txt")
    assert seen.strip() == "their secret"  # the agent reads (and writes) another's work
    assert "no host folder but its own" in lacks(attrs, today(attrs)), lacks(attrs, today(attrs))
