"""The audit log's index: its pure scan, and how it follows a real file as it grows, is
torn, rotates and is truncated, within its bounds."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from appliance import audit_index
from appliance.audit import (
    CUT_OFF,
    PROXY_RUN,
    AuditLog,
    AuditRecord,
    Decision,
    cut_off,
    outcome,
    parse_line,
    record_run,
    recorded_run,
    run_of,
    started,
)
from appliance.audit_index import AuditIndex
from appliance.audit_scan import scan, session_of
from appliance.timeline_read import proxy_run


def line(session: str | None, path: str = "/") -> str:
    return AuditRecord(ts="2025-01-01T00:00:00Z", id="r", session=session, method="GET",
                       host="h.test", path=path, status=200, bytes_in=0, bytes_out=0,
                       duration_ms=1.0, credential=None,
                       decision=Decision.PASSED).to_json_line()


@pytest.mark.parametrize(("raw", "expected"), [
    (line("s1"), "s1"),
    (line(None), None),
    # A path that spells the key is a value: its quotes are escaped, the key comes first.
    (line("s1", '/"session":"s2"'), "s1"),
    (line(None, '/"session":"s2"'), None),
    ('{"ts":"t","id":"r","session":"a\\"b"}', None),  # never an id the appliance makes
    ('{"session":"cut', None),
    ("not json at all", None),
    ("", None),
])
def test_the_session_of_a_line(raw: str, expected: str | None) -> None:
    assert session_of(raw.rstrip("\n").encode()) == expected


@pytest.mark.parametrize(("data", "base", "found", "after"), [
    (b"", 0, [], 0),
    (b'{"session":"a"}\n', 10, [("a", 10, 25)], 26),
    (b'{"session":"a"}\n{"session":null}\n{"session":"b"}\n', 0,
     [("a", 0, 15), ("b", 33, 48)], 49),
    (b'{"session":"a"}\n{"session":"b"', 0, [("a", 0, 15)], 16),  # the last still written
    (b'{"session":"a"', 5, [], 5),
    (b"\n\n", 0, [], 2),
])
def test_scan(data: bytes, base: int, found: list[tuple[str, int, int]], after: int) -> None:
    assert scan(data, base) == (found, after)


def paths(index: AuditIndex, session: str, limit: int = 100,
          upto: int | None = None) -> list[str]:
    out = []
    for _, raw in index.lines(session, limit, upto=upto).lines:
        body = raw.decode()
        out.append(body[body.index('"path":"') + 8:].split('"')[0])
    return out


def test_a_session_keeps_its_lines_however_much_another_writes(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    index = AuditIndex(path)
    assert index.lines("a", 10).lines == ()  # no file yet
    path.write_text(line("a", "/a0") + line("b", "/b0"))
    assert paths(index, "a") == ["/a0"]
    with path.open("a") as f:
        f.write("".join(line("b", f"/b{i}") for i in range(1, 2000)) + line("a", "/a1"))
        f.write(line("a", "/a2")[:30])  # being written
    assert paths(index, "a") == ["/a0", "/a1"]
    assert paths(index, "a", limit=1) == ["/a1"]
    assert paths(index, "b", limit=2) == ["/b1998", "/b1999"]
    with path.open("a") as f:
        f.write(line("a", "/a2")[30:])  # now whole
    assert paths(index, "a") == ["/a0", "/a1", "/a2"]
    found = index.lines("a", 10)
    ends = [end for end, _ in found.lines]
    assert found.whole and ends[-1] == found.read == path.stat().st_size
    assert paths(index, "a", upto=ends[1]) == ["/a0", "/a1"]
    assert paths(index, "a", upto=ends[1] - 1) == ["/a0"]
    assert index.lines("nobody", 10).whole


def test_a_rotated_file_stays_in_view_truncation_and_a_restart_start_it_again(
        tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text(line("a", "/old") * 3)
    index = AuditIndex(path)
    assert paths(index, "a") == ["/old"] * 3
    os.rename(path, tmp_path / "audit.jsonl.1")  # the shipper's rotation
    with (tmp_path / "audit.jsonl.1").open("a") as f:  # the writer, before it reopens
        f.write(line("a", "/late"))
    assert paths(index, "a") == ["/old"] * 3 + ["/late"]  # no live file yet: the renamed one
    with (tmp_path / "audit.jsonl.1").open("a") as f:
        f.write(line("a", "/last"))
    path.write_text(line("a", "/new"))  # the writer reopened
    (tmp_path / "audit.jsonl.1").unlink()  # compressed, and removed: still held
    assert paths(index, "a") == ["/old"] * 3 + ["/late", "/last", "/new"]
    found = index.lines("a", 10)
    assert found.whole and found.read == found.base + path.stat().st_size
    assert paths(index, "a", upto=found.base) == ["/old"] * 3 + ["/late", "/last"]
    path.write_text("")  # truncated
    assert paths(index, "a") == []
    path.write_text(line("a", "/after"))
    assert paths(index, "a") == ["/after"]
    assert paths(AuditIndex(path), "a") == ["/after"]  # a new process reads the live file
    index.close()


def test_the_lines_of_the_rotated_files_past_the_newest_few_are_forgotten(
        tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    index = AuditIndex(path, rotated=2, saved=0)
    for n in range(4):
        path.write_text(line("a", f"/a{n}") + line("b", f"/b{n}"))
        assert paths(index, "a") == [f"/a{i}" for i in range(max(0, n - 2), n + 1)]
        assert index.lines("a", 10).whole is (n <= 2)
        os.rename(path, tmp_path / f"audit.jsonl.{n}")
        (tmp_path / f"audit.jsonl.{n}").unlink()
    path.write_text(line("b", "/b4"))
    assert paths(index, "a") == ["/a2", "/a3"] and not index.lines("a", 10).whole
    assert paths(index, "b") == ["/b2", "/b3", "/b4"]
    index.close()
    assert paths(index, "b") == ["/b4"]  # closed: read again from the live file


def test_its_memory_is_bounded_and_says_what_it_forgot(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(line("a", f"/a{i}") for i in range(5)) + line("b") + line("c"))
    index = AuditIndex(path, per_session=3, sessions=2)
    assert index.lines("a", 10).lines == ()  # forgotten: the least recent writer
    assert not index.lines("a", 10).whole and not index.lines("d", 10).whole
    assert index.lines("c", 10).whole is False  # sessions were forgotten before it came
    path.write_text("".join(line("a", f"/a{i}") for i in range(5)))
    index = AuditIndex(path, per_session=3, sessions=2)
    found = index.lines("a", 10)
    assert paths(index, "a") == ["/a2", "/a3", "/a4"] and not found.whole
    assert not index.lines("a", 2).whole  # more lines than asked for


def test_a_line_longer_than_a_chunk_is_walked_past(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """No writer of ours writes one; its middle, which may spell anything, is never read as
    the start of a line."""
    monkeypatch.setattr(audit_index, "CHUNK", 400)
    path = tmp_path / "audit.jsonl"
    path.write_text("x" * 500 + '{"session":"b"}' + "y" * 500 + "\n" + line("a", "/whole"))
    index = AuditIndex(path)
    assert paths(index, "a") == ["/whole"] and paths(index, "b") == []


def test_a_new_file_in_the_old_ones_place_is_read_again(tmp_path: Path) -> None:
    """The rotated file removed and its inode given to the new one, which has grown past
    what was read of the old: its first bytes tell them apart."""
    path = tmp_path / "audit.jsonl"
    path.write_text(line("a", "/old"))
    index = AuditIndex(path)
    assert paths(index, "a") == ["/old"]
    with path.open("r+") as f:  # the same inode, other contents, longer
        f.write(line("b", "/new") + line("a", "/new"))
    assert paths(index, "a") == ["/new"] and paths(index, "b") == ["/new"]


def test_a_flood_that_rotates_again_and_again_leaves_a_neighbours_newest_lines(
        tmp_path: Path) -> None:
    """The neighbour's newest lines of each rotated file let go are kept, within the bound;
    so are the flooder's, within the same bound."""
    path = tmp_path / "audit.jsonl"
    size = len(line("b", "/b0-000"))  # room for three of either's lines, not four
    index = AuditIndex(path, rotated=1, saved=3 * size)
    for n in range(6):
        path.write_text(line("a", f"/a{n}0") + line("a", f"/a{n}1")
                        + "".join(line("b", f"/b{n}-{i:03d}") for i in range(50)))
        assert paths(index, "a")[-2:] == [f"/a{n}0", f"/a{n}1"]
        os.rename(path, tmp_path / f"audit.jsonl.{n}")
        (tmp_path / f"audit.jsonl.{n}").unlink()
    path.write_text(line("c", "/c"))
    # Six rotations, one file held: the five let go left a's three newest lines of them.
    assert paths(index, "a") == ["/a31", "/a40", "/a41", "/a50", "/a51"]
    assert not index.lines("a", 10).whole
    # The flooder's lines of the files let go: as many, not more.
    assert paths(index, "b", limit=1000)[:4] == ["/b4-047", "/b4-048", "/b4-049", "/b5-000"]
    assert len(paths(index, "b", limit=1000)) == 3 + 50
    # What each session's lines cost the disk counts them all, forgotten or not.
    written = {"a": sum(len(line("a", f"/a{n}{i}")) for n in range(6) for i in (0, 1)),
               "b": 6 * 50 * size, "c": len(line("c", "/c"))}
    assert index.spent() == written
    index.close()


