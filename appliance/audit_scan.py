"""The audit log's lines as places: which session a line is of, and where it lies.

Pure: bytes in, places out (:mod:`appliance.audit_index` reads the files). A place packs a
line's start (counted across every file followed) and its length into one int, so the
places of a session's newest lines are a deque of ints.
"""

from __future__ import annotations

from collections.abc import Iterator, Reversible

#: A line's length is kept in the low bits of its place (a line is far shorter than this:
#: the proxy bounds what it records).
LENGTH_BITS = 24
KEY = b'"session":'


def session_of(line: bytes) -> str | None:
    """The session a line was written for (None: none, or not an audit line).

    The writer puts ``session`` third, after its own time and id, and escapes every quote
    inside a value, so the first ``"session":`` of a line is the key, whatever a path
    says."""
    at = line.find(KEY)
    if at < 0:
        return None
    value = line[at + len(KEY):]
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
        if session is not None and end - at < 1 << LENGTH_BITS:
            out.append((session, base + at, base + end))
        at = end + 1
    return out, base + at


def place(start: int, end: int) -> int:
    """The place of the line from ``start`` to ``end`` (its newline excluded)."""
    return start << LENGTH_BITS | (end - start)


def unplace(at: int) -> tuple[int, int]:
    """A place's start and length."""
    return at >> LENGTH_BITS, at & ((1 << LENGTH_BITS) - 1)


def newest_first(places: Reversible[int]) -> Iterator[tuple[int, int]]:
    """Each place's start and length, the last (newest) first."""
    for at in reversed(places):
        yield unplace(at)
