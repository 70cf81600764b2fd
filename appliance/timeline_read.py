"""The timeline's readers: each source's entries before a cursor, bounded per page.

Shells around :mod:`appliance.timeline` (the merge and its theory). Each reader returns a
:class:`~appliance.timeline.Batch` of one source and never reads more than its window:

* the transcript (:func:`messages`): the agent's own log in its home, through
  :mod:`appliance.safefs` (no symlink followed, regular files only), :data:`WINDOW` bytes
  a page; a line the window does not hold whole is walked past, never parsed half;
* the audit log (:func:`audits`): ``audit.jsonl`` (every session's lines), the session's
  found through :class:`~appliance.audit_index.AuditIndex`, :data:`AUDIT_LINES` a page;
  past the lines the index keeps, read backwards :data:`AUDIT_WINDOW` bytes a page of the
  live file (the rotated files the index holds are read through it; older ones are the
  archive's);
* the journal (:func:`events`): the store's rows of the session, by id.

A transcript or audit position is the byte offset of the end of the entry's line times
:data:`BLOCKS` plus the entry's index in its line (one Claude line holds several blocks),
so a cursor can stand between two blocks of one line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from appliance.agents import reader
from appliance.agents.logs import (
    BLOCKS,
    MAX_LINES,
    MAX_VALUES,
    PARSERS,
    Kind,
    Message,
    counted,
)
from appliance.audit import (
    PROXY_RUN,
    AuditRecord,
    Phase,
    cut_off,
    outcome,
    parse_line,
    recorded_run,
)
from appliance.audit_index import PER_SESSION, AuditIndex
from appliance.readers import HOME, Tree, host_tree
from appliance.sessions import Session
from appliance.store import Event
from appliance.timeline import (
    MAX_LIMIT,
    Batch,
    Entry,
    Source,
    clamp,
    parse_time,
    plain,
    title,
)

WINDOW = 1024 * 1024  # transcript bytes a page
AUDIT_WINDOW = 16 * 1024 * 1024  # audit bytes a page (other sessions' lines included)
LAST = BLOCKS - 1
#: Which user messages (position, where its line starts, text) the person sent.
Said = Callable[[Sequence[tuple[int, int, str]]], frozenset[int]]


def _first_start(data: bytes, whole_start: bool) -> int | None:
    """Where the first whole line of ``data`` starts. None when there is none: all of it one
    line that began before the window, longer than a window; it is never shown, the cursor
    walks on past it."""
    if whole_start:
        return 0
    first = data.find(b"\n")
    return None if first < 0 or first + 1 == len(data) else first + 1


def _lines(data: bytes, base: int, whole_start: bool,
           needle: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """Complete lines of ``data`` (read from byte ``base``) that hold ``needle``, with the
    offset of their end, and where the first line starts. Without ``whole_start`` the first
    line may be cut. Lines are found by searching for the needle, not by splitting every
    line: most of the audit log is other sessions'."""
    start = _first_start(data, whole_start)
    if start is None:
        return [], base
    out = []
    at = start
    while (hit := data.find(needle, at)) >= 0:
        begin = data.rfind(b"\n", start, hit) + 1 or start
        end = data.find(b"\n", hit)
        if end < 0:
            break  # the last line, still being written
        out.append((base + end + 1, data[begin:end]))
        at = end + 1
    return out, base + start


def _newest_lines(data: bytes, start: int) -> Iterator[tuple[int, bytes]]:
    """The complete lines of ``data`` from ``start`` on, newest first: where each ends (past
    its newline) and its bytes. Only the lines taken are split."""
    end = data.rfind(b"\n", start)
    while end >= start:
        begin = data.rfind(b"\n", start, end) + 1 or start
        yield end + 1, data[begin:end]
        end = begin - 1


