"""Which of a transcript's user messages the person sent: the matcher's table, the store's
claims kept across reads, and the transcript's and the timeline's positions agreeing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance import sentstore, timeline_read
from appliance.agents.logs import Kind
from appliance.agents.reader import read_transcript
from appliance.readers import host_tree
from appliance.sent import Sent, digest, match
from appliance.sessions import Agent, Session, SessionId
from appliance.store import Store
from cli.timeline_command import line

SID = SessionId("0b9f6a43-1111-2222-3333-444455556666")
YES, NO, KEY = digest("yes, push to main"), digest("no"), digest("here is my token")


@pytest.mark.parametrize(("rows", "asked", "mine", "claims"), [
    # Nothing sent: no user message is the person's.
    ([], [(10, 0, YES)], set(), {}),
    # Sent once, written once: that one.
    ([Sent(1, YES, None)], [(10, 0, YES)], {10}, {1: 10}),
    # Sent once, written twice (the agent copied it): the first read, only.
    ([Sent(1, YES, None)], [(10, 0, YES), (20, 5, YES)], {10}, {1: 10}),
    # Sent twice, written twice: both, the oldest sent first.
    ([Sent(2, YES, None), Sent(1, YES, None)], [(10, 0, YES), (20, 5, YES)], {10, 20},
     {1: 10, 2: 20}),
    # Already claimed by 20: 20 stays the person's, 10 takes nothing (read from 0 later).
    ([Sent(1, YES, 20)], [(10, 0, YES), (20, 5, YES)], {20}, {}),
    # The agent rewrote the claimed position with other words: not the person's now.
    ([Sent(1, YES, 10)], [(10, 0, KEY)], set(), {}),
    # A text nobody sent, among sent ones.
    ([Sent(1, NO, None)], [(10, 0, KEY), (20, 5, NO)], {20}, {1: 20}),
    # Sent when the logs ended at byte 100: a line begun before (whole, or all but its
    # newline) is not it; the one begun there or after is.
    ([Sent(1, YES, None, 100)], [(5000, 40, YES), (9000, 99, YES), (12000, 100, YES)],
     {12000}, {1: 12000}),
    # Two sent at different times: each line takes the oldest its start allows.
    ([Sent(1, YES, None, 0), Sent(2, YES, None, 100)], [(9000, 150, YES), (5000, 50, YES)],
     {9000}, {1: 9000}),
])
def test_match(rows: list[Sent], asked: list[tuple[int, int, str]], mine: set[int],
               claims: dict[int, int]) -> None:
    assert match(rows, asked) == (frozenset(mine), claims)


@pytest.mark.parametrize(("typed", "written", "same"), [
    ("yes", "yes", True),
    ("yes\n", "yes", True),  # the agent keeps no trailing newline or spaces
    ("  two\r\nlines ", "two\nlines", True),
    ("yes", "yes!", False),
    ("yes", "Yes", False),
    ("a\ud800", "a\ud800", True),  # a lone surrogate still digests
])
def test_digest(typed: str, written: str, same: bool) -> None:
    assert (digest(typed) == digest(written)) is same


def test_claims_are_kept_across_reads_and_bounded(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite")
    yes = "yes, push to main"
    sentstore.record(store, SID, yes, floor=7)
    assert sentstore.from_person(store, SID, [(6000, 3, yes)]) == set()  # begun before
    assert sentstore.from_person(store, SID, [(20000, 9, yes)]) == {20000}
    # A later read from the start sees the agent's copy first: the claim holds.
    assert sentstore.from_person(store, SID, [(10000, 8, yes), (20000, 9, yes)]) == {20000}
    assert sentstore.from_person(store, SID, [(30000, 10, yes)]) == set()
    assert sentstore.from_person(store, "other", [(20000, 9, yes)]) == set()
    for n in range(sentstore.KEEP + 5):
        sentstore.record(store, SID, f"m{n}")
    assert len(store.rows("SELECT id FROM sent_messages WHERE session_id = ?",
                          (SID,))) == sentstore.KEEP
    assert sentstore.from_person(store, SID, [(40, 0, "m0"), (50, 0, "m9")]) == {50}
    store.close()


def claude_line(kind: str, text: str) -> bytes:
    return json.dumps({"type": kind, "message": {"role": kind, "content": text},
                       "timestamp": "2025-01-01T00:00:00Z"}).encode() + b"\n"


def test_transcript_and_timeline_positions_agree(tmp_path: Path) -> None:
    """A message claimed on one is the same message on the other."""
    home = tmp_path / "home"
    log = home / ".claude" / "projects" / "-workspace" / f"{SID}.jsonl"
    log.parent.mkdir(parents=True)
    last = json.dumps({"type": "user", "message": {"content": [
        {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}).encode() + b"\n"
    log.write_bytes(claude_line("user", "hi") + claude_line("assistant", "hello") + last)
    now = datetime.now(UTC)
    s = Session(id=SID, name="s", repo_path="/r", worktree_path="/w", branch="clauderon/s",
                base_ref="main", image="img", agent=Agent.CLAUDE, created_at=now,
                updated_at=now)
    page = read_transcript(lambda: host_tree(home, label="home", absent="no home"), s, 0)
    asked: list[list[tuple[int, int, str]]] = []

    def said(user: Sequence[tuple[int, int, str]]) -> frozenset[int]:
        asked.append(list(user))
        return frozenset()

    batch = timeline_read.messages(home, s, None, now=now, said=said)
    user = [(m.pos, m.start, m.text) for m in page.messages if m.kind is Kind.USER]
    assert user == asked[0]
    assert [start for _, start, _ in user] == [0, *[log.stat().st_size - len(last)] * 2]
    assert [e.pos for e in batch.entries] == [m.pos for m in page.messages]
    assert len({m.pos for m in page.messages}) == 4


@pytest.mark.parametrize(("item", "labelled"), [
    ({"source": "message", "kind": "user", "title": "go", "from_person": True}, False),
    ({"source": "message", "kind": "user", "title": "go", "from_person": False}, True),
    ({"source": "message", "kind": "user", "title": "go"}, True),  # an API that says nothing
    ({"source": "message", "kind": "assistant", "title": "go", "from_person": False}, False),
    ({"source": "event", "kind": "user", "title": "go", "from_person": False}, False),
])
def test_the_cli_and_tui_line_labels_a_user_message_not_sent_from_here(
        item: dict[str, object], labelled: bool) -> None:
    assert ("not sent from here" in line(item)) is labelled
