"""Which sessions hold the most of the disk (I/O shell over ``du``; :func:`rank` pure).

Asked only when the disk is nearly full (``/api/health``), so the person learns which
session filled it. ``du`` never follows a link (``-P``, its default) nor leaves the
filesystem (``-x``), so an agent's tree can neither steer it out nor make it read anything
but sizes; a tree too large to measure in time gives no answer rather than a late one.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from appliance.sessions import Session

DU_SECONDS = 20.0


def largest_workspaces(sessions: Sequence[Session], *, top: int = 3,
                       timeout: float = DU_SECONDS,
                       containers: Mapping[str, int] | None = None,
                       ) -> list[dict[str, Any]] | None:
    """The ``top`` sessions by the disk they use (bytes, largest first): their workspaces,
    measured here, plus ``containers`` (bytes by session id: what each wrote outside its
    workspace, which the engine keeps in the container's own layer). None when ``du`` is
    missing or took longer than ``timeout``."""
    used = workspace_bytes(sessions, timeout)
    return None if used is None else rank(sessions, used, containers or {}, top)


def workspace_bytes(sessions: Sequence[Session], timeout: float) -> dict[str, int] | None:
    """Bytes under each session's workspaces (further repositories included), by name."""
    owner = {}
    for s in sessions:
        for path in (s.worktree_path, *(e.worktree_path for e in s.extra_repos)):
            if path:
                owner[path] = s.name
    du = shutil.which("du")
    if not owner or du is None:
        return {} if du else None
    try:
        out = subprocess.run([du, "-s", "-x", "-P", "-B1", "--", *owner], timeout=timeout,
                             capture_output=True, text=True, check=False).stdout
    except subprocess.TimeoutExpired:
        return None
    used: dict[str, int] = {}
    for line in out.splitlines():
        size, _, path = line.partition("\t")
        if path in owner and size.isdigit():
            used[owner[path]] = used.get(owner[path], 0) + int(size)
    return used


def rank(sessions: Sequence[Session], workspaces: Mapping[str, int],
         containers: Mapping[str, int], top: int) -> list[dict[str, Any]]:
    """The ``top`` sessions by workspace plus container bytes (pure); a session using
    nothing measurable is left out."""
    rows: list[dict[str, Any]] = []
    for s in sessions:
        ws, ct = workspaces.get(s.name, 0), containers.get(s.id, 0)
        if ws or ct:
            rows.append({"name": s.name, "bytes": ws + ct, "workspace_bytes": ws,
                         "container_bytes": ct})
    rows.sort(key=lambda row: (-row["bytes"], row["name"]))
    return rows[:top]
