"""Which untracked files git left out of the scratch index, and how the note names them."""

from __future__ import annotations

import pytest

from appliance import unindexed


@pytest.mark.parametrize(("untracked", "indexed", "left_out"), [
    (b"", b"", []),
    (b"a\0b\0", b"a\0b\0c\0", []),
    (b".gitmodules\0a\0", b"a\0", [b".gitmodules"]),
    (b"nested/\0x/.GIT/config\0", b"", [b"x/.GIT/config"]),
    (b"\xff\0", b"", [b"\xff"]),
])
def test_refused(untracked: bytes, indexed: bytes, left_out: list[bytes]) -> None:
    assert unindexed.refused(untracked, indexed) == left_out


@pytest.mark.parametrize(("paths", "words"), [
    ([], None),
    ([b".gitmodules"], '1 new file(s) (names git refuses in a repository): ".gitmodules"'),
    ([b"a\nb"], "a\\nb"),
    ([b"%d" % i for i in range(25)], "and 5 more"),
])
def test_note(paths: list[bytes], words: str | None) -> None:
    note = unindexed.note(paths)
    assert (note is None) if words is None else (note is not None and words in note)
