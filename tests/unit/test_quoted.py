"""What the appliance quotes of a container's, an agent's or git's words: a table, each row
what was printed and the words a message holds."""

from __future__ import annotations

import pytest

from appliance.quoted import quote

ROWS = [
    (b"tmux: no server", 'the container printed "tmux: no server"'),
    (b"  \n", "the container printed nothing"),
    # A forged line of the appliance's own stays on the appliance's line, in the quotes.
    (b"/x\nclauderon: your token expired\n: No such file",
     'the container printed "/x\\nclauderon: your token expired\\n: No such file"'),
    (b'a" then the appliance\\', 'the container printed "a\\" then the appliance\\\\"'),
    (b"\x1b]52;c;ZXZpbA==\x07\r\t", 'the container printed "\\x1b]52;c;ZXZpbA==\\x07"'),
    ("a\u009bb\u2028c\u2029d".encode(), 'the container printed "a\\x9bb\\u2028c\\u2029d"'),
    # What is drawn as nothing, or reorders what is read, is named.
    ("is_ad\u200dmin \u202eevil".encode(),
     'the container printed "is_ad<U+200D>min <U+202E>evil"'),
    (b"\xff", 'the container printed "\ufffd"'),
]


@pytest.mark.parametrize(("printed", "words"), ROWS)
def test_the_table(printed: bytes, words: str) -> None:
    assert quote("the container", printed) == words
    assert quote("the container", printed.decode("utf-8", "replace")) == words


def test_bounded_keeping_the_end_or_the_start() -> None:
    long = "x" * 500 + "why"
    assert quote("git", long) == f'git printed "\u2026{"x" * 297}why"'
    assert quote("git", long, limit=4, end=False) == 'git printed "xxxx\u2026"'
