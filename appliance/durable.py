"""A small file replaced whole and durably: what a crash leaves is the old file or the new
one, never a torn one, and the new one survives the power going (written beside it as
``<name>.part``, fsynced, renamed over it, the folder fsynced).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def replace_file(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """``path`` holding ``data`` (created with ``mode``), replaced at once."""
    part = path.with_name(path.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(part, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on a folder
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
