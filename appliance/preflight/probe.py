"""Gather the facts :mod:`appliance.preflight.verdicts` judges (the I/O shell; reads only).

Nothing here writes anything: a failed preflight leaves the data folder, the engine and the
host's firewall exactly as they were. The container finds itself on the engine through the
files the engine bind-mounts into every container (``/etc/hostname`` and its neighbours live
in ``.../containers/<id>/``), which works on the host's network (where the host name is the
host's) and under cgroup v1 or v2 alike.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from appliance.backends.docker_network import DEFAULT_URL
from appliance.config import load_settings
from appliance.errors import ConfigError
from appliance.preflight.verdicts import Facts, Mount, capabilities_from_status

ENGINE_SECONDS = 10
_CONTAINER_ID = re.compile(r"/containers/([0-9a-f]{64})/")


def own_container_id(mountinfo: str) -> str | None:
    """This container's id, from ``/proc/self/mountinfo`` (None outside a container)."""
    found = _CONTAINER_ID.search(mountinfo)
    return found.group(1) if found else None


def socket_kind(docker_host: str) -> str:
    if not docker_host.startswith("unix://"):
        return "remote"
    try:
        mode = os.stat(docker_host.removeprefix("unix://")).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "other"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "directory" if stat.S_ISDIR(mode) else "other"


def mounts_of(inspect: Mapping[str, Any]) -> tuple[Mount, ...]:
    return tuple(
        Mount(kind=str(m.get("Type", "")), source=str(m.get("Source", "")),
              destination=str(m.get("Destination", "")),
              is_dir=os.path.isdir(str(m.get("Destination", ""))))
        for m in inspect.get("Mounts") or [])


def _inspect_self(docker_host: str) -> tuple[dict[str, Any] | None, str | None]:
    """(this container's inspect, None) or (None, why it could not be had)."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError as exc:
        return None, f"cannot read /proc/self/mountinfo: {exc.strerror}"
    cid = own_container_id(mountinfo)
    if cid is None:
        return None, ("cannot tell which container this is (no engine-made /etc/hostname); "
                      "run the appliance image on the Docker engine whose socket is mounted")
    try:
        with closing(docker.DockerClient(base_url=docker_host,
                                         timeout=ENGINE_SECONDS)) as client:
            attrs: dict[str, Any] = client.api.inspect_container(cid)
            return attrs, None
    except docker.errors.NotFound:
        return None, (f"the engine on this socket does not know container {cid[:12]}: the "
                      "socket mounted is not the engine running the appliance")
    except (docker.errors.DockerException, requests.exceptions.RequestException,
            OSError) as exc:
        return None, str(exc)[:300]


def gather(env: Mapping[str, str] | None = None) -> Facts:
    """The facts of this container. Raises :class:`ConfigError` for a bad config.toml."""
    env = os.environ if env is None else env
    settings = load_settings(env)
    docker_host = settings.docker_host or DEFAULT_URL
    kind = socket_kind(docker_host)
    inspect, error = _inspect_self(docker_host) if kind == "socket" else (None, None)
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    try:
        home_owner: int | None = settings.home.stat().st_uid
    except FileNotFoundError:
        home_owner = None
    except OSError as exc:
        raise ConfigError(f"cannot read the data folder {settings.home}: {exc.strerror}") \
            from exc
    repos = tuple(p.strip().rstrip("/") or "/" for p in env.get("CLAUDERON_REPOS", "")
                  .split(":") if p.strip())
    return Facts(
        uid=os.geteuid(),
        capabilities=capabilities_from_status(status),
        docker_host=docker_host,
        socket_kind=kind,
        engine_error=error,
        network_mode=((inspect or {}).get("HostConfig") or {}).get("NetworkMode"),
        mounts=None if inspect is None else mounts_of(inspect),
        home=str(settings.home),
        home_owner=home_owner,
        repos=repos,
    )
