"""Where each session's lines are in ``audit.jsonl``: the index the person's views read by.

Every session's requests are lines of one file, and an agent can send as many as it likes.
A view that searched the file's last few MiB for one session's lines showed nothing once
another session (or this one) had written more than that since; so the audit route
(:mod:`api.browse`) and the timeline (:mod:`appliance.timeline_read`) find a session's lines
through an :class:`AuditIndex` instead.

Theory of operation
-------------------
The index follows the file the way the shipper does: it remembers the file's identity
(device, inode and first bytes) and how far it has read. Each look first reads what was
appended since, whole lines only (a line still being written is read on a later look), and
notes for each line its session and where it lies. A new identity, or a file shorter than
what was read, is a rotation: the index starts again on the new file (the rotated one is
the archive's). Each byte of the file is read once, however many looks there are; a look
then reads only the lines it returns.

Memory is bounded whatever an agent writes: a session keeps the places of its
:data:`PER_SESSION` newest lines (the most a view asks at once) and at most
:data:`SESSIONS` sessions are kept, the one that wrote least recently forgotten first. A
session whose older lines were forgotten says so (:attr:`Found.whole` is false) and a caller
that pages further back searches the file as before. After a restart the index is built
again from the file's start.

:func:`scan` and :func:`session_of` are the pure part: bytes in, places out.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: Lines of one session whose places are kept: the audit route's largest ``limit``.
PER_SESSION = 1000
#: Sessions kept (the appliance runs far fewer at once): some 12 MiB of places at most.
SESSIONS = 256
#: Bytes read at a time while following the file.
CHUNK = 4 * 2**20
#: A line's length is kept in the low bits of its place (a line is far shorter than this:
#: the proxy bounds what it records).
_LENGTH_BITS = 24
_KEY = b'"session":'
#: Bytes of the file's start that tell it from another that took its inode (its first
#: line's time and request id).
HEAD = 64


def session_of(line: bytes) -> str | None:
    """The session a line was written for (None: none, or not an audit line).

    The writer puts ``session`` third, after its own time and id, and escapes every quote
    inside a value, so the first ``"session":`` of a line is the key, whatever a path
    says."""
    at = line.find(_KEY)
    if at < 0:
        return None
    value = line[at + len(_KEY):]
    if not value.startswith(b'"'):
        return None  # null
    end = value.find(b'"', 1)
    if end < 0:
        return None
    name = value[1:end]
    if b"\\" in name:
        return None  # never an id the appliance makes
    return name.decode("utf-8", "replace")


def scan(data: bytes, base: int) -> tuple[list[tuple[str, int, int]], int]:
    """The whole lines of ``data`` (read from byte ``base`` of the file, at the start of a
    line) that name a session: the session, where the line starts and where it ends (its
    newline excluded); and where the first line not whole in ``data`` starts."""
    out: list[tuple[str, int, int]] = []
    at = 0
    while (end := data.find(b"\n", at)) >= 0:
        session = session_of(data[at:end])
        if session is not None and end - at < 1 << _LENGTH_BITS:
            out.append((session, base + at, base + end))
        at = end + 1
    return out, base + at


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    """A session's lines, oldest first: each with the offset just past its newline."""

    lines: tuple[tuple[int, bytes], ...]
    #: Nothing of the session lies before the first line (or, with no line, before the
    #: bound asked for): the index has kept every line of it.
    whole: bool
    #: The bytes of the file the index has read (the end of its last whole line).
    read: int


@dataclass(slots=True)
class _Lines:
    places: deque[int] = field(default_factory=lambda: deque(maxlen=PER_SESSION))
    dropped: bool = False


class AuditIndex:
    """An index of one audit file; safe to use from several threads."""

    def __init__(self, path: Path, *, per_session: int = PER_SESSION,
                 sessions: int = SESSIONS) -> None:
        self._path = path
        self._per_session = per_session
        self._sessions = sessions
        self._lock = threading.Lock()
        self._identity: tuple[int, int] | None = None
        self._head = b""  # the file's first bytes: an inode number can be given again
        self._read = 0
        self._mid_line = False  # past a line longer than a chunk, not yet at its end
        self._by: OrderedDict[str, _Lines] = OrderedDict()
        self._forgot = False  # some session was forgotten whole

    @property
    def path(self) -> Path:
        return self._path

    def lines(self, session_id: str, limit: int, *, upto: int | None = None) -> Found:
        """The session's newest ``limit`` lines that end (newline included) at or before
        byte ``upto`` (None: anywhere), as the file holds them now."""
        with self._lock:
            try:
                fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                self._reset(None)
                return Found(lines=(), whole=True, read=0)
            try:
                self._follow(fd)
                return self._pick(fd, session_id, limit, upto)
            finally:
                os.close(fd)

    def _reset(self, identity: tuple[int, int] | None, head: bytes = b"") -> None:
        self._identity, self._read, self._mid_line = identity, 0, False
        self._head = head
        self._by.clear()
        self._forgot = False

    def _follow(self, fd: int) -> None:
        st = os.fstat(fd)
        identity = (st.st_dev, st.st_ino)
        head = os.pread(fd, HEAD, 0)
        if (identity != self._identity or st.st_size < self._read
                or not head.startswith(self._head)):
            self._reset(identity, head)  # rotated, truncated, or a new file after a restart
        self._head = head
        while self._read < st.st_size:
            data = os.pread(fd, min(CHUNK, st.st_size - self._read), self._read)
            if not data:
                break
            if self._mid_line:  # no writer of ours writes such a line: walk past it
                newline = data.find(b"\n")
                self._mid_line = newline < 0
                self._read += len(data) if newline < 0 else newline + 1
                continue
            found, after = scan(data, self._read)
            if after == self._read:
                if len(data) < CHUNK:
                    break  # the last line is still being written
                self._mid_line = True
                after = self._read + len(data)
            for session, start, end in found:
                self._note(session, start, end)
            self._read = after

    def _note(self, session: str, start: int, end: int) -> None:
        kept = self._by.get(session)
        if kept is None:
            if len(self._by) >= self._sessions:
                self._by.popitem(last=False)
                self._forgot = True
            kept = self._by[session] = _Lines(places=deque(maxlen=self._per_session),
                                              dropped=self._forgot)
        else:
            self._by.move_to_end(session)
        if len(kept.places) == kept.places.maxlen:
            kept.dropped = True
        kept.places.append(start << _LENGTH_BITS | (end - start))

    def _pick(self, fd: int, session_id: str, limit: int, upto: int | None) -> Found:
        kept = self._by.get(session_id)
        if kept is None:
            return Found(lines=(), whole=not self._forgot, read=self._read)
        chosen: list[tuple[int, int]] = []
        for start, length in _newest_first(kept.places):
            if upto is not None and start + length + 1 > upto:
                continue
            if len(chosen) == limit:
                break
            chosen.append((start, length))
        else:
            # Every kept line before the bound was taken: were older ones forgotten?
            chosen.reverse()
            return Found(lines=_read(fd, chosen), whole=not kept.dropped, read=self._read)
        chosen.reverse()
        return Found(lines=_read(fd, chosen), whole=False, read=self._read)


def _newest_first(places: deque[int]) -> Iterator[tuple[int, int]]:
    mask = (1 << _LENGTH_BITS) - 1
    for place in reversed(places):
        yield place >> _LENGTH_BITS, place & mask


def _read(fd: int, chosen: list[tuple[int, int]]) -> tuple[tuple[int, bytes], ...]:
    return tuple((start + length + 1, os.pread(fd, length, start)) for start, length in chosen)
