"""The audit line: one JSON object per proxied request, defined once for every reader.

The proxy builds an :class:`AuditRecord` for each request it answers (its pure core decides
the fields) and hands it to an :class:`AuditLog`, which appends one line to
``CLAUDERON_HOME/audit.jsonl``. The shipper reads the same lines back with
:func:`parse_line`. A record never holds a secret value: the credential is named, never
shown, and query parameters that look secret are redacted by :func:`redact_path` before a
record is built.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

REDACTED = "REDACTED"
#: Free space the audit log's disk must keep for the proxy to forward anything: a request it
#: could not record must not happen, and this holds some hundred thousand lines.
AUDIT_RESERVE_BYTES = 64 * 2**20
#: Free files (inodes) it must keep too: an agent can spend every one on empty files that
#: take no space, and then the log's rotation, the database's journal and every create
#: fail while the disk shows room.
AUDIT_RESERVE_FILES = 4096

# Parameter names that carry secrets in the wild (OAuth codes, signed URLs, API keys).
_SECRET_NAME = re.compile(
    r"(token|key|secret|pass|auth|sig|code|credential|session|jwt|bearer)", re.IGNORECASE
)
# Values that look like a credential whatever the parameter is called.
_SECRET_VALUE = re.compile(
    r"^(sk-|ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|glpat-|xox[abpr]-|npm_|dckr_pat_|eyJ)"
)


class Decision(StrEnum):
    INJECTED = "injected"  # forwarded with a real credential put in
    PASSED = "passed"  # forwarded untouched (no rule, or no credential for the rule)
    BLOCKED = "blocked"  # refused by the session's access mode
    REJECTED = "rejected"  # no or wrong proxy credentials (407)
    DENIED = "denied"  # refused destination (no way home, not listed, egress policy)
    ERROR = "error"  # malformed request or upstream failure
    HONEYTOKEN = "honeytoken"  # the session's placeholder on its way to a foreign host


class Phase(StrEnum):
    """Which line of an exchange that stays open (a WebSocket) this is; None on the one line
    of an ordinary request."""

    OPEN = "open"  # written as the pipe opens: what, where, which credential
    END = "end"  # written as it ends: bytes, duration, outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    ts: str
    id: str
    session: str | None
    method: str
    host: str
    path: str
    status: int
    bytes_in: int
    bytes_out: int
    duration_ms: float
    credential: str | None
    decision: Decision
    error: str | None = None
    #: What the session's controls said, when they said anything: the egress policy's
    #: decision, a spent budget, where a honeytoken was found.
    note: str | None = None
    #: A long-lived exchange has two lines, ``OPEN`` and ``END``; both carry the opening
    #: line's ``id`` in ``stream`` (each line's own ``id`` stays unique).
    phase: Phase | None = None
    stream: str | None = None

    def to_json_line(self) -> str:
        # Built by hand, in field order (a test holds it to the fields): asdict() deep-copies,
        # and a comprehension over getattr costs a visible share of a proxied request.
        body: dict[str, Any] = {
            "ts": self.ts, "id": self.id, "session": self.session, "method": self.method,
            "host": self.host, "path": self.path, "status": self.status,
            "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
            "duration_ms": self.duration_ms, "credential": self.credential,
            "decision": str(self.decision), "error": self.error, "note": self.note,
            "phase": None if self.phase is None else str(self.phase), "stream": self.stream,
        }
        return _encode(body) + "\n"


#: ``json.dumps`` with these options builds a new encoder per call; one is enough.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def outcome(phase: str | None, status: object, duration_ms: object, ts: str) -> str:
    """How a view shows what became of a line's request, the same in every view: an
    exchange still open is open since it opened (the status its opening was answered with
    is not its outcome), its end line ends it (with the status and how long it lasted),
    an ordinary request is its status. Fields as the audit route gives them."""
    if phase == Phase.OPEN:
        return f"open since {ts[11:19]}"
    if phase == Phase.END:
        took = duration_ms / 1000 if isinstance(duration_ms, (int, float)) else None
        return f"ended {status}" + ("" if took is None else f" after {took:.1f} s")
    return str(status)


def parse_line(line: str) -> AuditRecord:
    """Read back one line written by :meth:`AuditRecord.to_json_line` (a line written
    before ``phase`` and ``stream`` were is read with neither)."""
    body = json.loads(line)
    body["decision"] = Decision(body["decision"])
    if body.get("phase") is not None:
        body["phase"] = Phase(body["phase"])
    return AuditRecord(**body)


def redact_path(target: str) -> str:
    """The request target with the values of secret-looking query parameters replaced."""
    if "?" not in target:  # no query (the usual case): nothing to parse
        return target
    parts = urlsplit(target)
    if not parts.query:
        return target
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    out = []
    for name, value in pairs:
        shown = REDACTED if _SECRET_NAME.search(name) or _SECRET_VALUE.match(value) else value
        out.append(f"{quote(name, safe='')}={quote(shown, safe='')}")
    return f"{parts.path}?{'&'.join(out)}"


@dataclass(frozen=True, slots=True)
class Room:
    """Free space on a disk for an unprivileged writer: bytes, and files (None: the
    filesystem sets no number of them)."""

    free_bytes: int
    free_files: int | None

    @property
    def short_of_files(self) -> bool:
        return self.free_files is not None and self.free_files < AUDIT_RESERVE_FILES

    @property
    def full(self) -> bool:
        """Below the audit log's reserve of bytes or of files: forward nothing then."""
        return self.free_bytes < AUDIT_RESERVE_BYTES or self.short_of_files


def room_at(where: int | Path) -> Room:
    """The :class:`Room` on the disk holding ``where`` (a descriptor or a path)."""
    st = os.fstatvfs(where) if isinstance(where, int) else os.statvfs(where)
    return Room(free_bytes=st.f_bavail * st.f_frsize,
                free_files=st.f_favail if st.f_files else None)


class AuditLog:
    """Appends records to ``audit.jsonl`` (O_APPEND, 0600), one ``write`` per line.

    One ``os.write`` of a whole line on an ``O_APPEND`` descriptor keeps lines whole even
    when several processes append at once. :meth:`reopen` follows a rotated file.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._fd = self._open()

    def _open(self) -> int:
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        return fd

    def write(self, record: AuditRecord) -> None:
        data = record.to_json_line().encode()
        with self._lock:
            os.write(self._fd, data)

    def reopen(self) -> None:
        with self._lock:
            old, self._fd = self._fd, self._open()
            os.close(old)

    def room(self) -> Room:
        """Free space on the disk that holds the log (for an unprivileged writer)."""
        with self._lock:  # never a descriptor a reopen is closing
            return room_at(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
