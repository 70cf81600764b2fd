"""The timeline's merge (table-tested), its cursor, and its readers on real files: every item
served once whatever times the agent forges, bounded reads of a huge log, no control
character in what is served."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import safefs, timeline, timeline_read
from appliance.agents.logs import PARSERS, Message
from appliance.audit import CUT_OFF, AuditRecord, Decision, Phase, started
from appliance.audit_index import AuditIndex
from appliance.errors import InvalidInput
from appliance.sessions import Agent, Session, SessionId
from appliance.store import Event
from appliance.timeline import Batch, Entry, Source, merge

SID = SessionId("0b9f6a43-1111-2222-3333-444455556666")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def e(source: Source, pos: int, minute: int) -> Entry:
    return Entry(source=source, pos=pos, ts=at(minute), key=f"{source}{pos}", kind="k",
                 title="t")


def batch(source: Source, minutes: list[int], *, exhausted: bool = True,
          start: int = 0) -> Batch:
    entries = tuple(e(source, i + 1 + start, m) for i, m in enumerate(minutes))
    return Batch(source=source, entries=entries, end=start + len(minutes) + 1, start=start,
                 exhausted=exhausted)


M, A, C, V = Source.MESSAGE, Source.AUDIT, Source.COMMIT, Source.EVENT


def keys(page: timeline.Page) -> list[str]:
    return [x.key for x in page.entries]


# --- merge (pure, table) ---------------------------------------------------------------

CASES = [
    # sorted sources interleave by time; the newest `limit` come back, oldest first
    ([batch(M, [1, 4]), batch(A, [2, 3]), batch(V, [5])], 10,
     ["message1", "audit1", "audit2", "message2", "event1"], False),
    ([batch(M, [1, 4]), batch(A, [2, 3]), batch(V, [5])], 2, ["message2", "event1"], True),
    # ties: message, audit, commit, event
    ([batch(V, [1]), batch(C, [1]), batch(A, [1]), batch(M, [1])], 10,
     ["message1", "audit1", "commit1", "event1"], False),
    # a source with trusted times cut at its bound stops the page once its read part is
    # served (its unread part may be newer)...
    ([batch(A, [5], exhausted=False, start=7), batch(V, [1, 2, 6])], 10,
     ["audit8", "event3"], True),
    # ... but never leaves the page empty (a flood of other sessions' lines cannot blank it)
    ([batch(A, [], exhausted=False, start=7), batch(V, [1, 2])], 10, ["event1", "event2"],
     True),
    # the agent's transcript, cut, never stops a page (one huge line cannot blank it)
    ([batch(M, [], exhausted=False, start=7), batch(A, [1, 2])], 10, ["audit1", "audit2"],
     True),
    # a source out of time order (the agent forged a time) keeps its own order; nothing is lost
    ([batch(M, [1, 99, 2]), batch(A, [3, 4])], 10,
     ["message1", "message2", "message3", "audit1", "audit2"], False),
    ([], 5, [], False),
]


@pytest.mark.parametrize(("batches", "limit", "expected", "more"), CASES)
def test_merge(batches: list[Batch], limit: int, expected: list[str], more: bool) -> None:
    page = merge(batches, limit)
    assert keys(page) == expected
    assert page.more is more


def paged(sources: dict[Source, list[int]], limit: int,
          window: Callable[[Source], int] = lambda _: 10**9) -> list[timeline.Page]:
    """Page through in-memory sources as a reader would, newest first: each source shows at
    most ``window(source)`` entries before the cursor (cut, like the byte windows)."""
    cursor: dict[Source, int] = {}
    pages = []
    for _ in range(500):
        batches = []
        for source, minutes in sources.items():
            end = cursor.get(source, len(minutes) + 1)
            first = max(1, end - window(source))
            entries = tuple(e(source, i, minutes[i - 1]) for i in range(first, end))
            batches.append(Batch(source=source, entries=entries, end=end, start=first,
                                 exhausted=first == 1))
        pages.append(merge(batches, limit))
        if not pages[-1].more:
            return pages
        cursor = timeline.parse_cursor(pages[-1].cursor_text)
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_paging_serves_every_item_once_even_with_forged_times(limit: int) -> None:
    sources = {M: [1, 10**6, -10**6, 5], A: [2, 3, 6], C: [4], V: [0, 7]}
    pages = [keys(page) for page in paged(sources, limit)]
    served = [k for page in pages for k in page]
    assert sorted(served) == sorted(f"{s}{i + 1}" for s, ms in sources.items()
                                    for i in range(len(ms)))
    assert all(len(p) <= limit for p in pages)


def test_cursor_round_trips_and_refuses_junk() -> None:
    cursor = {M: 123, A: 4, C: 0, V: 99}
    assert timeline.parse_cursor(timeline.format_cursor(cursor)) == cursor
    assert timeline.parse_cursor("e" + "9" * 18) == {V: 10**18 - 1}  # fits SQLite's integer
    for bad in ("", "x1", "m1.m2", "m1;a2", "e" + "9" * 19, "m1.", "<script>"):
        with pytest.raises(InvalidInput):
            timeline.parse_cursor(bad)
    with pytest.raises(InvalidInput):
        timeline.parse_limit("0")
    with pytest.raises(InvalidInput):
        timeline.parse_limit(str(timeline.MAX_LIMIT + 1))
    assert timeline.parse_limit(None) == timeline.DEFAULT_LIMIT


def test_agent_times_are_clamped_to_the_session_and_now() -> None:
    low, high = at(0), at(10)
    assert timeline.clamp(at(5), low=low, high=high) == at(5)
    assert timeline.clamp(at(10**6), low=low, high=high) == high
    assert timeline.clamp(at(-10**6), low=low, high=high) == low
    assert timeline.clamp(None, low=low, high=high) == high


def test_plain_removes_every_control_character() -> None:
    hostile = "ok\x1b]52;c;cHduZWQ=\x07\x1b[2J\x9b31m\u202etxt\r\x00end\n\tnext"
    out = timeline.plain(hostile)
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "\r" not in out and "\x00" not in out and "\u202e" not in out
    assert out.endswith("end\n\tnext")
    assert len(timeline.plain("x" * 10_000)) == timeline.MAX_TEXT


# --- readers on real files ---------------------------------------------------------------


def session(created: datetime = T0) -> Session:
    return Session(id=SID, name="s", repo_path="/r", worktree_path="/w", branch="clauderon/s",
                   base_ref="main", image="img", agent=Agent.CLAUDE, created_at=created,
                   updated_at=created)


def claude_line(text: str, ts: str) -> bytes:
    return json.dumps({"type": "assistant", "timestamp": ts,
                       "message": {"content": [{"type": "text", "text": text}]}}).encode() + b"\n"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    folder = tmp_path / "home" / ".claude" / "projects" / "-workspace"
    folder.mkdir(parents=True)
    return folder / f"{SID}.jsonl"


def read_all_messages(home: Path, now: datetime) -> list[Entry]:
    out: list[Entry] = []
    before = None
    for _ in range(10_000):
        b = timeline_read.messages(home, session(), before, now=now)
        out = list(b.entries) + out
        if b.exhausted:
            return out
        before = b.start
    raise AssertionError("reading did not end")


def test_transcript_reader_walks_back_window_by_window(log: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeline_read, "WINDOW", 200)
    log.write_bytes(b"".join(claude_line(f"m{i}", at(i).isoformat()) for i in range(30)))
    got = read_all_messages(log.parents[3], now=at(100))
    assert [x.title for x in got] == [f"m{i}" for i in range(30)]
    assert [x.ts for x in got] == [at(i) for i in range(30)]


def test_a_huge_transcript_line_is_walked_past_within_the_window(
        log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeline_read, "WINDOW", 4096)
    huge = claude_line("H" * 100_000, T0.isoformat())
    log.write_bytes(claude_line("first", T0.isoformat()) + huge +
                    claude_line("last", T0.isoformat()))
    reads: list[int] = []
    real = safefs.read_at

    def counted(f: object, offset: int, limit: int) -> bytes:
        reads.append(limit)
        return real(f, offset, limit)  # type: ignore[arg-type]

    monkeypatch.setattr(safefs, "read_at", counted)  # what every host read goes through
    got = read_all_messages(log.parents[3], now=at(1))
    assert [x.title for x in got] == ["first", "last"]  # the huge one is never parsed half
    assert max(reads) <= 4096


LA, LB, JUNK = claude_line("a", T0.isoformat()), claude_line("b", T0.isoformat()), b"[1]\n"
NA, NAB = len(LA), len(LA) + len(LB)
K, TOP = timeline_read.BLOCKS, timeline_read.LAST


@pytest.mark.parametrize(("data", "lo", "base", "total", "before", "titles", "end", "start"), [
    (LA + LB, 0, 0, NAB, None, ["a", "b"], NAB * K + TOP, TOP),  # the whole log
    (LA[3:] + LB, 3, 0, NAB, None, ["b"], NAB * K + TOP, NA * K + TOP),  # a cut line: skipped
    (LA + LB, 0, 0, NAB, NA * K + 1, ["a"], NA * K + 1, TOP),  # only what is before the cursor
    (JUNK + LB, 0, 0, len(JUNK + LB), None, ["b"], len(JUNK + LB) * K + TOP, TOP),  # no object
    (LB, NA, NA, NAB, None, ["b"], NAB * K + TOP, NA * K + TOP),  # a later file, read whole
])
def test_a_window_of_the_log_as_a_batch(data: bytes, lo: int, base: int, total: int,
                                        before: int | None, titles: list[str], end: int,
                                        start: int) -> None:
    b = timeline_read.message_batch((data, lo, base, total), before, PARSERS[Agent.CLAUDE],
                                    low=T0, high=at(1))
    assert ([x.title for x in b.entries], b.end, b.start, b.exhausted) == (
        titles, end, start, start == TOP)


def one_result() -> bytes:
    return b'{"type":"user","message":{"content":[{"type":"tool_result"}]}}\n'


BLOCKS_LINE = (b'{"type":"user","message":{"content":[' +
               b",".join([b'{"type":"tool_result"}'] * 2000) + b"]}}\n")
#: 60,007 values (logs.values_in): three a page
EMPTY_LINE = b'{"type":"user","message":{"content":[' + b"{}," * 29_999 + b"{}]}}\n"


@pytest.mark.parametrize(("data", "limit", "lines", "parsed", "served", "start", "note"), [
    # a window of 10,000 tiny results, a page of 50: the newest 50 lines are read, no more
    (one_result() * 10_000, 50, 100, 50, 50, 9_950 * len(one_result()), False),
    # a line gives at most its share, whatever it holds, and is read whole
    (BLOCKS_LINE * 3, 50, 100, 1, timeline_read.BLOCKS - 1, 2 * len(BLOCKS_LINE), False),
    # lines that give nothing stop the read at the line cap, and the page says so
    (claude_line("old", T0.isoformat()) + b"{}\n" * 300, 50, 100, 100, 0,
     len(claude_line("old", T0.isoformat())) + 200 * 3, True),
    (b"\n" * 300, 50, 100, 0, 0, 200, True),
    # lines of many values stop the read at the page's values, and the page says so
    (EMPTY_LINE * 4, 50, 100, 3, 0, len(EMPTY_LINE), True),
    # fewer than the cap: everything, no note
    (claude_line("old", T0.isoformat()) + b"{}\n" * 99, 50, 100, 100, 1, 0, False),
])
def test_a_window_is_read_back_until_a_page_or_the_line_cap(
        monkeypatch: pytest.MonkeyPatch, data: bytes, limit: int, lines: int, parsed: int,
        served: int, start: int, note: bool) -> None:
    monkeypatch.setattr(timeline_read, "MAX_LINES", lines)
    calls: list[object] = []

    def parse(value: dict[str, object]) -> list[Message]:
        calls.append(value)
        return PARSERS[Agent.CLAUDE](value)

    b = timeline_read.message_batch((data, 0, 0, len(data)), None, parse, low=T0,
                                    high=at(1), limit=limit)
    assert (len(calls), len(b.entries), b.start, bool(b.note)) == (
        parsed, served, start * K + TOP, note)
    assert b.exhausted == (start == 0)


def test_forged_transcript_times_and_escapes(log: Path) -> None:
    log.write_bytes(claude_line("\x1b]0;owned\x07<script>alert(1)</script>", "9999-01-01T00:00:00Z")
                    + claude_line("past", "1970-01-01T00:00:00Z")
                    + claude_line("bad time", "not a time"))
    now = at(60)
    got = timeline_read.messages(log.parents[3], session(), None, now=now).entries
    assert [x.ts for x in got] == [now, T0, now]
    assert all(not x.trusted_time for x in got)
    assert got[0].title == "]0;owned<script>alert(1)</script>"  # text: the web shows it as such


def audit_line(session_id: str, path: str, minute: int) -> str:
    return AuditRecord(ts=at(minute).isoformat(), id="r", session=session_id, method="GET",
                       host="api.example.test", path=path, status=200, bytes_in=1,
                       bytes_out=2, duration_ms=1.0, credential=None,
                       decision=Decision.PASSED).to_json_line()


@pytest.mark.parametrize(("kept", "a_page"), [(1000, 200), (1000, 1), (2, 1), (1, 200)])
def test_audit_reader_keeps_to_its_session_and_window(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept: int, a_page: int) -> None:
    """Through the index, and past the lines it keeps a window at a time: every line of the
    session once, in order."""
    monkeypatch.setattr(timeline_read, "AUDIT_WINDOW", 1000)
    monkeypatch.setattr(timeline_read, "AUDIT_LINES", a_page)
    path = tmp_path / "audit.jsonl"
    lines = []
    for i in range(40):
        lines.append(audit_line("someone-else", "/other", i))
        if i % 10 == 0:
            lines.append(audit_line(SID, f"/mine/{i}\x1b[31m", i))
    path.write_text("".join(lines) + '{"torn')
    index = AuditIndex(path, per_session=kept)
    found: list[Entry] = []
    before = None
    for _ in range(1000):
        b = timeline_read.audits(index, SID, before)
        found = list(b.entries) + found
        if b.exhausted:
            break
        before = b.start
    assert [x.title for x in found] == [f"GET api.example.test/mine/{i}[31m"
                                        for i in (0, 10, 20, 30)]


def test_an_exchange_left_open_is_shown_open_and_its_end_as_its_end(tmp_path: Path) -> None:
    """A WebSocket's two lines: the opening is open since it opened (not a status), the end
    names the exchange it ends; not two requests answered alike."""
    def piece(phase: Phase, minute: int, took: float) -> str:
        return AuditRecord(ts=at(minute).isoformat(), id=f"r{minute}", session=SID,
                           method="GET", host="ws.example.test", path="/live", status=101,
                           bytes_in=0, bytes_out=0, duration_ms=took, credential=None,
                           decision=Decision.PASSED, phase=phase, stream="r1").to_json_line()
    path = tmp_path / "audit.jsonl"
    path.write_text(piece(Phase.OPEN, 1, 2.0) + piece(Phase.END, 3, 120_000.0))
    got = timeline_read.audits(AuditIndex(path), SID, None).entries
    assert [x.text for x in got] == [
        f"open since {at(1).isoformat()[11:19]} passed (its end is a line of its own)",
        "ended 101 after 120.0 s passed · the end of the exchange opened as r1"]


def test_an_exchange_whose_end_is_on_a_newer_page_is_not_cut_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An earlier run's exchange is cut off only when no end line of it is anywhere the
    index keeps of the session, not only on the page that holds its opening: a WebSocket
    the run ended as it stopped, with requests between its two lines, was shown cut off on
    the older page. One the run never ended still is."""
    monkeypatch.setattr(timeline_read, "AUDIT_LINES", 2)

    def piece(phase: Phase | None, minute: int, stream: str | None) -> str:
        return AuditRecord(ts=at(minute).isoformat(), id=f"r{minute}", session=SID,
                           method="GET", host="ws.example.test", path=f"/{minute}",
                           status=101, bytes_in=0, bytes_out=0, duration_ms=1.0,
                           credential=None, decision=Decision.PASSED, phase=phase,
                           stream=stream).to_json_line()
    path = tmp_path / "audit.jsonl"
    path.write_text(started("aa", at(0).isoformat()).to_json_line()
                    + piece(Phase.OPEN, 1, "aa.1") + piece(Phase.OPEN, 2, "aa.2")
                    + "".join(piece(None, m, None) for m in range(3, 7))
                    + piece(Phase.END, 7, "aa.1")
                    + started("bb", at(8).isoformat()).to_json_line())
    index = AuditIndex(path)
    shown: dict[str, str] = {}
    before = None
    for _ in range(10):
        b = timeline_read.audits(index, SID, before)
        shown |= {x.title: x.text for x in b.entries}
        if b.exhausted:
            break
        before = b.start
    assert len(shown) == 7
    assert shown["GET ws.example.test/1"].startswith(f"open since {at(1).isoformat()[11:19]}")
    assert shown["GET ws.example.test/2"].startswith(CUT_OFF)


