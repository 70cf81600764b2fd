"""Which sessions' workspaces hold the most of the disk (I/O shell over ``du``).

Asked only when the disk is nearly full (``/api/health``), so the person learns which
session filled it. ``du`` never follows a link (``-P``, its default) nor leaves the
filesystem (``-x``), so an agent's tree can neither steer it out nor make it read anything
but sizes; a tree too large to measure in time gives no answer rather than a late one.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from appliance.sessions import Session

DU_SECONDS = 20.0


def largest_workspaces(sessions: Sequence[Session], *, top: int = 3,
                       timeout: float = DU_SECONDS) -> list[dict[str, Any]] | None:
    """The ``top`` sessions by the disk their workspaces use (bytes, largest first); None
    when ``du`` is missing or took longer than ``timeout``."""
    owner = {}
    for s in sessions:
        for path in (s.worktree_path, *(e.worktree_path for e in s.extra_repos)):
            if path:
                owner[path] = s.name
    du = shutil.which("du")
    if not owner or du is None:
        return [] if du else None
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
    ranked = sorted(used.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [{"name": name, "bytes": size} for name, size in ranked]
