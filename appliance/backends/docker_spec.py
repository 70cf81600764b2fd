"""What a session's container is made with, and what an existing one must have been made
with to be adopted (pure: the spec in, the Docker SDK's arguments out; no engine call).

A container of ours that lacks any of this version's containment (one made before its
rules: on another network, privileged, sharing a namespace of the host's, a capability,
device or host folder too many, root, no bound on its processes or its terminal's log) is
replaced, never adopted or started, and a running one is made again (:func:`lacks` says
what it lacks, in words). Each container carries the version that made it (a label); one
this version made that lacks something now was changed after it was made (``docker network
connect``, ``docker update``, a plugin), and the reason says that, not "an older version"
(:func:`remade_because`).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.types

from appliance import __version__
from appliance.backends import base
from appliance.backends.base import LABEL_MADE_BY, LABEL_MOUNTS, WorkloadSpec
from appliance.contract import CONTAINER_CA_PATH, CONTAINER_HOME, CONTAINER_UPLOADS, WORKSPACE
from appliance.resources import parse_memory

#: The engine keeps a log of each container's terminal: every redraw of the agent's screen
#: (a spinner redraws all day), and whatever an agent writes there on purpose. Without a
#: bound it grows the engine's disk without end, where no workspace shows it; with this,
#: one session's log never passes two files of 10 MiB.
LOG_DRIVER = "json-file"
LOG_BOUND = {"max-size": "10m", "max-file": "2"}

#: The version that made a container (its ``LABEL_MADE_BY``), written at create: the release
#: and a digest of this module, which says what a container is made with (a release's
#: number alone outlives a change to its containment).
MADE_BY = f"{__version__} {hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]}"
#: What changes a container this version made so that it lacks containment.
CHANGED_BY = "a network connected, `docker update`, a plugin"


#: Where a session's container may have a host folder (or file), and whether it must be
#: read-only there (:func:`~appliance.contract.workload_for`): its workspaces, its uploads,
#: its agent's home, the proxy's CA; a borrowed object folder is mounted read-only at its
#: own path (an alternate may be named anything), never the system's folders (a read-only
#: socket still connects: the engine's).
_MOUNTS = {WORKSPACE: False, CONTAINER_UPLOADS: True, CONTAINER_HOME: False,
           CONTAINER_CA_PATH: True}
#: Host folders a container of ours never has whole: a borrowed object folder is mounted
#: read-only at its own path, and a person's repository may stand anywhere below these
#: (``/root/src``, ``/run/media/…``, ``/usr/local/src``), so only the folders themselves.
_WHOLE = ("/", "/bin", "/boot", "/etc", "/home", "/lib", "/opt", "/root", "/run", "/sbin",
          "/srv", "/usr", "/var")
#: What the kernel and the engine serve: nothing below these.
_BENEATH = ("/dev", "/proc", "/sys", "/run/containerd", "/run/docker", "/var/lib/containerd",
            "/var/lib/docker", "/var/run/containerd", "/var/run/docker")
#: Namespaces a container of ours never shares with the host, nor (``container:<id>``)
#: with another container: a neighbour's processes, to see and signal as the same uid.
_NAMESPACES = ("PidMode", "IpcMode", "UTSMode", "UsernsMode")
#: Go's ``strconv.ParseBool``, which the engine reads ``no-new-privileges=<bool>`` with.
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _shared(mode: object) -> bool:
    return mode == "host" or str(mode or "").startswith("container:")


def no_new_privileges(opts: list[str]) -> bool:
    """Whether the engine gives a container with the security options ``opts`` no new
    privileges: as it reads them, the last ``no-new-privileges`` (bare, ``=`` or ``:`` and
    a boolean) wins."""
    on = False
    for opt in opts:
        key, _, value = opt.partition("=") if "=" in opt else opt.partition(":")
        if key != "no-new-privileges":
            continue
        if not value and opt == key:
            on = True
        elif value in _TRUE or value in _FALSE:
            on = value in _TRUE
    return on


def _log_bounded(config: object) -> bool:
    """Our driver and bound; the engine adds its own ``log-opts`` (compress, mode, labels)
    to every json-file log, and none of them unbinds it."""
    if not isinstance(config, dict) or config.get("Type") != LOG_DRIVER:
        return False
    opts = config.get("Config") or {}
    return all(opts.get(k) == v for k, v in LOG_BOUND.items())


@dataclass(frozen=True, slots=True, kw_only=True)
class Containment:
    """What a container of ours is made with (:func:`containment_of` a spec). Where the
    spec is not at hand (a pass's listing, a start), ``user`` and ``mounts`` are None: any
    user but root, and a host folder only where :data:`_MOUNTS` allows one."""

    network: str | None
    pids_limit: int | None = None
    #: False on an engine that bounds no container's processes (it drops the limit).
    pids_bounded: bool = True
    cap_add: tuple[str, ...] = ()
    user: str | None = None
    #: ``(source, target, read-only)`` of each host folder the spec mounts.
    mounts: frozenset[tuple[str, str, bool]] | None = None


def containment_of(spec: WorkloadSpec) -> Containment:
    return Containment(network=spec.network, pids_limit=spec.pids_limit,
                       cap_add=spec.cap_add, user=spec.user,
                       mounts=frozenset((m.source, m.target, m.read_only)
                                        for m in spec.mounts))


def mounts_label(spec: WorkloadSpec) -> str:
    """The record of the host folders ``spec`` mounts, put on its container (sorted: one
    spec, one text), their paths as the engine records them (cleaned)."""
    return json.dumps(sorted([posixpath.normpath(m.source), posixpath.normpath(m.target),
                              m.read_only] for m in spec.mounts))


def recorded_mounts(attrs: dict[str, Any]) -> frozenset[tuple[str, str, bool]] | None:
    """The host folders a container was made with, from its label (None: an older
    version's, made without one; a label not of that shape records none)."""
    label = ((attrs.get("Config") or {}).get("Labels") or {}).get(LABEL_MOUNTS)
    if label is None:
        return None
    try:
        rows = json.loads(label)
        return frozenset((str(s), str(t), bool(ro)) for s, t, ro in rows)
    except (ValueError, TypeError):
        return frozenset()


def _root(user: str) -> bool:
    return user.split(":", 1)[0] in ("", "0", "root")


def _mount_allowed(source: str, target: str, read_only: bool) -> bool:
    target = target.rstrip("/") or "/"
    if source.rstrip("/") in ("", "/"):
        return False
    if target == source and read_only:
        return target not in _WHOLE and not target.endswith(".sock") and \
            not any(target == p or target.startswith(f"{p}/") for p in _BENEATH)
    if target.startswith(f"{WORKSPACE}/"):
        return True
    return target in _MOUNTS and (read_only or not _MOUNTS[target])


def networks(attrs: dict[str, Any]) -> frozenset[str]:
    """The networks a container is on now (an inspection's or a listing's row): its
    ``NetworkMode``'s, and any it was joined to after it was made (``docker network
    connect``), which the mode never shows."""
    settings = attrs.get("NetworkSettings") or {}
    return frozenset(str(n) for n in settings.get("Networks") or {})


def lacks(attrs: dict[str, Any], want: Containment) -> list[str]:
    """What an existing container lacks of the containment ``want`` (empty: nothing), in
    words. Only the fields containment rests on are read, the engine's defaults for the
    rest being no concern of it."""
    host = attrs.get("HostConfig") or {}
    config = attrs.get("Config") or {}
    out: list[str] = []
    if host.get("NetworkMode") != (want.network or "none") or \
            networks(attrs) - {want.network or "none"}:
        out.append(f"the network {want.network or 'none'} alone")
    if host.get("Privileged"):
        out.append("no privileged mode")
    if "ALL" not in (host.get("CapDrop") or []):
        out.append("every capability dropped")
    if set(host.get("CapAdd") or []) - set(want.cap_add):
        out.append("no capability added")
    opts = [str(o) for o in host.get("SecurityOpt") or []]
    if not no_new_privileges(opts):
        out.append("no new privileges")
    if any(o.replace("=", ":").split(":", 1)[1:] == ["unconfined"] for o in opts):
        out.append("seccomp and AppArmor confining it")
    if any(_shared(host.get(ns)) for ns in _NAMESPACES):
        out.append("nothing of the host's or another container's processes, IPC, hostname "
                   "or users")
    if host.get("Devices"):
        out.append("no host device")
    if want.pids_bounded and (
            (want.pids_limit and host.get("PidsLimit") != want.pids_limit)
            or (not want.pids_limit and not (host.get("PidsLimit") or 0) > 0)):
        out.append(f"a bound on its processes ({want.pids_limit or 'any'})")
    user = str(config.get("User") or "")
    if _root(user) or (want.user is not None and user != want.user):
        out.append(f"its agent's user ({want.user or 'not root'})")
    if not _own_folders_only(attrs, want):
        out.append("no host folder but its own")
    if not _log_bounded(host.get("LogConfig")):
        out.append("its terminal's log bounded")
    return out


def _own_folders_only(attrs: dict[str, Any], want: Containment) -> bool:
    """Whether the host folders a container has are those it may have: ``want``'s (when
    known) and the ones it was made with (when recorded)."""
    binds = {(str(m.get("Source") or ""), str(m.get("Destination") or ""),
              not m.get("RW", True)) for m in attrs.get("Mounts") or []
             if m.get("Type") == "bind"}
    made = recorded_mounts(attrs)
    return not (any(not _mount_allowed(*b) for b in binds) or
                (want.mounts is not None and not binds <= want.mounts) or
                (made is not None and binds != made))


def remade_because(missing: list[str], attrs: dict[str, Any]) -> str:
    """:func:`~appliance.backends.base.remade_because` of the container ``attrs`` inspects."""
    labels = (attrs.get("Config") or {}).get("Labels")
    return base.remade_because(missing, labels, this=MADE_BY, how=CHANGED_BY)


def create_kwargs(spec: WorkloadSpec) -> dict[str, Any]:
    """The Docker SDK's ``containers.create`` arguments for ``spec`` (pure; the entry
    point, which needs the image's own, is added at create time)."""
    mounts = [docker.types.Mount(target=m.target, source=m.source, type="bind",
                                 read_only=m.read_only) for m in spec.mounts]
    kwargs: dict[str, Any] = {
        "name": spec.name,
        "labels": {**spec.labels, LABEL_MOUNTS: mounts_label(spec), LABEL_MADE_BY: MADE_BY},
        "environment": dict(spec.env),
        "mounts": mounts,
        "working_dir": spec.workdir,
        "user": spec.user,
        "tty": True, "stdin_open": True, "detach": True,
        "extra_hosts": dict(spec.extra_hosts),
        "tmpfs": dict(spec.tmpfs),
        "init": True,
        # An interactive shell or agent ignores SIGTERM but ends on hang-up, like a
        # terminal closing; the init process forwards it.
        "stop_signal": "SIGHUP",
        "cap_drop": list(spec.cap_drop), "cap_add": list(spec.cap_add),
        "security_opt": ["no-new-privileges"] if spec.no_new_privileges else [],
        "dns": list(spec.dns), "dns_opt": list(spec.dns_options),
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


def entry_kwargs(spec: WorkloadSpec, image: dict[str, Any]) -> dict[str, Any]:
    """The entry point of ``spec``'s container: ours first, then the image's own entrypoint
    and command (``image``: the engine's inspection of it)."""
    config = image.get("Config") or {}
    return {"entrypoint": ["sh", spec.entry], "command": list(config.get("Entrypoint") or [])
            + list(spec.command or config.get("Cmd") or [])}