@pytest.mark.parametrize("compressed", [(), (1,), (0, 1), (0, 1, 2)])
def test_the_files_rotated_between_two_looks_are_read(tmp_path: Path,
                                                      compressed: tuple[int, ...]) -> None:
    """Rotated twice over (and more) before the next look: the files between are read, plain
    or compressed as the shipper leaves them; ones of other names or before are not."""
    path = tmp_path / "audit.jsonl"
    stems = [tmp_path / f"audit.jsonl.20260101T00000000000{n}Z" for n in range(4)]
    path.write_text(line("a", "/before"))
    index = AuditIndex(path, rotated=3)
    assert paths(index, "a") == ["/before"]
    for n in range(3):
        with path.open("a") as f:
            f.write(line("b", f"/b{n}") + line("a", f"/a{n}"))
        os.rename(path, stems[n])
        # A line's time and id start each file (a compressed one is told by them).
        path.write_text(line(f"x{n}"))
    (tmp_path / "audit.jsonl.other").write_text(line("a", "/other"))
    for n in compressed:
        with stems[n].open("rb") as src, gzip.open(f"{stems[n]}.gz", "wb") as dst:
            dst.write(src.read())
        stems[n].unlink()
    with path.open("a") as f:
        f.write(line("a", "/live"))
    assert paths(index, "a") == ["/before", "/a0", "/a1", "/a2", "/live"]
    assert paths(index, "b") == ["/b0", "/b1", "/b2"]
    assert paths(index, "x2") == ["/"]
    found = index.lines("a", 10)
    assert found.whole and found.read == found.base + path.stat().st_size
    # The live file rotated again since the look that opened it: read once, as the live one.
    with path.open("a") as f:
        f.write(line("a", "/last"))
    os.rename(path, stems[3])
    path.write_text(line("y") + line("a", "/new"))
    assert paths(index, "a")[-3:] == ["/live", "/last", "/new"]
    assert len(paths(index, "a")) == 7
    index.close()


