"""The real Docker engine for tests: started when absent, never skipped."""

from __future__ import annotations

import subprocess
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "debian:bookworm-slim"
AGENT_IMAGE = "clauderon-agent:latest"


def ensure_engine() -> docker.DockerClient:
    """A client of a running engine with the base image present; starts/builds as needed."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException:
        subprocess.run(["bash", str(ROOT / "images/ensure-docker.sh")], check=True)
        client = docker.from_env()
        client.ping()
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        subprocess.run(["bash", str(ROOT / "images/bootstrap-base.sh")], check=True)
    return client


def ensure_agent_image() -> None:
    subprocess.run(["bash", str(ROOT / "images/agent/build.sh")], check=True)


#: Ports this run has handed out: a service starts seconds after its port is chosen, and
#: a port chosen twice (or taken meanwhile) stops it with "address already in use".
_HANDED_OUT: set[int] = set()


def _free(family: int, host: str, port: int) -> bool:
    """Whether ``port`` can be bound on ``host`` (a machine without IPv6 has it free)."""
    import errno
    import socket

    try:
        with socket.socket(family) as s:
            s.bind((host, port))
    except OSError as exc:
        return exc.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL)
    return True


def free_port() -> int:
    """A port free on every address now, chosen below the kernel's ephemeral range (so no
    outgoing connection takes it before the service binds it) and never chosen twice in
    one run. Several runs on one machine pick at random, and each checks by binding."""
    import random
    import socket

    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        port = random.randrange(10000, low)
        if port in _HANDED_OUT:
            continue
        if not _free(socket.AF_INET, "", port) or not _free(socket.AF_INET6, "::", port):
            continue  # the API holds ::1 as well as 127.0.0.1
        _HANDED_OUT.add(port)
        return port
