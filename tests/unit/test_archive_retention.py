"""Which archive files the shipper removes: by the day its name carries, never by size."""

from __future__ import annotations

from datetime import date

import pytest

from appliance.shipper.archive import day_of, expired

TODAY = date(2026, 12, 6)


def f(day: str) -> str:
    return f"audit-{day}.jsonl.gz"


@pytest.mark.parametrize(("names", "keep_days", "current", "gone"), [
    # 90 days besides today: the day 90 days back is kept, the one before it goes.
    ([f("2026-09-06"), f("2026-09-07"), f("2026-12-06")], 90, None, [f("2026-09-06")]),
    # One day: yesterday stays, the day before goes; today's never.
    ([f("2026-12-04"), f("2026-12-05"), f("2026-12-06")], 1, None, [f("2026-12-04")]),
    # 0 keeps every file, however old.
    ([f("2001-01-01"), f("2026-12-06")], 0, None, []),
    # A file of mixed days is named for the day its last batch was written: the lines of
    # 2026-09-01 in the file of 2026-09-07 keep it.
    ([f("2026-09-07")], 90, None, []),
    # The file the last batch went to is never removed, even after a long pause.
    ([f("2026-01-01"), f("2026-02-01")], 90, f("2026-02-01"), [f("2026-01-01")]),
    # A day ahead of the clock (it stepped back) stays.
    ([f("2027-01-01")], 1, None, []),
    # Names the shipper does not make are never touched.
    (["audit-2001-01-01.jsonl", "audit-2001-13-01.jsonl.gz", "notes.txt",
      "audit-01-01-2001.jsonl.gz", "audit-2001-01-01.jsonl.gz.part"], 1, None, []),
    # Oldest first.
    ([f("2026-03-01"), f("2026-01-01"), f("2026-02-01")], 30, None,
     [f("2026-01-01"), f("2026-02-01"), f("2026-03-01")]),
])
def test_expired(names: list[str], keep_days: int, current: str | None,
                 gone: list[str]) -> None:
    assert expired(names, TODAY, keep_days, current) == gone


@pytest.mark.parametrize(("name", "day"), [
    (f("2026-12-06"), date(2026, 12, 6)),
    ("audit-2026-02-30.jsonl.gz", None),
    ("audit-.jsonl.gz", None),
    ("other-2026-12-06.jsonl.gz", None),
])
def test_day_of(name: str, day: date | None) -> None:
    assert day_of(name) == day
