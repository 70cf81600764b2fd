"""Where each session's lines are in ``audit.jsonl``: the index the person's views read by.

Every session's requests are lines of one file, and an agent can send as many as it likes.
A view that searched the file's last few MiB for one session's lines showed nothing once
another session (or this one) had written more than that since; so the audit route
(:mod:`api.browse`) and the timeline (:mod:`appliance.timeline_read`) find a session's lines
through an :class:`AuditIndex` instead.

Theory of operation
-------------------
The index follows the file the way the shipper does, by identity (device and inode), and
holds it open. Each look first reads what was appended since, whole lines only (a line
still being written is read on a later look), and notes for each line its session and
where it lies. A new file at the path is a rotation: the index reads the rotated one to its
end (the writer appended to it until it reopened) and keeps it open, so a neighbour's lines
written before a flood rotated the log stay in its views; the newest :data:`ROTATED`
rotated files are kept (a descriptor each: one the shipper compressed and removed is still
read, and its disk space is freed when the index lets it go). The index reads only when a
view looks, so the log may have rotated more than once since: the rotated files named after
the one it held and before the live one (``audit.jsonl.<stamp>``, or its ``.gz`` once the
shipper compressed it, read into an unlinked file beside it) are read in turn, oldest
first, as if each had been looked at, and held or let go the same way (one at a time: the
disk they take is bounded as before); a file pruned meanwhile is only in the archive. A
compressed file is told by its first bytes (a line's time and id), a plain one by its
inode. Places count the bytes of
every file followed, the live one last, so they only grow. A file shorter than what was
read, or whose first bytes changed, starts the index again. Each byte is read once, however
many looks there are; a look then reads only the lines it returns.

Memory is bounded whatever an agent writes: a session keeps the places of its
:data:`PER_SESSION` newest lines (the most a view asks at once) and at most
:data:`SESSIONS` sessions are kept, the one that wrote least recently forgotten first; the
newest lines of each session in a rotated file let go are kept in memory, :data:`SAVED`
bytes of them (a few hundred requests), the older forgotten: however often one session's
flood rotates the log, another's recent lines stay in view. A session whose older lines were
forgotten says so (:attr:`Found.whole` is false) and a caller that pages further back
searches the live file as before. After a restart the index is built again from the
rotated files the shipper still keeps, oldest first, held or let go as above, then the live
file (a file pruned is the archive's).

:mod:`appliance.audit_scan` is the pure part (bytes in, places out);
:mod:`appliance.audit_rotated` finds and opens the rotated files.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path

from appliance.audit_rotated import CHUNK, HEAD, Followed, missed
from appliance.audit_scan import newest_first, place, scan, unplace

#: Lines of one session whose places are kept: the audit route's largest ``limit``.
PER_SESSION = 1000
#: Sessions kept (the appliance runs far fewer at once): some 12 MiB of places at most.
SESSIONS = 256
#: Rotated files kept readable (a descriptor each, so a compressed and removed one still
#: is): a session's lines stay in view across this many rotations, whoever caused them.
ROTATED = 2
#: Bytes of a session's newest lines kept in memory from the rotated files let go: a flood
#: that rotates the log again and again leaves the neighbours' recent lines in view (some
#: 200 requests of theirs; the flooder's own are of the same bound), 16 MiB at most.
SAVED = 64 * 1024
@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    """A session's lines, oldest first: each with the offset just past its newline.

    Offsets count the bytes of every file the index has followed, the rotated ones it
    still holds first: the live file's byte ``n`` is offset ``base + n``."""

    lines: tuple[tuple[int, bytes], ...]
    #: Nothing of the session lies before the first line (or, with no line, before the
    #: bound asked for): the index has kept every line of it.
    whole: bool
    #: Where the index has read to (the end of its last whole line).
    read: int
    #: Where the live file starts.
    base: int = 0


@dataclass(slots=True)
class _Lines:
    places: deque[int] = field(default_factory=lambda: deque(maxlen=PER_SESSION))
    dropped: bool = False
    #: The lines kept of the rotated files let go, by place (the oldest of ``places``).
    saved: dict[int, bytes] = field(default_factory=dict)
    #: Bytes of every line of the session read (newlines included), kept or forgotten:
    #: what its lines cost the disk the log, its rotated files and the archive are on.
    spent: int = 0


