"""Reading a session's worktree for the browser: safe paths, listings, files, the diff,
uploaded images and the session's audit lines.

Synchronous functions, called from :mod:`api.files` through ``trio.to_thread``. Every path a
client names goes through :func:`inside`, the one place that refuses ``..``, absolute paths
and symlinks that lead out of the worktree; the rest trusts what it returns.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from appliance.audit import parse_line
from appliance.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType

FILE_LIMIT = 1024 * 1024  # bytes of one file shown in the viewer
UPLOAD_LIMIT = 10 * 1024 * 1024
AUDIT_TAIL = 8 * 1024 * 1024  # only the end of a long audit log is searched
HIDDEN = frozenset({".git"})

#: Magic numbers of the image types an agent can read; the browser's MIME type is a hint only.
IMAGE_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"GIF87a", "image/gif", ".gif"),
    (b"GIF89a", "image/gif", ".gif"),
)


def inside(root: Path, rel: str) -> Path:
    """``rel`` resolved under ``root``; :class:`InvalidInput` (400) if it would escape."""
    if "\x00" in rel:
        raise InvalidInput("the path holds a NUL byte", field="path")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or rel.startswith("~"):
        raise InvalidInput(f"{rel!r} is absolute; give a path relative to the worktree",
                           field="path")
    if ".." in pure.parts:
        raise InvalidInput(f"{rel!r} climbs out with '..'; give a path inside the worktree",
                           field="path")
    base = root.resolve()
    target = (base / pure).resolve()
    if target != base and base not in target.parents:
        raise InvalidInput(f"{rel!r} leads outside the worktree (through a symlink)",
                           field="path")
    return target


def _rel(root: Path, path: Path) -> str:
    out = path.relative_to(root.resolve()).as_posix()
    return "" if out == "." else out


def list_dir(root: Path, rel: str) -> dict[str, Any]:
    target = inside(root, rel)
    if not target.exists():
        raise NotFound(f"{rel!r} does not exist in the worktree")
    if not target.is_dir():
        raise InvalidInput(f"{rel!r} is a file; open it with /file", field="path")
    entries: list[dict[str, Any]] = []
    for entry in os.scandir(target):
        if entry.name in HIDDEN:
            continue
        kind = "symlink" if entry.is_symlink() else "dir" if entry.is_dir() else "file"
        size = entry.stat(follow_symlinks=False).st_size if kind == "file" else None
        entries.append({"name": entry.name, "path": _rel(root, target / entry.name),
                        "type": kind, "size": size})
    entries.sort(key=lambda e: (e["type"] != "dir", e["name"].lower()))
    return {"path": _rel(root, target), "entries": entries}


def read_file(root: Path, rel: str) -> dict[str, Any]:
    target = inside(root, rel)
    if not target.is_file():
        raise NotFound(f"{rel!r} is not a file in the worktree")
    size = target.stat().st_size
    with target.open("rb") as fh:
        data = fh.read(FILE_LIMIT)
    binary = b"\x00" in data[:8192]
    text = "" if binary else data.decode("utf-8", errors="replace")
    return {"path": _rel(root, target), "size": size, "binary": binary,
            "truncated": size > FILE_LIMIT, "text": text}


def sniff_image(head: bytes) -> tuple[str, str] | None:
    for magic, mime, ext in IMAGE_MAGIC:
        if head.startswith(magic):
            return mime, ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", ".webp"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Stored:
    path: Path
    name: str
    mime: str
    size: int


def store_upload(folder: Path, filename: str, data: bytes, owners: tuple[Path, ...]) -> Stored:
    """Write an image under ``folder``, owned (when we run as root) like the first of
    ``owners`` that exists: the agent, not root, must be able to read it."""
    if len(data) > UPLOAD_LIMIT:
        raise PayloadTooLarge(f"the image is {len(data)} bytes; the limit is 10 MB",
                              field="file")
    kind = sniff_image(data[:16])
    if kind is None:
        raise UnsupportedMediaType("only PNG, JPEG, GIF and WebP images can be attached",
                                   field="file")
    mime, ext = kind
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).stem)[:60].strip("._") or "image"
    name = f"{uuid.uuid4().hex[:12]}_{stem}{ext}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    owner = next((p for p in owners if p.exists()), None)
    st = owner.stat() if owner is not None else None
    if os.geteuid() == 0 and st is not None and st.st_uid != 0:
        os.chown(folder, st.st_uid, st.st_gid)
        os.chown(path, st.st_uid, st.st_gid)
    return Stored(path=path, name=name, mime=mime, size=len(data))


def audit_lines(path: Path, session_id: str, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` audit records of one session (newest last)."""
    if not path.exists():
        return []
    found: deque[dict[str, Any]] = deque(maxlen=limit)
    needle = f'"session":"{session_id}"'
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - AUDIT_TAIL))
        if size > AUDIT_TAIL:
            fh.readline()  # the first line read from the middle is partial
        for raw in fh:
            line = raw.decode("utf-8", errors="replace")
            if needle not in line:
                continue
            try:
                record = parse_line(line)
            except (ValueError, TypeError, KeyError):
                continue  # a torn or foreign line is skipped, not fatal
            if record.session == session_id:
                body = asdict(record)
                body["decision"] = str(record.decision)
                found.append(body)
    return list(found)
