"""The shipper's trio shell: stat, decide (:mod:`.follow`), read, deliver, checkpoint.

One task reads and ships in order; nothing runs concurrently with it, so the position in
memory and the checkpoint on disk only ever move forward together. Blocking file work runs
on a worker thread and is never abandoned, so cancellation lands between steps, never in
the middle of a checkpoint or an archive append. :meth:`Shipper.drain` (SIGTERM) lets the
batch in hand finish, stops retrying a failing sink (its batch stays unacknowledged, to be
sent after the restart) and returns.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import trio

from appliance.config import Settings
from appliance.errors import ServiceUnavailable
from appliance.shipper import rotation
from appliance.shipper.archive import ArchiveSink
from appliance.shipper.checkpoint import (
    HEAD_BYTES,
    Checkpoint,
    FileId,
    Position,
    fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from appliance.shipper.follow import (
    Action,
    FileStat,
    is_final,
    next_action,
    resume,
    shipped_rotated,
)
from appliance.shipper.lines import Batch, cut
from appliance.shipper.reopen import Reopener
from appliance.shipper.retry import backoff
from appliance.shipper.ship_metrics import ShipperMetrics
from appliance.shipper.sinks import Sink, SinkFailed

log = logging.getLogger(__name__)

#: While reading a rotated file with no live file beside it, ask the writer this often.
REOPEN_EVERY = 5.0


def stat_file(path: Path) -> FileStat | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return FileStat(path=path, file=FileId.of(st), size=st.st_size)


def read_at(path: Path, file: FileId, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes at ``offset`` of ``path`` if it still is ``file``, else b""."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return b""
    try:
        if FileId.of(os.fstat(fd)) != file:
            return b""
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


class Shipper:
    def __init__(self, settings: Settings, *, archive: ArchiveSink,
                 sinks: Sequence[Sink] = (), reopener: Reopener | None = None,
                 jitter: Callable[[], float] = random.random,
                 metrics: ShipperMetrics | None = None) -> None:
        self._live = settings.audit_path
        self._folder = self._live.parent
        self._base = self._live.name
        self._state_dir = settings.shipper_dir
        self._checkpoint_path = settings.shipper_dir / "checkpoint.json"
        self._archive = archive
        self._sinks: tuple[Sink, ...] = (archive, *sinks)
        self._reopener = reopener
        self._rotate_bytes = settings.shipper_rotate_bytes if reopener is not None else None
        self._keep = settings.shipper_keep_rotated
        self._keep_days = settings.shipper_keep_days
        self._expired_on: date | None = None  # the day the archive was last pruned
        self._poll = settings.shipper_poll_seconds
        self._batch_lines = settings.shipper_batch_lines
        self._batch_bytes = settings.shipper_batch_bytes
        self._retry_max = settings.shipper_retry_max_seconds
        self._jitter = jitter
        self._current: FileStat | None = None
        self._offset = 0
        self._head = b""
        self._last_reopen = -math.inf
        self._stopping = trio.Event()
        self._stopped = trio.Event()
        #: Lines acknowledged by every sink since start (for logs and tests).
        self.shipped = 0
        self.metrics = metrics or ShipperMetrics()

    # --- lifecycle ----------------------------------------------------------------------
    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        try:
            await trio.to_thread.run_sync(self._prepare)
            task_status.started()
            while not self._stopping.is_set():
                await self._expire()
                if await self._step():
                    await self._pause(self._poll)
        finally:
            self._stopped.set()
            log.info("shipper stopped after %d lines", self.shipped)

    async def drain(self, grace: float) -> None:
        log.info("draining (grace %.0fs)", grace)
        self._stopping.set()
        await self._stopped.wait()

    async def _pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when the shipper is stopping."""
        with trio.move_on_after(seconds):
            await self._stopping.wait()
        return self._stopping.is_set()

    # --- start: recover the archive, finish interrupted gzips, find the position --------
    def _prepare(self) -> None:
        self._state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self._state_dir, 0o700)
        checkpoint = load_checkpoint(self._checkpoint_path)
        self._archive.recover(checkpoint.archive)
        live = stat_file(self._live)
        rotated = self._rotated()
        for done in shipped_rotated(checkpoint.position, live, rotated):
            _compress(done.path)
        rotation.tidy(self._folder, self._base, self._keep)
        rotated = self._rotated()
        start = resume(checkpoint.position, live, rotated)
        if start is not None and start.verify and not self._head_matches(
                start.target, checkpoint.position):
            log.warning("%s is not the file the checkpoint names (its start differs); "
                        "reading from the oldest unshipped file", start.target.path)
            start = resume(None, live, rotated)
        if start is None:
            log.info("no audit file yet at %s", self._live)
            return
        self._current, self._offset = start.target, start.offset
        self._head = read_at(start.target.path, start.target.file, 0,
                             min(HEAD_BYTES, start.offset))
        log.info("shipping %s from byte %d", start.target.path, start.offset)

    def _rotated(self) -> list[FileStat]:
        found = (stat_file(p) for p in rotation.list_rotated(self._folder, self._base))
        return [s for s in found if s is not None]

    @staticmethod
    def _head_matches(target: FileStat, position: Position | None) -> bool:
        if position is None:
            return False
        head = read_at(target.path, target.file, 0, position.head_len)
        return len(head) == position.head_len and fingerprint(head) == position.head

    def _locate(self, current: FileStat) -> FileStat | None:
        """``current`` as it is now, wherever it was renamed to."""
        for stat in (stat_file(current.path), stat_file(self._live), *self._rotated()):
            if stat is not None and stat.file == current.file:
                return stat
        return None

    def _save(self) -> None:
        assert self._current is not None
        want = min(HEAD_BYTES, self._offset)
        if len(self._head) < want:
            self._head = read_at(self._current.path, self._current.file, 0, want)
        position = Position(file=self._current.file, offset=self._offset,
                            head=fingerprint(self._head), head_len=len(self._head))
        save_checkpoint(self._checkpoint_path,
                        Checkpoint(position=position, archive=self._archive.mark()))

    async def _checkpoint(self) -> None:
        """Save the position; while the disk refuses (it may be full: the agents can fill
        it), say so and try again, rather than fail and be given up by supervisord."""
        attempt = 0
        while True:
            try:
                await trio.to_thread.run_sync(self._save)
                return
            except OSError as exc:
                delay = backoff(attempt, cap=self._retry_max, jitter=self._jitter())
                attempt += 1
                log.warning("cannot save the position in %s (%s); trying again in %.1fs",
                            self._checkpoint_path, exc.strerror or exc, delay)
                if await self._pause(delay):
                    return

    # --- retention: once a day, the archive's files older than keep_days ---------------
    async def _expire(self) -> None:
        today = datetime.now(UTC).date()
        if self._keep_days <= 0 or self._expired_on == today:
            return
        try:
            gone = await trio.to_thread.run_sync(self._archive.expire, self._keep_days)
        except OSError as exc:
            log.warning("archive: cannot remove the files older than %d days (%s); trying "
                        "again tomorrow", self._keep_days, exc.strerror or exc)
            gone = []
        self._expired_on = today
        if gone:
            log.info("archive: removed %s (%d bytes), every line older than %d days",
                     ", ".join(name for name, _ in gone), sum(n for _, n in gone),
                     self._keep_days)

    # --- one step -------------------------------------------------------------------
    async def _step(self) -> bool:
        """Do one thing; True when there was nothing to do (the caller sleeps)."""
        live = await trio.to_thread.run_sync(stat_file, self._live)  # live first: see follow
        if self._current is None:
            if live is None:
                return True
            self._current, self._offset, self._head = live, 0, b""
        current = await trio.to_thread.run_sync(self._locate, self._current)
        if current is None:
            log.error("%s vanished before it was shipped to its end (byte %d)",
                      self._current.path, self._offset)
            self._current = None
            return False
        self._current = current
        action = next_action(current=current, offset=self._offset, live=live,
                             rotate_bytes=self._rotate_bytes)
        if action is Action.READ:
            return await self._read(current, final=is_final(current, live))
        if action is Action.ROTATE:
            await self._rotate(current)
        elif action is Action.MOVE_ON:
            assert live is not None
            await self._move_on(current, live)
        elif action is Action.RESTART:
            log.warning("%s shrank below byte %d; reading it again from its start",
                        current.path, self._offset)
            self._offset, self._head = 0, b""
        elif action is Action.REOPEN:
            await self._ask_reopen(force=False)
            return True
        return action is Action.WAIT

    async def _read(self, current: FileStat, *, final: bool) -> bool:
        chunk = await trio.to_thread.run_sync(
            read_at, current.path, current.file, self._offset, self._batch_bytes)
        at_end = self._offset + len(chunk) >= current.size
        piece = cut(chunk, max_lines=self._batch_lines,
                    full=len(chunk) >= self._batch_bytes, final=final and at_end)
        if not piece.lines:
            return True
        if piece.torn:
            log.warning("%s: a line without its newline at byte %d, shipped as it is",
                        current.path, self._offset + piece.used)
        batch = Batch(file=current.file, start=self._offset, end=self._offset + piece.used,
                      lines=piece.lines)
        if not await self._deliver(batch):
            return True
        self._offset = batch.end
        await self._checkpoint()
        self.shipped += len(batch.lines)
        self.metrics.lines.inc(len(batch.lines))
        self.metrics.bytes.inc(batch.end - batch.start)
        log.debug("shipped %d lines (%s)", len(batch.lines), batch.key)
        return False

    async def _deliver(self, batch: Batch) -> bool:
        """Every sink acknowledged ``batch`` (True), or the shipper is stopping (False)."""
        attempt = 0
        for sink in self._sinks:
            while True:
                try:
                    await sink.send(batch)
                    break
                except SinkFailed as exc:
                    self.metrics.sink_failures.labels(sink=sink.name).inc()
                    delay = backoff(attempt, cap=self._retry_max, jitter=self._jitter())
                    attempt += 1
                    log.warning("%s; sending again in %.1fs (attempt %d)", exc.message,
                                delay, attempt + 1)
                    if await self._pause(delay):
                        return False
        return True

    # --- rotation -------------------------------------------------------------------
    async def _rotate(self, current: FileStat) -> None:
        target = self._folder / rotation.rotated_name(self._base, datetime.now(UTC))
        await trio.to_thread.run_sync(os.rename, current.path, target)
        self._current = FileStat(path=target, file=current.file, size=current.size)
        self.metrics.rotations.inc()
        log.info("rotated %s (%d bytes) to %s", current.path, current.size, target.name)
        await self._ask_reopen(force=True)

    async def _ask_reopen(self, *, force: bool) -> None:
        now = trio.current_time()
        if self._reopener is None or (not force and now - self._last_reopen < REOPEN_EVERY):
            return
        self._last_reopen = now
        try:
            await self._reopener.reopen()
        except ServiceUnavailable as exc:
            log.warning("%s; the writer keeps appending to the rotated file meanwhile",
                        exc.message)

    async def _move_on(self, done: FileStat, live: FileStat) -> None:
        rest = [s for s in await trio.to_thread.run_sync(self._rotated) if s.file != done.file]
        self._current, self._offset, self._head = (rest[0] if rest else live), 0, b""
        await self._checkpoint()
        log.info("finished %s; now reading %s", done.path.name, self._current.path.name)
        await trio.to_thread.run_sync(self._finish, done.path)

    def _finish(self, path: Path) -> None:
        target = _compress(path)
        gone = rotation.tidy(self._folder, self._base, self._keep)
        if target is not None:
            log.info("compressed %s; removed %s", target.name, ", ".join(gone) or "nothing")


def _compress(path: Path) -> Path | None:
    """:func:`rotation.compress`, or None when the disk refuses (it may be full: the agents
    can fill it). The shipped file then stays whole, compressed at a later start; the
    shipper goes on, rather than failing at every start until the service is given up."""
    try:
        return rotation.compress(path)
    except OSError as exc:
        log.warning("cannot compress %s (%s); it stays as it is until a later start",
                    path.name, exc.strerror or exc)
        return None
