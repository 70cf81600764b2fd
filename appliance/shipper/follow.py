"""Pure decisions for following a file that gets rotated: where to resume, what to do next.

The shell (:mod:`.ship_loop`) stats the files and asks; these functions never touch the disk.

Ordering matters for :func:`next_action`: the shell stats the *live* path first and the
file being read second. The writer opens the new live file before it closes the old one
(and never writes between the two, see :class:`appliance.audit.AuditLog`), so once a new
live file has been seen, a size of the old file observed afterwards is its final size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from appliance.shipper.checkpoint import FileId, Position


@dataclass(frozen=True, slots=True, kw_only=True)
class FileStat:
    path: Path
    file: FileId
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    """Read ``target`` from ``offset``; ``verify`` when the offset came from a checkpoint."""

    target: FileStat
    offset: int
    verify: bool


def resume(position: Position | None, live: FileStat | None,
           rotated: Sequence[FileStat]) -> Start | None:
    """Where to start reading after a (re)start; None when there is nothing to read yet.

    ``rotated`` are the uncompressed rotated files, oldest first. The checkpointed file is
    found by identity wherever it is now; without a usable checkpoint the oldest unshipped
    file is read from its start (at-least-once: lines may be sent again, never skipped).
    """
    candidates = [*rotated, *([live] if live else [])]
    if position is not None:
        for stat in candidates:
            if stat.file == position.file and stat.size >= position.offset:
                return Start(target=stat, offset=position.offset, verify=True)
    if not candidates:
        return None
    return Start(target=candidates[0], offset=0, verify=False)


def shipped_rotated(position: Position | None, live: FileStat | None,
                    rotated: Sequence[FileStat]) -> list[FileStat]:
    """Rotated files already shipped, which only lack their gzip (a crash came in between).

    The shipper rotates only the file it reads and finishes a rotated file before the next
    one, so every rotated file older than the checkpointed one is done. When the checkpoint
    names no file we can find, none is assumed done (send again rather than skip).
    """
    if position is None:
        return []
    if live is not None and live.file == position.file:
        return list(rotated)
    for i, stat in enumerate(rotated):
        if stat.file == position.file:
            return list(rotated[:i])
    return []


class Action(StrEnum):
    READ = "read"  # bytes are waiting in the file being read
    ROTATE = "rotate"  # the live file reached the limit: rename it, ask the writer to reopen
    MOVE_ON = "move_on"  # the rotated file is read to its end and a new live file exists
    RESTART = "restart"  # the file shrank under us (truncated by someone): start over at 0
    REOPEN = "reopen"  # reading a rotated file, no live file yet: ask the writer (again)
    WAIT = "wait"  # caught up


def next_action(*, current: FileStat, offset: int, live: FileStat | None,
                rotate_bytes: int | None) -> Action:
    """The next step; ``live`` must have been observed before ``current``."""
    if current.size < offset:
        return Action.RESTART
    is_live = live is not None and live.file == current.file
    if is_live and rotate_bytes is not None and current.size >= rotate_bytes:
        return Action.ROTATE
    if current.size > offset:
        return Action.READ
    if is_live:
        return Action.WAIT
    return Action.REOPEN if live is None else Action.MOVE_ON


def is_final(current: FileStat, live: FileStat | None) -> bool:
    """True when nothing more will be appended to ``current`` (a new live file exists)."""
    return live is not None and live.file != current.file
