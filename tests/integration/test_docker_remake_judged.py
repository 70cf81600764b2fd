"""What the reconciler's one look at a running container (``docker_spec.lacks``) says of
real containers, made through the engine: one sharing a neighbour's namespaces, or told
new privileges after all, is judged to lack its containment (it is made again); one the
engine added its own log options to is not (it would be made again at every pass, the
agent restarted for nothing until the session fails).

Each is played for real: the running session's container is replaced by a copy (the same
name, labels, mounts, user, command and network, today's containment) with the one change,
and what the agent (uid 1000) gets from inside is shown before the judgement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import docker.types

from appliance.backends.docker_spec import Containment, lacks
from tests.integration.test_docker_remake import replaced
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance


def copied(engine: docker.DockerClient, backend_id: str, **changes: Any) -> dict[str, Any]:
    """Replace the container ``backend_id`` by a copy made with today's containment and
    ``changes`` (the SDK's ``create`` arguments), running. The engine's record of it."""
    host = engine.containers.get(backend_id).attrs["HostConfig"]
    log = host["LogConfig"]
    new = replaced(engine, backend_id, **{
        "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"],
        "pids_limit": host["PidsLimit"],
        "log_config": docker.types.LogConfig(type=log["Type"], config=log["Config"]),
        **changes})
    return dict(engine.api.inspect_container(new.id))


def today(attrs: dict[str, Any]) -> Containment:
    """What the reconciler's pass wants of a running container (no spec at hand)."""
    return Containment(network=attrs["HostConfig"]["NetworkMode"])


def test_a_container_sharing_a_neighbours_processes_is_judged_lacking(
        appliance: Appliance, repo: Path, engine: docker.DockerClient) -> None:
    a = create(appliance, repo, "neighbour")
    b = create(appliance, repo, "sharer")
    in_container(appliance, a, "nohup sleep 4321 >/dev/null 2>&1 &")
    appliance.stop("reconciler")
    attrs = copied(engine, b["backend_id"], pid_mode=f"container:{a['backend_id']}")
    # The agent sees (and, as the same uid, may signal) its neighbour's processes.
    _, seen = in_container(appliance, b, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
    assert "sleep 4321" in seen, seen
    assert "nothing of the host's or another container's processes, IPC, hostname or " \
        "users" in lacks(attrs, today(attrs)), lacks(attrs, today(attrs))


def test_a_container_told_new_privileges_after_all_is_judged_lacking(
        appliance: Appliance, repo: Path, engine: docker.DockerClient) -> None:
    s = create(appliance, repo, "told")
    appliance.stop("reconciler")
    current = s["backend_id"]
    for opts in (["no-new-privileges=false"], ["no-new-privileges", "no-new-privileges=0"]):
        attrs = copied(engine, current, security_opt=opts)
        current = attrs["Id"]
        _, status = in_container(appliance, s, "grep NoNewPrivs /proc/self/status")
        assert status.split() == ["NoNewPrivs:", "0"], status  # the engine took it: setuid works
        assert "no new privileges" in lacks(attrs, today(attrs)), (opts, attrs["HostConfig"])


def test_a_container_the_engine_added_log_options_to_lacks_nothing(
        appliance: Appliance, repo: Path, engine: docker.DockerClient) -> None:
    """An engine whose own json-file log options (``log-opts`` in its daemon.json: compress,
    mode, labels) add to every container's: the record is the same as one made with them."""
    create(appliance, repo, "logged")
    appliance.stop("reconciler")
    ours = engine.api.inspect_container(appliance.session("logged")["backend_id"])
    assert lacks(ours, today(ours)) == []
    log = {**ours["HostConfig"]["LogConfig"]["Config"], "compress": "true",
           "mode": "non-blocking"}
    attrs = copied(engine, appliance.session("logged")["backend_id"],
                   log_config=docker.types.LogConfig(type="json-file", config=log))
    assert attrs["HostConfig"]["LogConfig"]["Config"]["max-size"] == "10m"
    assert lacks(attrs, today(attrs)) == []
