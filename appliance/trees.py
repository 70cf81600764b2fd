"""Where a session's workspace and agent home can be read on this host, whatever its backend.

:class:`appliance.readers.HostReader` reads these folders through :mod:`appliance.safefs`.
A Docker session's are the host's own (``worktrees/<name>``, ``homes/<id>``). A Kubernetes
session's live on its volume: readable here when ``[kubernetes] volume_root`` says where this
host sees the cluster's volumes (a node-local storage class); otherwise
:func:`appliance.readers.reader_for` reads them inside the pod instead, and
:func:`workspace_dir` and :func:`home_dir` refuse with an error that names the setting.
"""

from __future__ import annotations

import os
from pathlib import Path

from appliance.config import Settings
from appliance.errors import InvalidInput
from appliance.sessions import BackendKind, Session


def host_workspace(s: Session) -> bool:
    """Whether the session's workspace is a folder of this host (Docker)."""
    return str(s.backend) != BackendKind.KUBERNETES


def workspace_gone(s: Session) -> bool:
    """Whether a workspace folder of a host session is gone: the primary's or a further
    repository's (a pod's is on its volume). A folder that stands is never gone, whatever
    its ``.git`` holds: the files in it are the agent's work, which a workspace made again
    would lose; the next create mends the repository around them
    (:func:`appliance.workspaces.create_workspace`)."""
    return host_workspace(s) and not all(
        os.path.lexists(p) for p in (s.worktree_path, *(e.worktree_path for e in s.extra_repos)))


def _volume(settings: Settings, s: Session) -> Path:
    kube = settings.kubernetes
    if kube is None or kube.volume_root is None:
        raise InvalidInput(
            f"{s.name} runs on Kubernetes and its volume is not readable from the appliance: "
            "set [kubernetes] volume_root to where this host sees the cluster's volumes, or "
            f"read it in the pod (clauderon attach {s.name})")
    return Path(kube.volume_root) / s.container_name


def workspace_dir(settings: Settings, s: Session) -> Path:
    if host_workspace(s):
        return Path(s.worktree_path)
    return _volume(settings, s) / "workspace"


def home_dir(settings: Settings, s: Session) -> Path:
    if host_workspace(s):
        return settings.homes_dir / s.id
    return _volume(settings, s) / "home"
