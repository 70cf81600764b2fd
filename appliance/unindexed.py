"""The work tree's files git will not put in an index, shown without one.

git refuses some paths in any index (a symlink named ``.gitmodules`` in any folder and any
case, or as Windows spells it; a folder macOS or Windows reads as ``.git``): one of them
failed the whole ``add --intent-to-add`` of the work tree's untracked files, so a name the
agent chose denied the person the diff of all its work. The diff adds with
``--ignore-errors`` and shows each file left out as git compares two files with no index
(``diff --no-index``): new, with its mode, a symlink as its target (never followed).
The commit checked out may hold such a path too (the agent writes its trees without an
index): ``read-tree`` refuses the whole tree then, and the index is filled entry by entry
(:func:`read_tree`), the path left out; the commit's own diff, of two trees, shows it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from appliance.errors import GitError, InvalidInput
from appliance.quoted import shown

#: The files left out that are each diffed by a git of their own; the others are named in
#: the file list and counted in the note.
SHOWN = 20


def refused(untracked: bytes, indexed: bytes) -> list[bytes]:
    """The files of ``ls-files --others -z`` (``untracked``, folders holding a repository of
    their own aside: they end in ``/``) that ``ls-files -z`` after the add (``indexed``)
    does not name."""
    listed = set(indexed.split(b"\0"))
    return sorted(p for p in set(untracked.split(b"\0"))
                  if p and not p.endswith(b"/") and p not in listed)


def note(paths: list[bytes]) -> str | None:
    """The answer's note on the files left out, or None when there are none."""
    if not paths:
        return None
    named = ", ".join(f'"{shown(p.decode("utf-8", "replace"))}"' for p in paths[:SHOWN])
    more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return (f"git will not index {len(paths)} new file(s) (names git refuses in a "
            f"repository): {named}{more}, shown as new files read with no index")


def part(git: Callable[..., bytes], paths: list[bytes], flags: tuple[str, ...],
         limit: int) -> tuple[list[dict[str, Any]], bytes]:
    """The files left out, each new (``?``), and the diff of the first :data:`SHOWN` against
    nothing (``flags``: no external diff, no textconv; at most ``limit`` bytes)."""
    files = [{"status": "?", "path": p.decode("utf-8", "replace")} for p in paths]
    text = b""
    for path in paths[:SHOWN]:
        if len(text) > limit:
            break
        text += git("diff", "--no-index", *flags, "--", "/dev/null", os.fsdecode(path),
                    limit=limit - len(text))
    return files, text


def read_tree(git: Callable[..., bytes], commit: str, limit: int) -> None:
    """Fill the index from ``commit``; when ``read-tree`` refuses a path of it, from its
    listing (at most ``limit`` bytes), each path git refuses left out (``update-index
    --index-info`` passes it by)."""
    try:
        git("read-tree", commit)
    except GitError:
        listed = git("ls-tree", "-r", "-z", "--full-tree", commit, limit=limit)
        if len(listed) > limit:
            raise InvalidInput("the workspace's commit lists too many files to show its "
                               "diff") from None
        git("update-index", "-z", "--index-info", input=listed)
