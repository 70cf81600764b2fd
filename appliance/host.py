"""Facts about the host the appliance runs on: instance id, git identity.

(The address containers reach the host on is the sessions' network's gateway:
:mod:`appliance.backends.docker_network`.)
"""

from __future__ import annotations

import hashlib
import logging
import subprocess

from appliance.config import Settings

log = logging.getLogger(__name__)


def instance_id(settings: Settings) -> str:
    """Stable per CLAUDERON_HOME: labels tell this appliance's workloads from others'."""
    return hashlib.sha256(str(settings.home.resolve()).encode()).hexdigest()[:12]


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
