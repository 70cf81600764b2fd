"""The audit line: format, redaction, the append-only file."""

from __future__ import annotations

import json
import stat
from dataclasses import fields
from pathlib import Path

from appliance.audit import AuditLog, AuditRecord, Decision, Phase, parse_line, redact_path
from proxy.relay import Meter, Tally


def record(**over: object) -> AuditRecord:
    base: dict[str, object] = dict(
        ts="2025-01-01T00:00:00.000Z", id="abc", session="s1", method="GET",
        host="api.github.com", path="/x", status=200, bytes_in=1, bytes_out=2,
        duration_ms=1.5, credential="github_token", decision=Decision.INJECTED)
    base.update(over)
    return AuditRecord(**base)  # type: ignore[arg-type]


def test_line_round_trips() -> None:
    rec = record()
    line = rec.to_json_line()
    assert line.endswith("\n") and line.count("\n") == 1
    assert parse_line(line) == rec
    assert set(json.loads(line)) == {
        "ts", "id", "session", "method", "host", "path", "status", "bytes_in", "bytes_out",
        "duration_ms", "credential", "decision", "error", "note", "phase", "stream"}
    # Every field, in the order of the record (the line is built by hand).
    assert list(json.loads(line)) == [f.name for f in fields(AuditRecord)]


def test_the_two_lines_of_an_open_exchange_round_trip_and_older_lines_still_read() -> None:
    opened = record(id="o1", status=101, phase=Phase.OPEN, stream="o1")
    ended = record(id="e1", status=101, phase=Phase.END, stream="o1", bytes_out=99)
    assert [parse_line(r.to_json_line()) for r in (opened, ended)] == [opened, ended]
    assert json.loads(opened.to_json_line())["phase"] == "open"
    # A line written before the exchange's two lines existed: neither key, read as one line.
    older = {k: v for k, v in json.loads(record().to_json_line()).items()
             if k not in ("phase", "stream")}
    assert parse_line(json.dumps(older)) == record()


def test_line_is_what_json_dumps_writes() -> None:
    rec = record(note="egress ask: allowed by a person", error="Ünïcode \u2028 \"quoted\"",
                 session=None, credential=None)
    body = {f.name: getattr(rec, f.name) for f in fields(AuditRecord)}
    body["decision"] = str(rec.decision)
    assert rec.to_json_line() == json.dumps(body, separators=(",", ":"),
                                            ensure_ascii=False) + "\n"


def test_secret_looking_query_values_are_redacted() -> None:
    assert redact_path("/a?page=2&access_token=abc&sig=x&q=sk-ant-123&code=9") == (
        "/a?page=2&access_token=REDACTED&sig=REDACTED&q=REDACTED&code=REDACTED")
    assert redact_path("/plain") == "/plain"
    assert redact_path("/plain#frag") == "/plain#frag"
    assert redact_path("/a?") == "/a?"


def test_log_appends_one_line_per_record_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.write(record())
        log.reopen()
        log.write(record(id="def"))
    assert [parse_line(x).id for x in path.read_text().splitlines()] == ["abc", "def"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_opening_line_is_written_once_with_the_bytes_so_far() -> None:
    opened: list[str] = []
    meter = Meter(decision=Decision.INJECTED, bytes_in=10, bytes_out=3)
    meter.opening = lambda: opened.append("line") or "stream-1"
    meter.sending, meter.receiving = Tally(), Tally()
    meter.sending.moved, meter.receiving.moved = 5, 7
    assert meter.so_far() == (15, 10)
    meter.sending = meter.receiving = None
    assert meter.so_far() == (10, 3)
    # The bound passing and the answer turning out to be a stream: one line, one stream.
    meter.open()
    meter.open()
    assert (opened, meter.stream) == (["line"], "stream-1")
