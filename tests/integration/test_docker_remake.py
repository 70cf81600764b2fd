"""A session's container that an older version made, still running after the upgrade, is
made again with today's containment at the next pass, not at its next start (weeks away).

The attack: the agent's container was made before a rule of today's containment (here:
privileged, no capability dropped, new privileges allowed), and keeps running across the
appliance's upgrade. Played for real: a running session's container is replaced by one
"as an older version made it" (the same name, labels, mounts and command, via the engine),
the probe from inside as the agent (uid 1000) sees every capability (the positive control);
then the upgraded reconciler runs its passes. From inside the new container as uid 1000:
no capability in the bounding set, no new privileges; the agent's file in the worktree is
still there; the session runs, saying why it was made again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import docker.types

from appliance.backends.docker_spec import LABEL_MADE_BY
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance, wait_for


def status(app: Appliance, session: dict[str, Any]) -> dict[str, str]:
    """``/proc/1/status`` of the session's container, read as the agent (uid 1000)."""
    _, out = in_container(app, session, "cat /proc/1/status")
    pairs = (line.split(":", 1) for line in out.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def replaced(engine: docker.DockerClient, backend_id: str, **made: Any) -> Any:
    """Replace the container ``backend_id`` by one with the same name, labels, mounts,
    environment, user and command on the same network, made with ``made`` (the SDK's
    ``create`` arguments) besides. The new container, running."""
    old = engine.containers.get(backend_id)
    a = old.attrs
    config, host = a["Config"], a["HostConfig"]
    mounts = [docker.types.Mount(target=m["Destination"], source=m["Source"], type="bind",
                                 read_only=not m["RW"])
              for m in a["Mounts"] if m["Type"] == "bind"]
    kwargs: dict[str, Any] = {
        "name": a["Name"].lstrip("/"), "labels": config["Labels"], "environment": config["Env"],
        "entrypoint": config["Entrypoint"], "command": config["Cmd"], "user": config["User"],
        "working_dir": config["WorkingDir"], "mounts": mounts,
        "tmpfs": host.get("Tmpfs") or {}, "network": host["NetworkMode"], "tty": True,
        "stdin_open": True, "init": True, **made}
    old.remove(force=True)
    new = engine.containers.create(config["Image"], **kwargs)
    new.start()
    return new


def made_as_an_older_version(engine: docker.DockerClient, backend_id: str) -> str:
    """Replace the container ``backend_id`` by one as an older version made it: privileged,
    nothing dropped, new privileges allowed, and no label saying which version made it (an
    older version wrote none). Its id, running."""
    labels = engine.api.inspect_container(backend_id)["Config"]["Labels"]
    older = {k: v for k, v in labels.items() if k != LABEL_MADE_BY}
    return str(replaced(engine, backend_id, privileged=True, labels=older).id)


def test_a_running_container_an_older_version_made_is_made_again_contained(
        appliance: Appliance, repo: Path, engine: docker.DockerClient) -> None:
    s = create(appliance, repo, "old")
    in_container(appliance, s, "echo 'work in progress' > /workspace/agent-note.txt")
    assert status(appliance, s)["CapBnd"] == "0000000000000000"

    # The upgrade: the services stop; the container the older version made runs on.
    appliance.stop("reconciler")
    older = made_as_an_older_version(engine, s["backend_id"])
    before = status(appliance, s)
    assert before["CapBnd"] != "0000000000000000" and before["NoNewPrivs"] == "0", before
    appliance.start("reconciler")

    def remade() -> dict[str, Any] | None:
        now = appliance.session("old")
        ids = [c.id for c in appliance.containers(s["id"])]
        done = now["phase"] == "running" and ids and older not in ids \
            and now["backend_id"] in ids
        return now if done else None

    now = wait_for(remade, timeout=90, what="the older container to be made again")
    after = status(appliance, now)
    assert after["CapBnd"] == "0000000000000000" and after["NoNewPrivs"] == "1", after
    _, note = in_container(appliance, now, "cat /workspace/agent-note.txt")
    assert note.strip() == "work in progress"
    assert now["status_reason"].startswith("restarted: made by an older version"), now
    assert "no privileged mode" in now["status_reason"]
    assert "every capability dropped" in now["status_reason"]
    events = appliance.client().get(f"/api/sessions/{s['id']}/events")["events"]
    drift = [e["payload"]["reason"] for e in events if e["kind"] == "drift"]
    assert any("no privileged mode" in r for r in drift), drift


def test_a_container_a_read_holds_still_is_made_again_only_once_the_read_ends(
        appliance: Appliance, repo: Path, engine: docker.DockerClient) -> None:
    """A diff holds the agent's container still (paused) while host git reads its work
    tree: one made again meanwhile ran again unheld under the read, and the read's own end
    met a container that was gone. A container lacking containment while held still is
    left alone until the hold ends; then it is made again."""
    s = create(appliance, repo, "held")
    appliance.stop("reconciler")
    older = made_as_an_older_version(engine, s["backend_id"])
    engine.api.pause(older)  # as a read holds it (appliance/backends/docker_freeze.py)
    appliance.start("reconciler")
    # Passes run meanwhile: those that make and start another session list the held one.
    create(appliance, repo, "witness")
    assert [c.id for c in appliance.containers(s["id"])] == [older]
    assert engine.api.inspect_container(older)["State"]["Paused"]
    engine.api.unpause(older)
    wait_for(lambda: older not in [c.id for c in appliance.containers(s["id"])] or None,
             timeout=90, what="the older container made again once the hold ended")
