"""One timeline per session: its sources merged in time order, paged with a cursor (pure).

Theory of operation
-------------------
Four sources feed a session's timeline, each read by its own shell
(:mod:`appliance.timeline_read`): the agent's transcript, the proxy's audit lines, the
commits on the session branch and the events journal (phase and status changes, hooks,
lifecycle). Each source has its own order that a trusted writer decided — byte offsets in
the transcript and the audit log, the journal's ids, the branch's history — and a
*position* in that order.

The cursor is a position in every source, never a time. A page is built by
:func:`merge` from the newest end: it looks at the last unserved entry of each source and
serves the newest of them, again and again, until the page is full. So:

* every entry is served exactly once across pages, whatever the times say: a time only
  decides how sources interleave, never whether an entry is reached;
* a source's entries keep their own order;
* a source with trusted times whose reader stopped at its bound before its start (an audit
  log full of other sessions' lines) stops the page once what it read is served: its
  unread part might hold newer entries, so nothing older from the others is served until
  it is read. A window that held nothing of the session stops nothing, though: another
  session flooding the audit log must not blank this one's timeline (this session's lines
  behind the flood come, a little out of order, on the pages after). The cursor moves past
  what was read either way, so paging always progresses. A source whose times the agent
  writes (the transcript) never stops a page: its times decide nothing for sure, and an
  agent must not blank its timeline with one huge line; what its reader finds further back
  comes on the pages after.

Times the agent controls (transcript timestamps, commit dates) are clamped by
:func:`clamp` into ``[session created, now]``: a forged future time shows the entry as the
newest of the moment, a forged past one as the oldest, and neither hides anything, since
nothing is skipped by time. Audit and journal times are written by the appliance.

Text from the agent is shown, never interpreted: :func:`plain` removes control characters
(terminal escapes) and bounds the length; the web renders it as text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from appliance.errors import InvalidInput

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_TEXT = 2000  # characters of an entry's text
MAX_TITLE = 200
# C0 and C1 controls, DEL, and the bidi overrides that reorder what a reader sees.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class Source(StrEnum):
    MESSAGE = "message"
    AUDIT = "audit"
    COMMIT = "commit"
    EVENT = "event"


#: Sources whose times the appliance writes (the others' are the agent's).
TRUSTED_TIMES = frozenset({Source.AUDIT, Source.EVENT})

#: Ties in time: the order things usually happen in (the agent says, the proxy relays, git
#: records, the appliance notes).
RANK = {Source.MESSAGE: 0, Source.AUDIT: 1, Source.COMMIT: 2, Source.EVENT: 3}


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    source: Source
    pos: int  # the source's position of this entry; serving it moves the cursor here
    ts: datetime  # the time it is ordered by (clamped when the agent wrote it)
    key: str  # stable name for clients that merge pages they already hold
    kind: str
    title: str
    text: str = ""
    trusted_time: bool = True
    repo: str | None = None  # a commit's repository (appliance.multirepo.views' key)
    from_person: bool = False  # a user message the person sent (appliance.sent)


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """What a source's reader found before the cursor, oldest first."""

    source: Source
    entries: tuple[Entry, ...]
    #: The position it was read before (the cursor asked for, or the source's newest end).
    end: int
    #: Where the source's cursor stands once every entry is served: the start of what was
    #: read (nothing of this session lies between it and the first entry).
    start: int
    #: Nothing lies before ``start``.
    exhausted: bool
    #: Why the reader stopped short of its window, when it did (the page's notes say it).
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    entries: tuple[Entry, ...]  # oldest first
    cursor: dict[Source, int]  # pass back (as text: :func:`format_cursor`) for older ones
    more: bool
    #: Sources that could not be read this time, or only in part, and why (the others are
    #: still served).
    notes: tuple[str, ...] = ()

    @property
    def cursor_text(self) -> str:
        return format_cursor(self.cursor)


def merge(batches: Sequence[Batch], limit: int) -> Page:
    """The ``limit`` newest entries of ``batches`` (see the module's theory)."""
    left = {b.source: len(b.entries) for b in batches}
    by = {b.source: b for b in batches}
    cursor = {b.source: b.end for b in batches}
    out: list[Entry] = []
    while len(out) < limit:
        if any(left[s] == 0 and b.entries and not b.exhausted and s in TRUSTED_TIMES
               for s, b in by.items()):
            break  # a source's unread part might hold the newest entry
        heads = [by[s].entries[n - 1] for s, n in left.items() if n]
        if not heads:
            break
        best = max(heads, key=lambda e: (e.ts, RANK[e.source], e.pos))
        out.append(best)
        left[best.source] -= 1
        cursor[best.source] = best.pos
    for source, batch in by.items():
        if left[source] == 0:
            cursor[source] = batch.start
    more = any(left[s] or not b.exhausted for s, b in by.items())
    return Page(entries=tuple(reversed(out)), cursor=cursor, more=more,
                notes=tuple(b.note for b in batches if b.note))


def clamp(claimed: datetime | None, *, low: datetime, high: datetime) -> datetime:
    """An agent's time for ordering: inside ``[low, high]``; unknown counts as ``high``."""
    if claimed is None:
        return high
    if claimed.tzinfo is None:
        claimed = claimed.replace(tzinfo=UTC)
    return min(max(claimed, low), high)


def parse_time(raw: object) -> datetime | None:
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def plain(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` safe to print anywhere: no control character but newline and tab, at most
    ``limit`` characters (an ellipsis says it was cut)."""
    clean = _CONTROL.sub("", text)
    return clean if len(clean) <= limit else clean[:limit - 1] + "…"


def title(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return plain(first.strip(), MAX_TITLE)


# --- the cursor as text -------------------------------------------------------------

_LETTER = {Source.MESSAGE: "m", Source.AUDIT: "a", Source.COMMIT: "c", Source.EVENT: "e"}
_CURSOR = re.compile(r"[macde][0-9]{1,18}(?:\.[macde][0-9]{1,18}){0,3}")


def format_cursor(cursor: Mapping[Source, int]) -> str:
    return ".".join(f"{_LETTER[s]}{cursor[s]}" for s in Source if s in cursor)


def parse_cursor(raw: str) -> dict[Source, int]:
    """A cursor an earlier page gave; a source it does not name starts at the newest end."""
    if not _CURSOR.fullmatch(raw):
        raise InvalidInput("before must be the cursor an earlier page gave (like "
                           "m123.a456.c7.e89)", field="before")
    letters = {v: k for k, v in _LETTER.items()}
    out = {letters[part[0]]: int(part[1:]) for part in raw.split(".")}
    if len(out) != raw.count(".") + 1:
        raise InvalidInput("before names a source twice", field="before")
    return out


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}",
                           field="limit")
    return int(raw)
