"""Reading inside a tree an agent controls, never following a symlink.

The host reads files an agent can change at any moment (its workspace's refs, for one).
Every path is walked one component at a time from a directory descriptor, each folder
opened with ``O_DIRECTORY | O_NOFOLLOW`` relative to the last, the file itself with
``O_NOFOLLOW | O_NONBLOCK`` (a FIFO must not block us) and checked to be a regular file
with ``fstat`` on what was opened: there is no moment between a check and a use.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class NotRegular(OSError):
    """The path names something that is not a regular file (a folder, a FIFO, a device)."""


def _check_part(part: str) -> None:
    if part in ("", ".", "..") or "/" in part or "\x00" in part:
        raise FileNotFoundError(f"bad path component {part!r}")


def open_dir(root: Path, parts: Sequence[str]) -> int:
    """A descriptor of the folder ``root/parts...``; raises OSError (ELOOP on a symlink)."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts:
            _check_part(part)
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def is_dir(root: Path, parts: Sequence[str]) -> bool:
    try:
        os.close(open_dir(root, parts))
    except OSError:
        return False
    return True


def open_file(root: Path, parts: Sequence[str]) -> int:
    """A descriptor of the regular file ``root/parts...``, opened without following links."""
    if not parts:
        raise NotRegular("no file named")
    parent = open_dir(root, parts[:-1])
    try:
        _check_part(parts[-1])
        fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=parent)
    finally:
        os.close(parent)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegular(f"{'/'.join(parts)} is not a regular file")
    return fd


def read_bytes(root: Path, parts: Sequence[str], *, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file under ``root``."""
    fd = open_file(root, parts)
    try:
        chunks: list[bytes] = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