# --- the CLI's rendering and follow (pure) ------------------------------------------------


def item(key: str, title: str = "t", **more: object) -> dict[str, object]:
    return {"key": key, "source": "commit", "ts": "2026-01-01T10:11:12+00:00",
            "trusted_time": False, "kind": "commit", "title": title, "text": "", **more}


def test_cli_line_has_no_control_character_even_from_a_hostile_api() -> None:
    from cli.timeline_command import line
    shown = line(item("c1", "\x1b[2J\x1b]8;;http://x\x07fix\x1b\\", text="a\x1b[1mb\nc"))
    assert "\x1b" not in shown and "\x07" not in shown
    assert shown.startswith("10:11:12~ GIT commit")
    # A character a terminal draws as nothing is named (the API keeps it, for the web UI).
    assert line(item("c2", "drop is_ad\u200dmin")).endswith("drop is_ad<U+200D>min")


def test_cli_follow_prints_each_new_item_once_and_catches_up_across_pages() -> None:
    from cli.timeline_command import follow
    served = [[item("a"), item("b")]]  # what the API holds, as pages newest first

    def fetch(before: str | None) -> dict[str, object]:
        index = int(before or 0)
        return {"items": served[index], "more": index + 1 < len(served),
                "cursor": str(index + 1)}

    seen = {"a", "b"}
    shown: list[str] = []
    follow(fetch, seen, lambda i: shown.append(str(i["key"])), rounds=1, sleep=lambda _: None)
    assert shown == []
    served[:] = [[item("e"), item("f")], [item("c"), item("d")], [item("a"), item("b")]]
    follow(fetch, seen, lambda i: shown.append(str(i["key"])), rounds=2, sleep=lambda _: None)
    assert shown == ["c", "d", "e", "f"]