@pytest.mark.parametrize("compressed", [(), (0,), (0, 1)])
def test_after_a_restart_the_rotated_files_still_on_disk_are_read(
        tmp_path: Path, compressed: tuple[int, ...]) -> None:
    """The API restarted after a flood rotated the log: a session's lines in the rotated
    files the shipper still keeps (plain or compressed) are in its view, not only in the
    archive; the newest ``rotated`` are held, the older ones' newest lines saved."""
    path = tmp_path / "audit.jsonl"
    stems = [tmp_path / f"audit.jsonl.20260101T00000000000{n}Z" for n in range(3)]
    for n in range(3):
        path.write_text(line(f"x{n}") + line("a", f"/a{n}") + line("b", f"/b{n}"))
        os.rename(path, stems[n])
    for n in compressed:
        with stems[n].open("rb") as src, gzip.open(f"{stems[n]}.gz", "wb") as dst:
            dst.write(src.read())
        stems[n].unlink()
    path.write_text(line("a", "/live"))
    index = AuditIndex(path, rotated=2)  # a new process: nothing read before
    assert paths(index, "a") == ["/a0", "/a1", "/a2", "/live"]
    assert paths(index, "b") == ["/b0", "/b1", "/b2"]
    found = index.lines("a", 10)
    assert found.read == found.base + path.stat().st_size
    with path.open("a") as f:
        f.write(line("a", "/next"))
    assert paths(index, "a")[-2:] == ["/live", "/next"]
    index.close()


@pytest.mark.parametrize(("phase", "status", "took", "said"), [
    (None, 200, 12.0, "200"),
    ("open", 101, 3.0, "open since 11:59:02"),  # the opening's answer is not its outcome
    ("end", 101, 37_500.0, "ended 101 after 37.5 s"),
    ("end", 200, None, "ended 200"),
])
def test_what_became_of_a_request_as_every_view_says_it(
        phase: str | None, status: int, took: float | None, said: str) -> None:
    assert outcome(phase, status, took, "2025-01-02T11:59:02.5Z") == said


