"""The relay's first question to the person's terminal: its answer taken out of the keys,
cut anywhere, and what the end of an attach waits for."""

from __future__ import annotations

import pytest

from cli.termanswers import LEARN_SECONDS, FirstAnswer, barrier_deadline

ANSWER = b"\x1b[?62;22c"


@pytest.mark.parametrize("before", [b"", b"ls\r", b"\x1b[A", "\u00e9\u011b".encode()])
def test_the_answer_is_taken_out_of_the_keys_cut_at_every_byte(before: bytes) -> None:
    keys = before + ANSWER + b"q\x1b[?1;2c"  # a second one, after: keys (a paste), passed
    for cut in range(len(keys) + 1):
        first = FirstAnswer()
        got = first.feed(keys[:cut]) + first.feed(keys[cut:])
        assert (got, first.answered, first.holding) == (before + b"q\x1b[?1;2c", True, False), cut


def test_keys_that_only_begin_like_an_answer_are_held_then_passed() -> None:
    first = FirstAnswer()
    assert first.feed(b"a\x1b") == b"a" and first.holding  # a lone escape, or an answer's start
    assert first.feed(b"[?6") == b"" and first.holding
    assert first.feed(b"x") == b"\x1b[?6x" and not first.holding and not first.answered
    assert first.feed(b"\x1b") == b"" and first.flush() == b"\x1b"  # nothing followed it
    assert not first.holding and first.feed(b"\x1b[?1;2c") == b"" and first.answered
    assert first.feed(b"\x1b") == b"\x1b"  # once answered, every key passes at once


def test_the_end_waits_as_the_first_answer_tells() -> None:
    # Answered: the barrier's answer is waited for, from the end.
    assert barrier_deadline(True, 100.0, 300.0) == (300.0 + LEARN_SECONDS, 1)
    # Not answered in all the time given: the terminal answers nothing; nothing is asked.
    assert barrier_deadline(False, 100.0, 100.0 + LEARN_SECONDS) is None
    # A short attach: both answers are still owed, within the time the first was given.
    assert barrier_deadline(False, 100.0, 101.0) == (100.0 + LEARN_SECONDS, 2)