# --- the merge's promise, for any sources, times, windows and page sizes ------------------

@settings(max_examples=300)
@given(sources=st.fixed_dictionaries({s: st.lists(st.integers(-50, 50), max_size=12)
                                      for s in Source}),
       window=st.integers(1, 5), limit=st.integers(1, 6))
def test_every_item_is_served_exactly_once_and_pages_end(
        sources: dict[Source, list[int]], window: int, limit: int) -> None:
    """Readers that see at most ``window`` entries before the cursor (cut, like the byte
    windows), any times at all (forged or not): paging serves each item once, and ends."""
    pages = paged(sources, limit, lambda _: window)
    assert all(len(page.entries) <= limit for page in pages)
    served = [k for page in pages for k in keys(page)]
    assert sorted(served) == sorted(f"{s}{i + 1}" for s, ms in sources.items()
                                    for i in range(len(ms)))


@settings(max_examples=300)
@given(sources=st.fixed_dictionaries({s: st.lists(st.integers(-50, 50), max_size=12)
                                      for s in (A, C, V)}),
       window=st.integers(1, 5), limit=st.integers(1, 6))
def test_sources_in_time_order_page_out_in_time_order(
        sources: dict[Source, list[int]], window: int, limit: int) -> None:
    """When every source is in time order, the pages (newest first) are too, even with the
    audit log and the journal read a small window at a time."""
    ordered = {s: sorted(ms) for s, ms in sources.items()}
    pages = paged(ordered, limit, lambda s: window if s in timeline.TRUSTED_TIMES else 10**9)
    times = [x.ts for page in reversed(pages) for x in page.entries]
    assert times == sorted(times)


