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
from collections.abc import Container
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from appliance.durable import replace_file

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


#: The ``session`` of the line the proxy writes as it starts: no session's (an id the
#: appliance makes has no parentheses), so no session's view shows it and the audit index
#: finds the newest one as it finds a session's lines. Its ``stream`` is the run's id.
PROXY_RUN = "(proxy)"
#: What a view shows for an exchange an earlier run of the proxy opened and never ended.
CUT_OFF = "cut off (the proxy restarted)"


def started(run: str, ts: str) -> AuditRecord:
    """The line the proxy writes as it starts (before it takes a connection): an older
    reader reads it as a request of no session it knows."""
    return AuditRecord(ts=ts, id=run, session=PROXY_RUN, method="START", host="-", path="-",
                       status=0, bytes_in=0, bytes_out=0, duration_ms=0.0, credential=None,
                       decision=Decision.PASSED, note="the proxy started", stream=run)


#: The file beside the log naming the run of the proxy that started last: its start-up line
#: again, alone. The views read the run there, as no bound of the log's index and no pruning
#: of a rotated file loses it (the line in the log is the archive's).
RUN_FILE = "proxy-run.json"


def record_run(log: Path, line: AuditRecord) -> None:
    """Write the start-up ``line`` as the file beside ``log`` that names the run, replacing
    it whole. The old one goes first: one this run could not replace names no run, and the
    views then look for the newest start-up line in the log."""
    path = log.with_name(RUN_FILE)
    path.unlink(missing_ok=True)
    replace_file(path, line.to_json_line().encode())


def recorded_run(log: Path) -> str | None:
    """The run named beside ``log`` (:func:`record_run`), or None: no such file (a proxy
    from before it), or one that is not a start-up line."""
    try:
        with log.with_name(RUN_FILE).open("rb") as fh:
            raw = fh.read(4096)
        record = parse_line(raw.decode("utf-8", "replace"))
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return record.stream if record.session == PROXY_RUN and record.method == "START" else None


def run_of(stream: str | None) -> str | None:
    """The proxy run that opened an exchange: its ``stream`` is ``<run>.<n>`` (None: a line
    written before streams named their run, or none)."""
    if stream is None or "." not in stream:
        return None
    return stream.split(".", 1)[0]


def cut_off(phase: str | None, stream: str | None, ended: Container[str],
            run: str | None) -> bool:
    """Whether an exchange's opening line is of one the proxy's death cut off: opened by a
    run other than ``run`` (the newest that started) and with no end line among ``ended``
    (the ``stream`` of each end line the view read). A run ends every exchange it opened
    as it stops; one killed writes no end line, and its exchanges died with it."""
    if phase != Phase.OPEN or run is None or stream in ended:
        return False
    opened = run_of(stream)
    return opened is not None and opened != run


def outcome(phase: str | None, status: object, duration_ms: object, ts: str, *,
            cut: bool = False) -> str:
    """How a view shows what became of a line's request, the same in every view: an
    exchange still open is open since it opened (the status its opening was answered with
    is not its outcome), unless the proxy that opened it died (``cut``, :func:`cut_off`);
    its end line ends it (with the status and how long it lasted), an ordinary request is
    its status. Fields as the audit route gives them."""
    if phase == Phase.OPEN:
        return CUT_OFF if cut else f"open since {ts[11:19]}"
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

    def write(self, record: AuditRecord) -> int:
        """Append ``record``'s line; its bytes."""
        data = record.to_json_line().encode()
        with self._lock:
            os.write(self._fd, data)
        return len(data)

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
