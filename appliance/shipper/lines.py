"""Cutting a chunk of bytes into a batch of whole lines (pure, bounded).

The shell reads at most ``batch_bytes`` from the checkpointed offset; :func:`cut` keeps
the whole lines (at most ``max_lines``) and says how many bytes they span, so the offset
advances exactly past what was shipped. A partial last line stays in the file and is read
again next time: the cutter keeps no state, so memory is bounded by one chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.shipper.checkpoint import FileId


@dataclass(frozen=True, slots=True, kw_only=True)
class Cut:
    lines: tuple[bytes, ...]  # each ends with b"\n"
    used: int  # bytes of the chunk the lines span
    torn: int = 0  # lines that had no newline of their own (completed with one)


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    file: FileId
    start: int
    end: int
    lines: tuple[bytes, ...]

    @property
    def body(self) -> bytes:
        return b"".join(self.lines)

    @property
    def key(self) -> str:
        """Names the byte range; the same range always gets the same key."""
        return f"{self.file.dev}:{self.file.ino}:{self.start}-{self.end}"


def cut(chunk: bytes, *, max_lines: int, full: bool, final: bool) -> Cut:
    """Whole lines from the start of ``chunk``.

    ``full``: the chunk is as large as a read may be; a chunk that is full and holds no
    newline is one over-long line, shipped as it is (completed with a newline) so memory
    stays bounded and nothing is dropped. ``final``: nothing more will be appended to the
    file, so a trailing partial line (a writer that died mid-line) is shipped too.
    """
    out: list[bytes] = []
    pos = 0
    while len(out) < max_lines:
        nl = chunk.find(b"\n", pos)
        if nl < 0:
            break
        out.append(chunk[pos:nl + 1])
        pos = nl + 1
    rest = len(chunk) - pos
    if len(out) < max_lines and rest and ((full and not out) or final):
        out.append(chunk[pos:] + b"\n")
        return Cut(lines=tuple(out), used=len(chunk), torn=1)
    return Cut(lines=tuple(out), used=pos)
