"""What a session's container is made with, and what an existing one must have been made
with to be adopted (pure: the spec in, the Docker SDK's arguments out; no engine call).

A container of ours that is not on the sessions' network alone, not stripped of privileges,
or whose terminal's log is unbounded (one made before those rules) is replaced, never
adopted or started: :func:`locked_down` is that rule.
"""

from __future__ import annotations

from typing import Any

import docker.types

from appliance.backends.base import WorkloadSpec
from appliance.resources import parse_memory

#: The engine keeps a log of each container's terminal: every redraw of the agent's screen
#: (a spinner redraws all day), and whatever an agent writes there on purpose. Without a
#: bound it grows the engine's disk without end, where no workspace shows it; with this,
#: one session's log never passes two files of 10 MiB.
LOG_DRIVER = "json-file"
LOG_BOUND = {"max-size": "10m", "max-file": "2"}


def locked_down(attrs: dict[str, Any], network: str | None) -> bool:
    """Whether an existing container was made with the containment of the contract: on
    ``network`` alone (None: no network), every capability dropped, no-new-privileges,
    and its terminal's log bounded."""
    host = attrs.get("HostConfig") or {}
    return (
        host.get("NetworkMode") == (network or "none")
        and "ALL" in (host.get("CapDrop") or [])
        and any(str(o).startswith("no-new-privileges") for o in host.get("SecurityOpt") or [])
        and host.get("LogConfig") == {"Type": LOG_DRIVER, "Config": LOG_BOUND}
    )


def create_kwargs(spec: WorkloadSpec) -> dict[str, Any]:
    """The Docker SDK's ``containers.create`` arguments for ``spec`` (pure; the entry
    point, which needs the image's own, is added at create time)."""
    mounts = [
        docker.types.Mount(target=m.target, source=m.source, type="bind",
                           read_only=m.read_only)
        for m in spec.mounts
    ]
    kwargs: dict[str, Any] = {
        "name": spec.name,
        "labels": dict(spec.labels),
        "environment": dict(spec.env),
        "mounts": mounts,
        "working_dir": spec.workdir,
        "user": spec.user,
        "tty": True,
        "stdin_open": True,
        "detach": True,
        "extra_hosts": dict(spec.extra_hosts),
        "tmpfs": dict(spec.tmpfs),
        "init": True,
        # An interactive shell or agent ignores SIGTERM but ends on hang-up, like a
        # terminal closing; the init process forwards it.
        "stop_signal": "SIGHUP",
        "cap_drop": list(spec.cap_drop),
        "cap_add": list(spec.cap_add),
        "security_opt": ["no-new-privileges"] if spec.no_new_privileges else [],
        "dns": list(spec.dns),
        "dns_opt": list(spec.dns_options),
        "log_config": docker.types.LogConfig(type=LOG_DRIVER, config=dict(LOG_BOUND)),
    }
    # The one network, instead of the engine's default bridge.
    if spec.network:
        kwargs["network"] = spec.network
    else:
        kwargs["network_mode"] = "none"
    if spec.pids_limit:
        kwargs["pids_limit"] = spec.pids_limit
    if spec.command:
        kwargs["command"] = list(spec.command)
    if spec.cpu:
        kwargs["nano_cpus"] = int(spec.cpu * 1e9)
    if spec.memory:
        kwargs["mem_limit"] = parse_memory(spec.memory)
    return kwargs