@pytest.mark.parametrize(("phase", "stream", "ended", "run", "cut"), [
    ("open", "aa.1", set(), "bb", True),         # an earlier run, never ended: cut off
    ("open", "aa.1", {"aa.1"}, "bb", False),     # an earlier run that ended it
    ("open", "bb.1", set(), "bb", False),        # this run's: still open
    ("open", "aa.1", set(), None, False),        # no run started since anyone knows of
    ("open", "0123abcd", set(), "bb", False),    # written before streams named their run
    ("end", "aa.1", set(), "bb", False),         # an end line is no opening
    (None, None, set(), "bb", False),            # an ordinary request
])
def test_an_exchange_a_killed_proxy_left_open_is_cut_off(
        phase: str | None, stream: str | None, ended: set[str], run: str | None,
        cut: bool) -> None:
    assert cut_off(phase, stream, ended, run) is cut
    said = outcome(phase, 101, 3.0, "2025-01-02T11:59:02.5Z", cut=cut)
    assert (said == CUT_OFF) is cut


def test_the_proxys_start_up_line_is_read_back_by_an_older_reader_as_no_sessions() -> None:
    """Within the fields an older reader knows: a line of no session it shows, ``stream``
    the run's id."""
    line = started("bb", "2025-01-02T11:59:02.500Z").to_json_line()
    record = parse_line(line)
    assert (record.session, record.stream, record.phase, run_of("bb.1")) == (
        PROXY_RUN, "bb", None, "bb")
    assert session_of(line.encode()) == PROXY_RUN


def start_proxy(path: Path, run: str) -> None:
    """What the proxy does as it starts, before it takes a connection."""
    first = started(run, "2025-01-02T11:59:02.500Z")
    with AuditLog(path) as log:
        log.write(first)
    record_run(path, first)


def test_the_proxys_run_stays_known_however_many_sessions_write_after_it(
        tmp_path: Path) -> None:
    """Far more sessions than the index keeps write after the start-up line (an agent can
    open as many as it likes): the views still know the run, so an exchange a killed run
    left open is cut off, not open for ever."""
    path = tmp_path / "audit.jsonl"
    start_proxy(path, "bb")
    with path.open("a") as f:
        f.write("".join(line(f"s{n}") for n in range(300)))
    index = AuditIndex(path)
    try:
        assert index.lines("s299", 1).lines  # read, and the "(proxy)" key pushed out
        assert proxy_run(index) == "bb"
    finally:
        index.close()


def test_the_proxys_run_stays_known_once_its_start_up_lines_file_was_pruned(
        tmp_path: Path) -> None:
    """The log rotated after the proxy started and the shipper pruned that file; then the
    API restarted: the index it builds never reads the start-up line, yet knows the run."""
    path = tmp_path / "audit.jsonl"
    start_proxy(path, "bb")
    rotated = tmp_path / "audit.jsonl.20260101T000000000000Z"
    os.rename(path, rotated)
    path.write_text(line("a", "/live"))
    rotated.unlink()  # pruned: only in the archive now
    index = AuditIndex(path)
    try:
        assert paths(index, "a") == ["/live"]
        assert proxy_run(index) == "bb"
    finally:
        index.close()


@pytest.mark.parametrize(("written", "run"), [
    (started("bb", "2025-01-02T11:59:02.500Z").to_json_line(), "bb"),
    (None, None),  # a proxy from before the file: the log's index says
    (line("s1"), None),  # a session's line names no run
    (line(PROXY_RUN), None),  # nor one of no start
    ('{"session":"(proxy)","stream":"bb"', None),  # torn
    ("", None),
])
def test_the_run_named_beside_the_log(tmp_path: Path, written: str | None,
                                      run: str | None) -> None:
    path = tmp_path / "audit.jsonl"
    if written is not None:
        (tmp_path / "proxy-run.json").write_text(written)
    assert recorded_run(path) == run


def test_a_run_that_cannot_be_named_leaves_no_earlier_one_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    record_run(path, started("aa", "2025-01-02T11:59:02.500Z"))
    assert recorded_run(path) == "aa"
    (tmp_path / "proxy-run.json.part").mkdir()  # the new one cannot be written
    with pytest.raises(OSError):
        record_run(path, started("bb", "2025-01-02T11:59:03.500Z"))
    assert recorded_run(path) is None
