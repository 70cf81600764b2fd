"""The local archive sink: daily ``CLAUDERON_HOME/archive/audit-YYYY-MM-DD.jsonl.gz``.

Each batch is appended as one gzip member (a file of concatenated members is a valid gzip
file: ``gzip.open``/``zcat`` read it whole) and fsynced before ``send`` returns. The day is
the day the batch is shipped (UTC), never earlier than the last day written, so names only
grow even if the clock steps back.

Exactly once: the checkpoint stores :meth:`ArchiveSink.mark` (last file, its size) together
with the read offset. :meth:`ArchiveSink.recover` runs before the first batch after a
start: it cuts the last file back to the recorded size and removes later files, which
drops a torn member (crash mid-write) and a batch written but never checkpointed, which
the shipper is about to send again.

Retention: :meth:`ArchiveSink.expire` removes the files of days older than
``[shipper] keep_days`` (:func:`expired` decides, by name). A file's name is the day the
shipper wrote its last batch, never earlier than any day before it, and every line was
written by the proxy before it was shipped: so the name's day is at least the day of the
file's newest line, whatever a request's headers, path or body say. Never by size: a flood
would then push out the lines of its own earlier requests.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import trio

from appliance.shipper.checkpoint import ArchiveMark
from appliance.shipper.lines import Batch
from appliance.shipper.sinks import SinkFailed

log = logging.getLogger(__name__)

PREFIX = "audit-"
SUFFIX = ".jsonl.gz"


def day_name(now: datetime, last: ArchiveMark | None) -> str:
    name = f"{PREFIX}{now.astimezone(UTC).strftime('%Y-%m-%d')}{SUFFIX}"
    return max(name, last.name) if last is not None else name


def is_archive(name: str) -> bool:
    return name.startswith(PREFIX) and name.endswith(SUFFIX)


def day_of(name: str) -> date | None:
    """The day an archive file's name carries (None: not a name the shipper makes)."""
    if not is_archive(name):
        return None
    try:
        return date.fromisoformat(name[len(PREFIX):-len(SUFFIX)])
    except ValueError:
        return None


def expired(names: Iterable[str], today: date, keep_days: int,
            current: str | None = None) -> list[str]:
    """The archive files whose every line is older than ``keep_days`` days before
    ``today`` (pure; 0 keeps every file), oldest first: those whose name's day is before
    ``today - keep_days``. Never ``current`` (the file the last batch went to), today's, or
    a name the shipper does not make."""
    if keep_days <= 0:
        return []
    cutoff = today - timedelta(days=keep_days)
    return sorted(n for n in names
                  if n != current and (day := day_of(n)) is not None and day < cutoff)


class ArchiveSink:
    name = "archive"

    def __init__(self, folder: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self._folder = folder
        self._clock = clock or (lambda: datetime.now(UTC))
        self._mark: ArchiveMark | None = None

    def mark(self) -> ArchiveMark | None:
        return self._mark

    def recover(self, mark: ArchiveMark | None) -> None:
        """Undo whatever was appended after ``mark`` was checkpointed (blocking I/O)."""
        self._folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self._folder, 0o700)
        self._mark = mark
        for path in sorted(self._folder.iterdir()):
            if not is_archive(path.name):
                continue
            if mark is None or path.name > mark.name:
                log.warning("archive: removing %s, written after the last checkpoint",
                            path.name)
                path.unlink()
            elif path.name == mark.name and path.stat().st_size > mark.size:
                log.warning("archive: cutting %s back to %d bytes (unacknowledged tail)",
                            path.name, mark.size)
                os.truncate(path, mark.size)

    def expire(self, keep_days: int) -> list[tuple[str, int]]:
        """Remove the files older than ``keep_days`` (:func:`expired`, by this sink's
        clock; blocking I/O): each name removed and its bytes."""
        today = self._clock().astimezone(UTC).date()
        current = None if self._mark is None else self._mark.name
        gone: list[tuple[str, int]] = []
        for name in expired(os.listdir(self._folder), today, keep_days, current):
            path = self._folder / name
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            gone.append((name, size))
        return gone

    def _append(self, body: bytes) -> ArchiveMark:
        name = day_name(self._clock(), self._mark)
        member = gzip.compress(body, compresslevel=6, mtime=0)
        fd = os.open(self._folder / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, member)
            os.fsync(fd)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        return ArchiveMark(name=name, size=size)

    async def send(self, batch: Batch) -> None:
        try:
            self._mark = await trio.to_thread.run_sync(self._append, batch.body)
        except OSError as exc:
            raise SinkFailed(f"archive: cannot append to {self._folder}: {exc}") from exc
