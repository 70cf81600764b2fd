"""What a sync says of a path git's object check refused in one of the agent's trees (pure)."""

from __future__ import annotations

import pytest

from appliance.branchsync import fsck_refused


@pytest.mark.parametrize(("said", "words"), [
    ("error: object c3d1: hasDotgit: contains '.git'\nfatal: fsck error in packed object",
     "macOS or Windows reads as .git"),
    ("error: object f374: hasDotdot: contains '..'", "a path named `..`"),
    ("error: object 0a1b: fullPathname: contains full pathnames", "`/` in a name"),
    ("error: object 0a1b: gitmodulesUrl: disallowed submodule url: --upload-pack=x",
     "a .gitmodules whose URL git would run"),
    ("error: object 0a1b: gitmodulesSymlink: .gitmodules is a symbolic link",
     "a .gitmodules that is a symbolic link"),
    ("error: object 0a1b: badTimezone: invalid author/committer line", None),
    ("fatal: fetch-pack: invalid index-pack output", None),
    ("error: object ", None),
])
def test_a_refused_path_is_named(said: str, words: str | None) -> None:
    refused = fsck_refused(said)
    assert (refused is None) if words is None else (refused is not None and words in refused)
