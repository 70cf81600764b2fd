"""What one session's audit lines may cost a day (``proxy/auditshare.py``), table-tested."""

from __future__ import annotations

import pytest

from proxy.auditshare import Shares
from proxy.refusals import audit_share

PREV, DAY, NEXT = "2026-01-01", "2026-01-02", "2026-01-03"


@pytest.fixture
def shares() -> Shares:
    s = Shares()
    s.spend("a", 600, DAY)
    s.spend("a", 400, DAY)
    s.spend("b", 10, DAY)
    return s


@pytest.mark.parametrize(("session", "bound", "day", "over"), [
    ("a", 1000, DAY, True),     # its lines reached the bound
    ("a", 1001, DAY, False),    # one byte short
    ("a", 0, DAY, False),       # 0: no bound
    ("b", 1000, DAY, False),    # a neighbour's lines are its own
    ("c", 1, DAY, False),       # a session that wrote nothing
    ("a", 1000, NEXT, False),   # a new day: the count starts again
])
def test_a_session_is_over_its_share_once_its_own_lines_of_the_day_reach_it(
        shares: Shares, session: str, bound: int, day: str, over: bool) -> None:
    assert shares.over(session, bound, day) is over


@pytest.mark.parametrize(("session", "bound", "day", "written"), [
    ("a", 1000, DAY, True),     # past its share: a leak's line is still written
    ("a", 500, DAY, False),     # past two shares: counted, so a flood of leaks is bounded
    ("a", 501, DAY, True),      # one byte short of two
    ("a", 0, DAY, True),        # 0: no bound
    ("a", 500, NEXT, True),     # a new day
])
def test_a_honeytokens_line_is_written_past_the_share_up_to_a_second_one(
        shares: Shares, session: str, bound: int, day: str, written: bool) -> None:
    assert shares.evidence(session, bound, day) is written


def test_a_new_day_forgets_the_last_days_counts(shares: Shares) -> None:
    shares.spend("b", 5, NEXT)
    assert shares.spent == {"b": 5}
    assert not shares.over("a", 1, NEXT)


def test_a_line_of_an_earlier_day_forgets_no_count(shares: Shares) -> None:
    """A line is counted on the day it is written; one of an earlier day (a clock set back)
    is counted with the day's, and never starts the count again: it was an exchange begun
    before midnight whose line (its end, its opening) reset every session's share."""
    shares.spend("a", 10, PREV)
    assert shares.day == DAY and shares.spent == {"a": 1010, "b": 10}
    assert shares.over("a", 1000, DAY)


def test_every_refusal_is_counted_once_in_its_minutes_summary() -> None:
    s = Shares()
    assert s.refuse("a", "12:00") == []  # the first minute's summaries are not due yet
    assert s.refuse("a", "12:00") == []
    assert s.refuse("b", "12:00") == []
    # The first refusal of the next minute, or the minute's end, makes them due, once.
    assert s.refuse("a", "12:01") == [("a", "12:00", 2), ("b", "12:00", 1)]
    assert s.due("12:01") == []
    assert s.due("12:02") == [("a", "12:01", 1)]
    assert s.due("12:03") == []  # a quiet minute has no line
    s.refuse("b", "12:03")
    assert s.due(None) == [("b", "12:03", 1)]  # stopping: the open minute's too
    assert s.due(None) == []


@pytest.mark.parametrize(("bound", "said"), [
    (256 << 20, "reached 256 MiB"), (256 << 10, "reached 256 KiB"), (1 << 20, "reached 1 MiB")])
def test_the_refusal_says_why_what_to_do_and_that_the_others_go_on(bound: int,
                                                                   said: str) -> None:
    answer = audit_share("loud", bound)
    assert answer.status == 429 and answer.error_type == "AUDIT_SHARE"
    assert (b"retry-after", b"3600") in answer.headers
    assert said in answer.body and "'loud'" in answer.body, answer.body
    assert "the other sessions go on" in answer.body and "audit_bytes_per_day" in answer.body


def test_the_lines_no_session_proves_have_a_share_for_each_address_up_to_a_bound() -> None:
    """One share for all the unproven lines let one agent sending wrong tokens leave every
    other container's only counted: each address has its own, the first ``most`` of a day;
    the rest share one, so a flood of addresses grows no memory."""
    s = Shares()
    assert s.unproven("10.0.0.2", DAY, most=2) == "(unproven) 10.0.0.2"
    assert s.unproven("10.0.0.3", DAY, most=2) == "(unproven) 10.0.0.3"
    assert s.unproven("10.0.0.2", DAY, most=2) == "(unproven) 10.0.0.2"  # known: its own
    assert s.unproven("10.0.0.4", DAY, most=2) == "(unproven) others"
    assert s.unproven("10.0.0.5", DAY, most=2) == "(unproven) others"
    assert s.addresses == {"10.0.0.2", "10.0.0.3"}
    s.spend("(unproven) 10.0.0.2", 1000, DAY)
    assert s.over("(unproven) 10.0.0.2", 1000, DAY)
    assert not s.over("(unproven) 10.0.0.3", 1000, DAY)  # a neighbour's are its own
    # A new day forgets them: the next address has a share of its own again.
    assert s.unproven("10.0.0.4", NEXT, most=2) == "(unproven) 10.0.0.4"
    assert s.addresses == {"10.0.0.4"} and s.spent == {}
    # A line of an earlier day (a clock set back) forgets nothing.
    assert s.unproven("10.0.0.6", DAY, most=2) == "(unproven) 10.0.0.6"
    assert s.addresses == {"10.0.0.4", "10.0.0.6"}
