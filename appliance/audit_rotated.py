"""The rotated audit files the index follows: each held by a descriptor (one the shipper
compressed and removed stays readable), found among the shipper's by name, told apart by
identity (a plain one by its inode, a compressed one by its first bytes).
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from appliance.shipper import rotation

#: Bytes read at a time while following a file, and while inflating a compressed one.
CHUNK = 4 * 2**20
#: Bytes of the file's start that tell it from another that took its inode (its first
#: line's time and request id).
HEAD = 64


@dataclass(slots=True)
class Followed:
    """One file the index follows or holds: a descriptor (so a rotated file stays readable
    once it is compressed and removed), where its bytes start among the index's offsets,
    and how much of it was read."""

    fd: int
    identity: tuple[int, int]
    base: int
    read: int = 0
    head: bytes = b""  # the first bytes: an inode number can be given again
    mid_line: bool = False  # past a line longer than a chunk, not yet at its end

    @property
    def end(self) -> int:
        return self.base + self.read


def missed(path: Path, before: Followed | None, live: tuple[int, int],
           live_head: bytes) -> Iterator[Followed]:
    """The files the shipper rotated after ``before`` (None: every one it still keeps)
    and before the live one (``live``, starting with ``live_head``), oldest first, each
    opened as it is asked for: plain (told by its inode), or compressed (by its first
    bytes, a line's time and id; read into a file of its own, unlinked)."""
    head = b"" if before is None else os.pread(before.fd, HEAD, 0)
    folder, name = path.parent, path.name
    try:
        names = os.listdir(folder)
    except OSError:
        return
    stems = sorted({n.removesuffix(".gz") for n in names
                    if rotation.is_rotated(n, name) or rotation.is_compressed(n, name)})
    after, base = before is None, 0 if before is None else before.end
    for stem in stems:
        opened = open_rotated(folder / stem)
        if opened is None:
            continue
        fd, plain, first = opened
        st = os.fstat(fd)
        identity = (st.st_dev, st.st_ino)
        if identity == live or (not plain and live_head and first == live_head):
            os.close(fd)
            return  # the live file, rotated again since it was opened: read as such
        if not after:
            assert before is not None
            after = identity == before.identity or (not plain and bool(head)
                                                    and first == head)
            os.close(fd)
            continue
        between = Followed(fd=fd, identity=identity, base=base, head=first)
        yield between
        base = between.end


def open_rotated(stem: Path) -> tuple[int, bool, bytes] | None:
    """A rotated file's descriptor, whether it is the plain file, and its first bytes: the
    plain file, or (compressed and removed) its contents in an unlinked file beside it; None
    if neither can be read."""
    try:
        fd = os.open(stem, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        pass
    except OSError:
        return None
    else:
        return fd, True, os.pread(fd, HEAD, 0)
    try:
        with gzip.open(stem.with_name(stem.name + ".gz"), "rb") as src:
            out = tempfile.TemporaryFile(dir=stem.parent)  # noqa: SIM115 - its fd is kept
            try:
                shutil.copyfileobj(src, out, CHUNK)
                fd = os.dup(out.fileno())
            finally:
                out.close()
    except (OSError, EOFError, gzip.BadGzipFile):
        return None  # gone (pruned), or a full disk: in the archive only
    return fd, False, os.pread(fd, HEAD, 0)
