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

import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.types
import pytest

from appliance.backends.docker_spec import lacks
from tests.integration.test_docker_remake import made_as_an_older_version, status
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
    # The reconciler held (SIGSTOP: as it is, its judgements kept) while the join is read
    # from inside, so that a pass cannot make the container again under the read.
    reconciler = appliance.procs["reconciler"]
    reconciler.send_signal(signal.SIGSTOP)
    try:
        stray.connect(s["backend_id"])
        both = interfaces(appliance, s)
    finally:
        reconciler.send_signal(signal.SIGCONT)
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
    # This version made it; the join came after: the reason says so, not "an older version".
    assert "changed after this version made it" in now["status_reason"], now
    assert "older version" not in now["status_reason"], now
    events = appliance.client().get(f"/api/sessions/{s['id']}/events")["events"]
    drift = [e["payload"]["reason"] for e in events if e["kind"] == "drift"]
    assert any("changed after this version made it" in r for r in drift), drift


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


@pytest.mark.parametrize("step", ["worktree", "start"])
def test_a_reconciler_killed_mid_remake_leaves_one_contained_container_and_the_work(
        appliance: Appliance, repo: Path, engine: docker.DockerClient, step: str) -> None:
    """Killed after the old container's removal (the workspace step) or after the new one
    was made (its start): the next reconciler makes or starts one, contained, on the same
    worktree and branch, and leaves no other. (The new one, made and never started, was
    taken for the agent having exited: the session was stopped, wanted stopped.)"""
    s = create(appliance, repo, "killed")
    in_container(appliance, s, "echo 'work in progress' > /workspace/agent-note.txt")
    appliance.stop("reconciler")
    older = made_as_an_older_version(engine, s["backend_id"])
    appliance.start("reconciler")

    def reached() -> bool:
        events = appliance.client().get(f"/api/sessions/{s['id']}/events")["events"]
        after = [e for e in events if e["kind"] == "drift"]
        return bool(after) and any(e["payload"].get("step") == step
                                   for e in events if e["id"] > after[0]["id"])

    wait_for(reached, interval=0.005, what=f"the remake's {step} step")
    appliance.stop("reconciler", signal.SIGKILL)
    appliance.start("reconciler")

    def settled() -> dict[str, Any] | None:
        now = appliance.session("killed")
        ids = [c.id for c in appliance.containers(s["id"])]
        return now if now["phase"] == "running" and ids == [now["backend_id"]] \
            and older not in ids else None

    now = wait_for(settled, timeout=120, what="one running container again")
    assert status(appliance, now)["CapBnd"] == "0000000000000000"
    _, note = in_container(appliance, now, "cat /workspace/agent-note.txt")
    assert note.strip() == "work in progress"
    assert Path(now["worktree_path"], ".git", "HEAD").is_file()
    branches = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo), "branch",
                               "--list", now["branch"]], capture_output=True, text=True,
                              check=True).stdout
    assert now["branch"] in branches