def test_codex_rollout_files_are_read_back_across_their_boundaries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeline_read, "WINDOW", 300)
    home = tmp_path / "home"
    day = home / ".codex" / "sessions" / "2026" / "01" / "01"
    day.mkdir(parents=True)

    def rollout(text: str) -> bytes:
        return json.dumps({"type": "response_item", "timestamp": T0.isoformat(), "payload": {
            "type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": text}]}}).encode() + b"\n"

    (day / "rollout-a.jsonl").write_bytes(b"".join(rollout(f"a{i}") for i in range(5)))
    (day / "rollout-b.jsonl").write_bytes(b"".join(rollout(f"b{i}") for i in range(5)))
    codex = Session(id=SID, name="s", repo_path="/r", worktree_path="/w",
                    branch="clauderon/s", base_ref="main", image="img", agent=Agent.CODEX,
                    created_at=T0, updated_at=T0)
    got: list[Entry] = []
    before = None
    for _ in range(100):
        b = timeline_read.messages(home, codex, before, now=at(1))
        got = list(b.entries) + got
        if b.exhausted:
            break
        before = b.start
    assert [x.title for x in got] == [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]
    assert len({x.key for x in got}) == 10


def test_a_flood_of_other_sessions_audit_lines_does_not_blank_the_timeline(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real readers, a real audit file: this session's request, then far more than a window
    of another session's lines. The newest page still shows this session's events, and
    paging back reaches the request. The audit log's index finds the request at once."""
    monkeypatch.setattr(timeline_read, "AUDIT_WINDOW", 2000)
    path = tmp_path / "audit.jsonl"
    path.write_text(audit_line(SID, "/mine", 1)
                    + "".join(audit_line("flooder", f"/{i}", 2) for i in range(200)))
    index = AuditIndex(path)
    rows = [Event(id=i, ts=at(i).isoformat(), session_id=SID, kind="hook",
                  payload={"hook": "Stop"}) for i in (3, 4)]
    cursor: dict[Source, int] = {}
    pages: list[list[str]] = []
    for _ in range(1000):
        audit = timeline_read.audits(index, SID, cursor.get(A))
        event_rows = [r for r in rows if r.id < cursor.get(V, 10**9)]
        events = timeline_read.events(event_rows, cursor.get(V), 50, 4)
        page = merge([audit, events], 50)
        pages.append([x.title for x in page.entries])
        if not page.more:
            break
        cursor = timeline.parse_cursor(page.cursor_text)
    assert pages[0] == ["GET api.example.test/mine", "hook Stop", "hook Stop"]
    assert [t for p in pages for t in p].count("GET api.example.test/mine") == 1
