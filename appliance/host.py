"""Facts about the host the appliance runs on: instance id, bridge gateway, git identity."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import socket
import struct
import subprocess
from pathlib import Path

from appliance.config import Settings

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def instance_id(settings: Settings) -> str:
    """Stable per CLAUDERON_HOME: labels tell this appliance's workloads from others'."""
    return hashlib.sha256(str(settings.home.resolve()).encode()).hexdigest()[:12]


def _iface_ipv4(name: str) -> str | None:
    """The IPv4 address of a network interface (Linux), without extra dependencies."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def bridge_gateway(settings: Settings) -> str | None:
    """Where ``host.docker.internal`` points from a container on Linux (docker0's address)."""
    if settings.bridge_gateway is not None:
        return settings.bridge_gateway or None
    return _iface_ipv4("docker0")


def listen_addresses(settings: Settings, host: str = LOOPBACK) -> list[str]:
    """127.0.0.1 (or the configured host) plus the bridge gateway when there is one."""
    out = [host]
    gw = bridge_gateway(settings)
    if gw and gw not in out:
        out.append(gw)
    return out


def git_identity() -> tuple[str | None, str | None]:
    def get(key: str) -> str | None:
        try:
            proc = subprocess.run(["git", "config", "--global", key], capture_output=True,
                                  text=True, timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        value = proc.stdout.strip()
        # Sanitise: one printable line, no control characters.
        return "".join(ch for ch in value if ch.isprintable())[:200] or None

    return get("user.name"), get("user.email")


def read_json(path: Path) -> object:
    return json.loads(path.read_text())
