"""Which sessions hold the most of the disk (I/O shell over ``du``; :func:`rank` pure).

Asked only when the disk is nearly full (``/api/health``), so the person learns which
session filled it: with bytes (its workspace, its container's writes, or its requests' audit
lines, which the appliance keeps but the session's requests wrote), or with files when it
is the disk's files (inodes) that ran out, which an agent can spend on empty files that
take no space. ``du`` never follows a
link (``-P``, its default) nor leaves the filesystem (``-x``), so an agent's tree can
neither steer it out nor make it read anything but sizes; a tree too large to measure in
time gives no answer rather than a late one.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Any

from appliance.sessions import Session, SessionId

DU_SECONDS = 20.0
WORKSPACE, OUTSIDE = "workspace", "outside"
#: What :func:`measure` sums: each measured path's session id and part.
Parts = Mapping[str, tuple[str, str]]


def largest_workspaces(sessions: Sequence[Session], *, top: int = 3,
                       timeout: float = DU_SECONDS,
                       containers: Mapping[str, int] | None = None,
                       homes: Mapping[SessionId, str] | None = None,
                       by_files: bool = False,
                       audit: Mapping[str, int] | None = None,
                       ) -> list[dict[str, Any]] | None:
    """The ``top`` sessions by the disk they use (largest first): their workspaces,
    measured here, plus what each wrote in its container outside its workspace: its agent
    home (``homes``: the folder by session id, measured here) and ``containers`` (bytes by
    session id, which the engine keeps in the container's own layer), and ``audit`` (bytes
    of its audit lines by session id: ``AuditIndex.spent``). ``by_files``: ranked
    by the files of their workspaces and homes instead. None when ``du`` is missing or took
    longer than ``timeout``."""
    parts: dict[str, tuple[str, str]] = {
        path: (s.id, WORKSPACE) for s in sessions
        for path in (s.worktree_path, *(e.worktree_path for e in s.extra_repos)) if path}
    parts.update({path: (sid, OUTSIDE) for sid, path in (homes or {}).items()})
    deadline = time.monotonic() + timeout
    used = measure(parts, timeout)
    counted = measure(parts, deadline - time.monotonic(), files=True) if by_files else {}
    if used is None or counted is None:
        return None
    outside = {sid: n for (sid, part), n in used.items() if part == OUTSIDE}
    for sid, n in (containers or {}).items():
        outside[sid] = outside.get(sid, 0) + n
    files: dict[str, int] = {}
    for (sid, _), n in counted.items():
        files[sid] = files.get(sid, 0) + n
    return rank(sessions, {s.id: used.get((s.id, WORKSPACE), 0) for s in sessions},
                outside, top, files=files if by_files else None, audit=audit)


def measure(parts: Parts, timeout: float, *, files: bool = False,
            ) -> dict[tuple[str, str], int] | None:
    """Bytes (``files``: files and folders) under each path of ``parts``, summed by the
    key it maps to; None when ``du`` is missing or late."""
    du = shutil.which("du")
    if not parts or du is None:
        return {} if du else None
    unit = ["--inodes"] if files else ["-B1"]
    try:
        out = subprocess.run([du, "-s", "-x", "-P", *unit, "--", *parts],
                             timeout=max(timeout, 0.1), capture_output=True, text=True,
                             check=False).stdout
    except subprocess.TimeoutExpired:
        return None
    used: dict[tuple[str, str], int] = {}
    for line in out.splitlines():
        size, _, path = line.partition("\t")
        if path in parts and size.isdigit():
            used[parts[path]] = used.get(parts[path], 0) + int(size)
    return used


def rank(sessions: Sequence[Session], workspaces: Mapping[str, int],
         containers: Mapping[str, int], top: int, *,
         files: Mapping[str, int] | None = None,
         audit: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """The ``top`` sessions by workspace, container and audit bytes, or by ``files`` when
    given (pure; every mapping by session id); a session using nothing measurable is left
    out."""
    rows: list[dict[str, Any]] = []
    for s in sessions:
        ws, ct = workspaces.get(s.id, 0), containers.get(s.id, 0)
        lines = (audit or {}).get(s.id, 0)
        n = None if files is None else files.get(s.id, 0)
        if ws or ct or lines or n:
            rows.append({"name": s.name, "bytes": ws + ct + lines, "workspace_bytes": ws,
                         "container_bytes": ct, "audit_bytes": lines, "files": n})
    rows.sort(key=lambda row: (-(row["bytes"] if files is None else row["files"]),
                               row["name"]))
    return rows[:top]
