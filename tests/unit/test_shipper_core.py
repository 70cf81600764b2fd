"""The shipper's pure core: checkpoint format, where to resume, what to do next, cutting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.errors import ConfigError
from appliance.shipper.checkpoint import (
    ArchiveMark,
    Checkpoint,
    FileId,
    Position,
    fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from appliance.shipper.follow import (
    Action,
    FileStat,
    is_final,
    next_action,
    resume,
    shipped_rotated,
)
from appliance.shipper.lines import Batch, cut
from appliance.shipper.retry import backoff

A, B, C = FileId(dev=1, ino=10), FileId(dev=1, ino=11), FileId(dev=1, ino=12)


def stat(file: FileId, size: int, name: str = "audit.jsonl") -> FileStat:
    return FileStat(path=Path("/h") / name, file=file, size=size)


def pos(file: FileId, offset: int) -> Position:
    return Position(file=file, offset=offset, head=fingerprint(b""), head_len=0)


# --- checkpoint --------------------------------------------------------------------


def test_checkpoint_round_trips(tmp_path: Path) -> None:
    cp = Checkpoint(position=Position(file=A, offset=42, head="ab", head_len=2),
                    archive=ArchiveMark(name="audit-2024-01-02.jsonl.gz", size=99))
    path = tmp_path / "checkpoint.json"
    save_checkpoint(path, cp)
    assert load_checkpoint(path) == cp
    assert json.loads(path.read_text())["position"]["offset"] == 42
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"]  # no temp file left


def test_missing_checkpoint_is_empty(tmp_path: Path) -> None:
    assert load_checkpoint(tmp_path / "nope.json") == Checkpoint()
    save_checkpoint(tmp_path / "c.json", Checkpoint())
    assert load_checkpoint(tmp_path / "c.json") == Checkpoint()


@pytest.mark.parametrize("text", ["{", '{"version": 99}', '{"version": 1, "position": {}}'])
def test_broken_checkpoint_names_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"checkpoint\.json"):
        load_checkpoint(path)


# --- resume ------------------------------------------------------------------------


def test_fresh_start_reads_the_oldest_unshipped_file_from_zero() -> None:
    assert resume(None, None, []) is None
    start = resume(None, stat(B, 5), [stat(A, 9, "audit.jsonl.1")])
    assert start is not None and start.target.file == A and start.offset == 0
    start = resume(None, stat(B, 5), [])
    assert start is not None and (start.target.file, start.offset, start.verify) == (B, 0, False)


def test_resume_finds_the_checkpointed_file_wherever_it_was_renamed() -> None:
    rotated = stat(A, 100, "audit.jsonl.20240101T000000000000Z")
    start = resume(pos(A, 60), stat(B, 5), [rotated])
    assert start is not None
    assert (start.target, start.offset, start.verify) == (rotated, 60, True)


def test_resume_ignores_a_file_shorter_than_the_offset() -> None:
    # Same inode number, fewer bytes: a new file reusing the inode; start over (dupes, no loss).
    start = resume(pos(A, 600), stat(A, 5), [])
    assert start is not None and (start.offset, start.verify) == (0, False)


def test_shipped_rotated_files() -> None:
    r1, r2 = stat(A, 1, "audit.jsonl.1"), stat(B, 1, "audit.jsonl.2")
    live = stat(C, 1)
    assert shipped_rotated(None, live, [r1, r2]) == []
    assert shipped_rotated(pos(C, 0), live, [r1, r2]) == [r1, r2]
    assert shipped_rotated(pos(B, 0), live, [r1, r2]) == [r1]
    assert shipped_rotated(pos(A, 0), live, [r1, r2]) == []
    # A checkpoint naming no file we can find: assume nothing is done.
    assert shipped_rotated(pos(FileId(dev=9, ino=9), 0), live, [r1, r2]) == []


# --- next action -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "offset", "live", "rotate", "expected"),
    [
        (stat(A, 10), 10, stat(A, 10), 100, Action.WAIT),
        (stat(A, 10), 4, stat(A, 10), 100, Action.READ),
        (stat(A, 100), 4, stat(A, 100), 100, Action.ROTATE),  # rotate before reading on
        (stat(A, 100), 4, stat(A, 100), None, Action.READ),  # no reopener: never rotate
        (stat(A, 3), 10, stat(A, 3), 100, Action.RESTART),
        (stat(A, 500, "r"), 10, None, 100, Action.READ),  # rotated: read on, never rotate
        (stat(A, 500, "r"), 500, None, 100, Action.REOPEN),  # writer has not reopened
        (stat(A, 500, "r"), 10, stat(B, 0), 100, Action.READ),  # finish the old file first
        (stat(A, 500, "r"), 500, stat(B, 7), 100, Action.MOVE_ON),
    ],
)
def test_next_action(current: FileStat, offset: int, live: FileStat | None,
                     rotate: int | None, expected: Action) -> None:
    assert next_action(current=current, offset=offset, live=live,
                       rotate_bytes=rotate) is expected


def test_a_file_is_final_once_another_live_file_exists() -> None:
    assert not is_final(stat(A, 1), None)
    assert not is_final(stat(A, 1), stat(A, 1))
    assert is_final(stat(A, 1), stat(B, 0))


# --- cutting lines -----------------------------------------------------------------


def test_cut_keeps_whole_lines_only() -> None:
    piece = cut(b'{"a":1}\n{"b":2}\n{"c"', max_lines=10, full=False, final=False)
    assert piece.lines == (b'{"a":1}\n', b'{"b":2}\n')
    assert piece.used == 16 and piece.torn == 0


def test_cut_stops_at_max_lines() -> None:
    piece = cut(b"1\n2\n3\n", max_lines=2, full=False, final=True)
    assert piece.lines == (b"1\n", b"2\n") and piece.used == 4


def test_cut_ships_a_partial_tail_of_a_finished_file() -> None:
    piece = cut(b"1\n2", max_lines=10, full=False, final=True)
    assert piece.lines == (b"1\n", b"2\n") and piece.used == 3 and piece.torn == 1


def test_cut_ships_an_over_long_line_in_pieces_rather_than_growing() -> None:
    piece = cut(b"x" * 8, max_lines=10, full=True, final=False)
    assert piece.lines == (b"x" * 8 + b"\n",) and piece.used == 8
    # A full chunk that does hold a newline waits for the rest of its last line.
    assert cut(b"1\nxxxxxx", max_lines=10, full=True, final=False).used == 2


def test_nothing_to_cut() -> None:
    assert cut(b"", max_lines=5, full=False, final=True).lines == ()
    assert cut(b"partial", max_lines=5, full=False, final=False).used == 0


@given(st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"") + b"\n"),
                max_size=30),
       st.integers(min_value=1, max_value=7), st.integers(min_value=1, max_value=64))
def test_cutting_in_chunks_reproduces_the_stream(lines: list[bytes], max_lines: int,
                                                 chunk: int) -> None:
    data = b"".join(lines)
    offset, out = 0, list[bytes]()
    while offset < len(data):
        piece = data[offset:offset + chunk]
        got = cut(piece, max_lines=max_lines, full=False, final=False)
        assert got.used > 0 or not got.lines
        if not got.lines:  # a line longer than the chunk: read with a bigger chunk
            chunk *= 2
            continue
        out += got.lines
        offset += got.used
    assert out == lines


def test_batch_key_names_the_byte_range() -> None:
    batch = Batch(file=A, start=5, end=9, lines=(b"a\n", b"b\n"))
    assert batch.key == "1:10:5-9" and batch.body == b"a\nb\n"


# --- back-off ----------------------------------------------------------------------


def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff(n, base=0.5, cap=10.0) for n in range(8)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert delays[-1] == 10.0
    assert delays == sorted(delays)
    assert backoff(1000, cap=60.0) == 60.0
    assert 0.75 * 4.0 <= backoff(3, base=0.5, cap=60.0, jitter=0.99) < 4.0