def _window(size: int, before: int | None, window: int) -> tuple[int, int]:
    end = size if before is None else min(before // BLOCKS, size)
    return max(0, end - window), end


# --- the transcript -----------------------------------------------------------------


def nothing(source: Source, before: int | None) -> Batch:
    """A source with nothing to show (no log yet; a volume this host cannot read)."""
    return Batch(source=source, entries=(), end=LAST if before is None else before, start=0,
                 exhausted=True)


def _message_entry(m: Message, pos: int, *, low: datetime, high: datetime,
                   mine: frozenset[int]) -> Entry:
    if m.kind in (Kind.TOOL_CALL, Kind.PLAN):
        head = m.tool or "tool"
        body = plain(str(m.input)) if m.input is not None else ""
    else:
        head, body = title(m.text), plain(m.text)
    claimed = parse_time(m.ts)
    return Entry(source=Source.MESSAGE, pos=pos, ts=clamp(claimed, low=low, high=high),
                 key=f"m{pos}", kind=str(m.kind), title=plain(head, 200), text=body,
                 trusted_time=False, from_person=pos in mine)


def _window_of_log(tree: Tree, session: Session,
                   before: int | None) -> tuple[bytes, int, int, int] | None:
    """The bytes of the window before ``before``, where they start, where their file starts,
    and the logs' total size; None when there is no log."""
    files = reader.log_files(tree, session)
    sizes: list[int] = []
    for log in files:
        with tree.open_file(log.parts) as f:
            sizes.append(f.size)
    if not files:
        return None
    total = sum(sizes)
    lo, hi = _window(total, before, WINDOW)
    # The file the window ends in (a page never spans two of Codex's files).
    base, index = 0, 0
    for index, size in enumerate(sizes):  # noqa: B007 - the last one is kept
        if hi <= base + size:
            break
        base += size
    lo = max(lo, base)
    with tree.open_file(files[index].parts) as f:
        return f.read_at(lo - base, hi - lo), lo, base, total


def messages(home: Path | Callable[[], AbstractContextManager[Tree]], session: Session,
             before: int | None, *, now: datetime, limit: int = MAX_LIMIT,
             said: Said = lambda asked: frozenset()) -> Batch:
    """The agent's messages before ``before`` (a position), at most a window of its log.
    ``home``: a folder of this host, or how to open the home where it is (in its pod:
    :meth:`appliance.readers.WorkspaceReader.home`).
    A log the agent made unreadable (a symlink, a FIFO, too many files) is a 409, as on the
    transcript route; the caller leaves the source out with a note. ``said``: which user
    messages the person sent (:func:`appliance.sentstore.from_person`)."""
    empty = nothing(Source.MESSAGE, before)
    parse = PARSERS.get(session.agent)
    if parse is None:  # a custom agent's output is text, read in the transcript, not here
        return empty
    opened = partial(host_tree, home, label=HOME, absent="no home") \
        if isinstance(home, Path) else home
    found = reader.in_home(opened, lambda tree: _window_of_log(tree, session, before), None)
    if found is None:
        return empty
    return message_batch(found, before, parse, low=session.created_at, high=now, limit=limit,
                         said=said)


def message_batch(found: tuple[bytes, int, int, int], before: int | None,
                  parse: Callable[[dict[str, Any]], list[Message]], *, low: datetime,
                  high: datetime, limit: int = MAX_LIMIT,
                  said: Said = lambda asked: frozenset()) -> Batch:
    """The newest messages before ``before`` in a window of the log (:func:`_window_of_log`:
    its bytes, where they start, where their file starts, the logs' total size), their times
    held between ``low`` and ``high``: read back line by line until ``limit`` messages (a
    page serves no more), :data:`~appliance.agents.logs.MAX_LINES` lines or lines of
    :data:`~appliance.agents.logs.MAX_VALUES` values, as the chat stops; the batch starts at
    the oldest line read, so the pages after go on from there."""
    data, lo, base, total = found
    end = before if before is not None else total * BLOCKS + LAST
    first = _first_start(data, lo == base)
    start = lo if first is None else lo + first
    newest: list[list[tuple[int, Message]]] = []  # a line's messages, newest line first
    count = lines = spent = 0
    full = False  # the page's values are spent
    for line_end, raw in _newest_lines(data, start - lo):
        value, cost = counted(raw)
        if lines and spent + cost > MAX_VALUES:
            full = True  # the line is for the next page
            break
        lines, spent = lines + 1, spent + cost
        start = lo + line_end - len(raw) - 1
        if isinstance(value, dict):
            newest.append([(pos, replace(m, start=start))
                           for i, m in enumerate(parse(value)[:BLOCKS - 1])
                           if (pos := (lo + line_end) * BLOCKS + i) < end])
            count += len(newest[-1])
        if count >= limit or lines >= MAX_LINES:
            break
    found_here = [found for line in reversed(newest) for found in line]
    mine = said([(pos, m.start, m.text) for pos, m in found_here if m.kind is Kind.USER])
    entries = [_message_entry(m, pos, low=low, high=high, mine=mine) for pos, m in found_here]
    cut = full or (lines >= MAX_LINES and start > lo + (first or 0))
    return Batch(source=Source.MESSAGE, entries=tuple(entries), end=end,
                 start=start * BLOCKS + LAST, exhausted=start == 0,
                 note=f"the transcript is read {MAX_LINES:,} lines (or {MAX_VALUES:,} values) "
                      "a page: the older ones come on the pages after" if cut else "")


# --- the audit log ------------------------------------------------------------------


#: Lines of the session a page of the audit source holds (a page shows at most 200 items).
AUDIT_LINES = 200


def _records(lines: Iterable[tuple[int, bytes]]) -> list[tuple[int, AuditRecord]]:
    out = []
    for line_end, raw in lines:
        try:
            out.append((line_end, parse_line(raw.decode("utf-8", "replace"))))
        except (ValueError, TypeError, KeyError):
            continue  # a torn or foreign line
    return out


def _ended(records: Iterable[tuple[int, AuditRecord]]) -> set[str]:
    return {r.stream for _, r in records if r.phase is Phase.END and r.stream is not None}


def _entries(lines: Iterable[tuple[int, bytes]], session_id: str, run: str | None,
             index: AuditIndex | None = None) -> list[Entry]:
    """The session's lines as entries; an exchange a killed proxy left open, cut off. Its
    end line may be on a newer page: when an opening has none among these lines, the end
    lines of the session's lines the ``index`` keeps (the newest) are looked at too."""
    records = _records(lines)
    ended = _ended(records)
    if index is not None and any(cut_off(r.phase, r.stream, ended, run) for _, r in records
                                 if r.session == session_id):
        ended |= _ended(_records(index.lines(session_id, PER_SESSION).lines))
    return [e for line_end, record in records
            if (e := _audit_entry(record, line_end, session_id, ended, run)) is not None]


def proxy_run(index: AuditIndex) -> str | None:
    """The run of the proxy that started last (its start-up line's ``stream``), or None:
    named beside the log; for a proxy from before that, its newest line the index kept."""
    run = recorded_run(index.path)
    if run is not None:
        return run
    for _, raw in index.lines(PROXY_RUN, 1).lines:
        try:
            return parse_line(raw.decode("utf-8", "replace")).stream
        except (ValueError, TypeError, KeyError):
            return None
    return None


def _audit_entry(record: AuditRecord, line_end: int, session_id: str, ended: set[str],
                 run: str | None) -> Entry | None:
    when = parse_time(record.ts)
    if record.session != session_id or when is None:
        return None
    what = f"{record.method} {record.host}{record.path}"
    cut = cut_off(record.phase, record.stream, ended, run)
    text = f"{outcome(record.phase, record.status, record.duration_ms, record.ts, cut=cut)} " \
        f"{record.decision}" + (
        f" · credential {record.credential}" if record.credential else "") + (
        f" · {record.note}" if record.note else "") + (
        f" · {record.error}" if record.error else "") + (
        " (its end is a line of its own)" if record.phase is Phase.OPEN and not cut else "") + (
        f" · the end of the exchange opened as {record.stream}"
        if record.phase is Phase.END else "")
    pos = line_end * BLOCKS
    return Entry(source=Source.AUDIT, pos=pos, ts=when, key=f"a{pos}",
                 kind=str(record.decision), title=plain(what, 200), text=plain(text))


def audits(index: AuditIndex, session_id: str, before: int | None) -> Batch:
    """The session's audit lines before ``before``: the newest :data:`AUDIT_LINES` of them
    through the file's index, so no other session's lines push them out of the page. Lines
    older than the index keeps are searched for a window at a time."""
    found = index.lines(session_id, AUDIT_LINES,
                        upto=None if before is None else (before - 1) // BLOCKS)
    if not found.lines and not found.whole:
        return _audits_in_window(index, session_id, before, found.base, proxy_run(index))
    entries = _entries(found.lines, session_id, proxy_run(index), index)
    end = before if before is not None else found.read * BLOCKS + LAST
    if found.whole and len(found.lines) < AUDIT_LINES:
        return Batch(source=Source.AUDIT, entries=tuple(entries), end=end, start=LAST,
                     exhausted=True)
    first_end, first = found.lines[0]
    return Batch(source=Source.AUDIT, entries=tuple(entries), end=end,
                 start=(first_end - len(first) - 1) * BLOCKS + LAST, exhausted=False)


def _audits_in_window(index: AuditIndex, session_id: str, before: int | None, base: int,
                      run: str | None) -> Batch:
    """The session's audit lines before ``before``, from one window of ``audit.jsonl``,
    whose first byte is the index's offset ``base`` (the rotated files before it are the
    archive's)."""
    if before is not None and before // BLOCKS <= base:
        return nothing(Source.AUDIT, before)
    try:
        fh = index.path.open("rb")
    except FileNotFoundError:
        return nothing(Source.AUDIT, before)
    with fh:
        size = fh.seek(0, 2)
        lo, hi = _window(size, None if before is None else before - base * BLOCKS,
                         AUDIT_WINDOW)
        fh.seek(lo)
        data = fh.read(hi - lo)
    lines, start = _lines(data, lo, whole_start=lo == 0,
                          needle=f'"session":"{session_id}"'.encode())
    entries = _entries(((base + line_end, raw) for line_end, raw in lines), session_id, run,
                       index)
    return Batch(source=Source.AUDIT, entries=tuple(entries),
                 end=before if before is not None else (base + size) * BLOCKS + LAST,
                 start=(base + start) * BLOCKS + LAST, exhausted=start == 0)


# --- the journal --------------------------------------------------------------------


def event_entry(e: Event) -> Entry:
    view = e.payload.get("session") if isinstance(e.payload, dict) else None
    view = view if isinstance(view, dict) else {}
    phase, status = view.get("phase"), view.get("agent_status")
    state = " · ".join(str(v) for v in (phase, status, view.get("status_reason")) if v)
    said = {k: v for k, v in e.payload.items() if k != "session" and isinstance(v, str)}
    match e.kind:
        case "hook":
            head = f"hook {said.get('hook')}"
        case "progress":
            head = said.get("message") or said.get("step") or "progress"
        case "branch_synced":
            head = f"{said.get('branch')} at {str(said.get('commit'))[:12]}"
        case _:
            head = f"{e.kind}: {state}" if state else e.kind
    when = parse_time(e.ts)
    assert when is not None  # the store writes ISO times
    return Entry(source=Source.EVENT, pos=e.id, ts=when, key=f"e{e.id}", kind=e.kind,
                 title=plain(head, 200), text=plain(state))


def events(rows: list[Event], before: int | None, limit: int, newest: int) -> Batch:
    """A batch of journal rows read newest first (``limit`` asked for, ``rows`` found)."""
    ordered = sorted(rows, key=lambda e: e.id)
    exhausted = len(rows) < limit
    return Batch(source=Source.EVENT, entries=tuple(event_entry(e) for e in ordered),
                 end=before if before is not None else newest + 1,
                 start=0 if exhausted or not ordered else ordered[0].id,
                 exhausted=exhausted)
