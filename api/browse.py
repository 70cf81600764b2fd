"""Reading a session's worktree for the browser: safe paths, listings, files, the diff,
uploaded images and the session's audit lines.

Synchronous functions, called from :mod:`api.file_routes` through ``trio.to_thread``. The worktree
is written by the agent while we read it, so listings and files go through the session's
:class:`~appliance.readers.WorkspaceReader` (:mod:`appliance.safefs` on this host, or
:mod:`appliance.podfs` inside a pod: symlinks never followed either way), and uploads
through :mod:`appliance.safefs`.
"""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from appliance import safefs
from appliance.audit import Phase, cut_off, parse_line
from appliance.audit_index import AuditIndex
from appliance.errors import ClauderonError, PayloadTooLarge, UnsupportedMediaType
from appliance.multirepo import RepoView
from appliance.readers import WorkspaceReader
from appliance.timeline_read import proxy_run

FILE_LIMIT = 1024 * 1024  # bytes of one file shown in the viewer
LIST_LIMIT = 10_000  # entries of one folder: an agent can make millions
#: The JSON of one folder's names and paths at most (built on the API's one loop): 10,000
#: ordinary names take a tenth of it; an agent's that swell when escaped are cut.
LIST_BYTES = 4 * 1024 * 1024
#: An entry's JSON besides its name and path (its keys, its type, its size).
ENTRY_JSON = 64
UPLOAD_LIMIT = 10 * 1024 * 1024
HIDDEN = frozenset({".git"})

#: Magic numbers of the image types an agent can read; the browser's MIME type is a hint only.
IMAGE_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"GIF87a", "image/gif", ".gif"),
    (b"GIF89a", "image/gif", ".gif"),
)


def json_size(text: str) -> int:
    """The bytes ``text`` takes as a JSON string the API writes: every character outside
    printable ASCII is escaped (a control character or a letter of another script is six
    bytes, ``\\u0001``; one outside the BMP twelve)."""
    return len(json.dumps(text))


def within(listing: safefs.Listing, budget: int) -> safefs.Listing:
    """``listing``'s first entries whose names and paths take at most ``budget`` bytes of
    JSON, cut past them and saying so. An agent's names can be 255 bytes in a folder 4,096
    bytes deep, each byte six in JSON: 10,000 such entries would be a quarter of a GiB."""
    spent = 0
    for n, e in enumerate(listing.entries):
        spent += json_size(e.name) + json_size(e.path) + ENTRY_JSON
        if spent > budget:
            return replace(listing, entries=listing.entries[:n], truncated=True)
    return listing


def list_dir(reader: WorkspaceReader, rel: str, view: RepoView | None = None) -> dict[str, Any]:
    """One folder of the worktree of one repository (``None``: the primary)."""
    parts = safefs.parse(rel)
    with reader.workspace(view) as tree:
        listing = within(tree.list_dir(parts, hidden=HIDDEN, limit=LIST_LIMIT),
                                LIST_BYTES)
    return {"path": listing.path, "truncated": listing.truncated,
            "entries": [{"name": e.name, "path": e.path, "type": str(e.kind), "size": e.size}
                        for e in listing.entries]}


def read_file(reader: WorkspaceReader, rel: str, view: RepoView | None = None) -> dict[str, Any]:
    """One regular file of one repository's worktree: its first :data:`FILE_LIMIT` bytes,
    as text."""
    parts = safefs.parse(rel)
    with reader.workspace(view) as tree, tree.open_file(parts) as f:
        data = f.read_at(0, FILE_LIMIT)
        path, size = f.path, f.size
    binary = b"\x00" in data[:8192]
    text = "" if binary else data.decode("utf-8", errors="replace")
    return {"path": path, "size": size, "binary": binary,
            "truncated": size > FILE_LIMIT, "text": text}


DIFF_KEYS = ("base_ref", "merge_base", "files", "diff", "truncated", "committed",
             "uncommitted", "note")


def diff(reader: WorkspaceReader, views: Sequence[RepoView]) -> dict[str, Any]:
    """A section per repository of ``views`` (the primary, or the one asked for, first).
    The first one's fields are also the body's own, for clients that read one repository,
    and its failure is the request's (as with one repository); a further repository that
    cannot be read (the agent broke its HEAD) says so in its section and hides nothing
    else."""
    sections = []
    for i, view in enumerate(views):
        error = None
        try:
            body = reader.diff(view)
        except ClauderonError as exc:
            if i == 0:
                raise
            body = {"base_ref": view.base_ref, "merge_base": None, "files": [], "diff": "",
                    "truncated": False, "uncommitted": None, "note": None,
                    "committed": {"commit": None, "files": [], "diff": "", "truncated": False}}
            error = exc.message
        sections.append({"repo": view.key, "name": view.label, "primary": view.primary,
                         "path": view.container_path, **body, "error": error})
    return {"repo": sections[0]["repo"], **{k: sections[0][k] for k in DIFF_KEYS},
            "repos": sections}


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


def owner_of(candidates: tuple[Path, ...]) -> tuple[int, int] | None:
    """The uid and gid uploads are handed to when we run as root: the owner of the first
    of ``candidates`` that is a real folder (``lstat``: a symlink names nobody)."""
    if os.geteuid() != 0:
        return None
    for path in candidates:
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            return None if st.st_uid == 0 else (st.st_uid, st.st_gid)
    return None


def store_upload(uploads: Path, session_id: str, filename: str, data: bytes,
                 owner: tuple[int, int] | None) -> Stored:
    """Write an image as a new file in ``uploads/<session_id>``, owned by ``owner`` (the
    agent, not root, must be able to read it). The folder stays the appliance's (0755): the
    agent reads it through a read-only mount and never needs to write it."""
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
    with safefs.child_dir(uploads, session_id, mode=0o755) as folder:
        safefs.write_new(folder, name, data, mode=0o644, owner=owner)
    return Stored(path=uploads / session_id / name, name=name, mime=mime, size=len(data))


def audit_lines(index: AuditIndex, session_id: str, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` audit records of one session (newest last), found through the
    audit file's index: however much other sessions write, these stay in view."""
    records = []
    for _, raw in index.lines(session_id, limit).lines:
        try:
            record = parse_line(raw.decode("utf-8", errors="replace"))
        except (ValueError, TypeError, KeyError):
            continue  # a torn or foreign line is skipped, not fatal
        if record.session == session_id:
            records.append(record)
    ended = {r.stream for r in records if r.phase is Phase.END and r.stream is not None}
    run = proxy_run(index)
    found = []
    for record in records:
        body = asdict(record)
        body["decision"] = str(record.decision)
        # An exchange a killed proxy left open: no end line will ever come.
        body["cut_off"] = cut_off(record.phase, record.stream, ended, run)
        found.append(body)
    return found