class AuditIndex:
    """An index of one audit file and the rotated files before it; safe to use from several
    threads."""

    def __init__(self, path: Path, *, per_session: int = PER_SESSION,
                 sessions: int = SESSIONS, rotated: int = ROTATED,
                 saved: int = SAVED) -> None:
        self._path = path
        self._per_session = per_session
        self._sessions = sessions
        self._rotated = rotated
        self._saved = saved
        self._lock = threading.Lock()
        self._live: Followed | None = None
        self._held: deque[Followed] = deque()  # rotated files, oldest first
        self._by: OrderedDict[str, _Lines] = OrderedDict()
        self._forgot = False  # some session was forgotten whole

    @property
    def path(self) -> Path:
        return self._path

    def lines(self, session_id: str, limit: int, *, upto: int | None = None) -> Found:
        """The session's newest ``limit`` lines that end (newline included) at or before
        offset ``upto`` (None: anywhere), as the files hold them now."""
        with self._lock:
            self._follow()
            if self._live is None:
                return Found(lines=(), whole=True, read=0)
            return self._pick(session_id, limit, upto)

    def spent(self) -> dict[str, int]:
        """Bytes of each session's lines read since the index started (the rotated files
        still on disk, those let go since, the live file), by session id, of the sessions
        it keeps: whose requests fill the disk when the audit log is what grew (a flood of
        refused requests comes from a session with a tiny workspace)."""
        with self._lock:
            self._follow()
            return {session: kept.spent for session, kept in self._by.items()}

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        for kept in (*self._held, *([self._live] if self._live else [])):
            os.close(kept.fd)
        self._live = None
        self._held.clear()
        self._by.clear()
        self._forgot = False

    def _follow(self) -> None:
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            # Renamed by a rotation and not yet made again by the writer (which appends to
            # the renamed file meanwhile): the file held is still the one written.
            fd = -1
        if fd >= 0:
            st = os.fstat(fd)
            identity = (st.st_dev, st.st_ino)
            live = self._live
            if live is not None and identity == live.identity:
                os.close(fd)
            else:
                last = live
                if live is not None:  # rotated: read what was written to it before reopening
                    self._read_on(live)
                    self._hold(live)
                # Rotated more than once since the last look: the files between; at the
                # first look (the process started), the rotated files still on disk.
                for between in missed(self._path, live, identity, os.pread(fd, HEAD, 0)):
                    self._read_on(between)
                    self._hold(between)
                    last = between
                self._live = Followed(fd=fd, identity=identity,
                                      base=last.end if last is not None else 0)
        live = self._live
        if live is None:
            return
        size = os.fstat(live.fd).st_size
        head = os.pread(live.fd, HEAD, 0)
        if size < live.read or not head.startswith(live.head):
            # Truncated, or rewritten in place: nothing read before holds any more.
            self._live = None
            self._reset()
            self._live = live = Followed(fd=live.fd, identity=live.identity, base=0)
        live.head = head
        self._read_on(live)

    def _hold(self, done: Followed) -> None:
        """Keep a rotated file readable; past :data:`ROTATED` of them, let the oldest go,
        keeping each session's newest lines of it within :data:`SAVED` bytes."""
        self._held.append(done)
        while len(self._held) > self._rotated:
            gone = self._held.popleft()
            floor = place(gone.end, gone.end)
            for kept in self._by.values():
                self._save(kept, gone, floor)
            os.close(gone.fd)

    def _save(self, kept: _Lines, gone: Followed, floor: int) -> None:
        """The session's lines before ``floor`` (saved before, or in ``gone``), newest first,
        while they fit in :data:`SAVED` bytes; the older ones are forgotten."""
        older = 0
        while older < len(kept.places) and kept.places[older] < floor:
            older += 1
        if not older:
            return
        saved: dict[int, bytes] = {}
        room = self._saved
        for at in range(older - 1, -1, -1):
            at_place = kept.places[at]
            start, length = unplace(at_place)
            if length > room:
                break
            room -= length
            line = kept.saved.get(at_place)
            if line is None:
                line = os.pread(gone.fd, length, start - gone.base)
            saved[at_place] = line
        kept.saved = saved
        for _ in range(older - len(saved)):
            kept.places.popleft()
            kept.dropped = True

    def _read_on(self, kept: Followed) -> None:
        size = os.fstat(kept.fd).st_size
        while kept.read < size:
            data = os.pread(kept.fd, min(CHUNK, size - kept.read), kept.read)
            if not data:
                break
            if kept.mid_line:  # no writer of ours writes such a line: walk past it
                newline = data.find(b"\n")
                kept.mid_line = newline < 0
                kept.read += len(data) if newline < 0 else newline + 1
                continue
            found, after = scan(data, kept.end)
            if after == kept.end:
                if len(data) < CHUNK:
                    break  # the last line is still being written
                kept.mid_line = True
                after = kept.end + len(data)
            for session, start, end in found:
                self._note(session, start, end)
            kept.read = after - kept.base

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
        kept.places.append(place(start, end))
        kept.spent += end - start + 1

    def _pick(self, session_id: str, limit: int, upto: int | None) -> Found:
        assert self._live is not None
        read, base = self._live.end, self._live.base
        kept = self._by.get(session_id)
        if kept is None:
            return Found(lines=(), whole=not self._forgot, read=read, base=base)
        chosen: list[tuple[int, int]] = []
        for start, length in newest_first(kept.places):
            if upto is not None and start + length + 1 > upto:
                continue
            if len(chosen) == limit:
                break
            chosen.append((start, length))
        else:
            # Every kept line before the bound was taken: were older ones forgotten?
            chosen.reverse()
            return Found(lines=self._read(kept, chosen), whole=not kept.dropped, read=read,
                         base=base)
        chosen.reverse()
        return Found(lines=self._read(kept, chosen), whole=False, read=read, base=base)

    def _read(self, kept: _Lines, chosen: list[tuple[int, int]]
              ) -> tuple[tuple[int, bytes], ...]:
        files = [*self._held, self._live]
        out = []
        for start, length in chosen:
            held = next((f for f in reversed(files) if f is not None and f.base <= start),
                        None)
            if held is None:  # of a rotated file let go: kept in memory
                line = kept.saved[place(start, start + length)]
            else:
                line = os.pread(held.fd, length, start - held.base)
            out.append((start + length + 1, line))
        return tuple(out)
