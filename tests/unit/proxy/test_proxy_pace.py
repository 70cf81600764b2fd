"""The pace of a credential (pure): a burst at once, then one request an interval, a short
wait held, a long one refused and not counted."""

from __future__ import annotations

import json

import pytest

from proxy import refusals
from proxy.pace import SWEEP_AT, Admission, Pace, Pacer, admit

GITHUB = Pace(1200)  # one every 3 s, 120 at once
KEY = ("s1", "github_token")


def test_the_burst_and_the_interval_follow_the_hourly_pace() -> None:
    assert (GITHUB.interval, GITHUB.burst) == (3.0, 120)
    assert (Pace(60).interval, Pace(60).burst) == (60.0, 10)  # never fewer than 10 at once
    assert Pace(60, 2).burst == 2 and Pace(1200) == Pace(1200, 120)


def test_a_burst_goes_at_once_then_requests_wait_then_they_are_refused() -> None:
    pacer = Pacer()
    verdicts = [pacer.take(KEY, 100.0, GITHUB, hold=30.0) for _ in range(135)]
    assert verdicts[:120] == [Admission()] * 120
    # The next ten are held one interval apart, up to the hold of 30 s.
    assert [v.wait for v in verdicts[120:130]] == [3.0 * n for n in range(1, 11)]
    assert not any(v.refused for v in verdicts[:130])
    # Past the hold: refused, told when to come back, and not counted.
    assert verdicts[130] == Admission(refused=True, retry_after=33)
    assert all(v == verdicts[130] for v in verdicts[130:])
    assert pacer.due[KEY] == 100.0 + 130 * 3.0


def test_time_gives_the_burst_back_and_keys_are_apart() -> None:
    pacer = Pacer()
    for _ in range(120):
        pacer.take(KEY, 0.0, GITHUB, hold=0.0)
    assert pacer.take(KEY, 0.0, GITHUB, hold=0.0).refused
    assert pacer.take(("s2", "github_token"), 0.0, GITHUB, hold=0.0) == Admission()
    assert pacer.take(("s1", "npm_token"), 0.0, GITHUB, hold=0.0) == Admission()
    assert pacer.take(KEY, 3.0, GITHUB, hold=0.0) == Admission()  # one interval on
    assert pacer.take(KEY, 3.0, GITHUB, hold=0.0).refused
    # An hour on, the whole burst is back.
    assert all(pacer.take(KEY, 3603.0, GITHUB, hold=0.0) == Admission() for _ in range(120))


@pytest.mark.parametrize("hold", [0.0, 1.0, 2.5])
def test_a_wait_longer_than_the_hold_is_refused(hold: float) -> None:
    tat = 10.0 + 120 * 3.0  # the burst spent at 10.0
    nxt, verdict = admit(tat, 10.0, GITHUB, hold)
    assert nxt is None and verdict == Admission(refused=True, retry_after=3)
    nxt, verdict = admit(tat, 10.0, GITHUB, 3.0)
    assert nxt == tat + 3.0 and verdict == Admission(wait=3.0)


def test_the_table_forgets_only_what_is_no_longer_ahead() -> None:
    pacer = Pacer()
    for n in range(SWEEP_AT):
        pacer.take((f"s{n}", "c"), 0.0, Pace(3600), hold=0.0)  # each due at 1.0
    busy = ("busy", "c")
    for _ in range(20):
        pacer.take(busy, 5.0, Pace(3600), hold=0.0)  # due at 25.0
    assert len(pacer.due) == 1 and pacer.due[busy] == 25.0


def test_the_refusal_says_what_happened_where_each_client_looks() -> None:
    answer = refusals.paced("flood", "github_token", GITHUB, 7)
    assert (answer.status, answer.error_type, answer.decision) == (429, "PACED", "blocked")
    assert answer.headers == [(b"retry-after", b"7")]
    doc = json.loads(answer.body)
    # GitHub's clients show ``message``; the model SDKs ``error.message``.
    assert doc["message"] == doc["error"]["message"] == (
        "Held back by Clauderon: session 'flood' sends requests with github_token faster "
        "than its pace (1200 an hour, 120 at once), which keeps the credential's quota for "
        "the others. Try again in 7 s; its owner can change the pace in proxy.toml [paces].")
    assert answer.note == "pace: github_token over 1200 an hour"
