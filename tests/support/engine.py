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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
