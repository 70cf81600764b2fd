"""Repositories the agent nests in its work tree that host git cannot look at without waiting.

Listing a work tree's untracked files (``ls-files --others``, ``add --all``), git asks of
each folder it does not track whether it holds a repository of its own (a ``.git`` folder,
or a ``.git`` file saying ``gitdir: <folder>``): it opens that repository's ``HEAD`` and
its ``commondir``. The agent can make either a FIFO, or point a ``.git`` file at one: git
then waits for a writer, up to its timeout (:data:`appliance.hostgit.GIT_TIMEOUT`), with the
agent's container held still the while. No option of git's skips the question, so before
git walks the tree, :func:`traps` walks it without following a symlink (``.git`` entries
below the top only: the top one is never the diff's) and names each folder git would wait
on; :mod:`appliance.changes` leaves them out of git's listing (a pathspec excludes a folder
before git asks it anything) and says so.

A folder is named when its ``.git`` is neither a folder nor a file (a symlink: git follows
it, out of the tree too), when that ``.git``'s ``HEAD`` or ``commondir`` is there and not a
file, or when a ``.git`` file or a ``commondir`` names an existing folder outside the work
tree (another session's, whose agent is not held still). A ``gitdir:`` naming nothing
(a worktree the agent made names its container's paths) is no repository to git, and fine.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from appliance.errors import InvalidInput

#: The entries walked at most (folders and files alike); past it, no diff (git's own
#: listing of that many is past :data:`appliance.changes.INDEX_LIMIT` anyway). Each folder
#: waits as its path in the walk's list: half a million of them, some 60 MiB at most.
WALK_LIMIT = 500_000
#: The folders left out at most: each is an argument of git's listing (the command line
#: holds some 2 MiB); past it, no diff.
TRAP_LIMIT = 1_000
#: The bytes of a ``.git`` file or a ``commondir`` read: git's own bound on a ``.git``
#: file (past it, no repository to git).
POINTER_LIMIT = 1 << 20


def _mode(path: Path) -> int | None:
    """``path``'s mode, not following a symlink; None when nothing is there."""
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def pointed(data: bytes, prefix: bytes) -> str | None:
    """The path a ``.git`` file (``prefix`` ``gitdir: ``) or a ``commondir`` (no prefix)
    names, read as git reads it: the whole file, only its trailing line breaks dropped (a
    line break inside is part of the path), up to a NUL; None when it names none."""
    if not data.startswith(prefix):
        return None
    said = data.rstrip(b"\r\n")[len(prefix):].split(b"\0", 1)[0]
    return os.fsdecode(said) if said else None


def _pointer(path: Path, prefix: bytes) -> str | None:
    """What a small file names (:func:`pointed`), read without waiting or following a link;
    None when it names nothing, or is larger than git reads."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = b""
        while len(data) <= POINTER_LIMIT and (part := os.read(fd, POINTER_LIMIT + 1)):
            data += part
    finally:
        os.close(fd)
    return None if len(data) > POINTER_LIMIT else pointed(data, prefix)


def _outside(target: Path, root: Path) -> bool:
    """Whether ``target`` (resolved) is an existing path outside ``root`` (resolved)."""
    return not target.is_relative_to(root) and _mode(target) is not None


def why(dotgit: Path, root: Path) -> str | None:
    """Why git, asking whether the folder holding ``dotgit`` is a repository, could wait
    or read outside ``root`` (the work tree, resolved); None when it cannot."""
    mode = _mode(dotgit)
    if mode is None:
        return None
    if stat.S_ISDIR(mode):
        gitdir = dotgit
    elif stat.S_ISREG(mode):
        named = _pointer(dotgit, b"gitdir: ")
        if named is None:
            return None  # no repository to git
        gitdir = Path(os.path.realpath(dotgit.parent / named))
        if _outside(gitdir, root):
            return "its .git names a folder outside the work tree"
        if not stat.S_ISDIR(_mode(gitdir) or 0):
            return None
    else:
        return "its .git is neither a folder nor a file"
    for name in ("HEAD", "commondir"):
        mode = _mode(gitdir / name)
        if mode is not None and not stat.S_ISREG(mode):
            return f"its git directory's {name} is not a file"
    if _mode(gitdir / "commondir") is not None:
        common = _pointer(gitdir / "commondir", b"")
        if common is not None and _outside(Path(os.path.realpath(gitdir / common)), root):
            return "its git directory's commondir names a folder outside the work tree"
    return None


def traps(workspace: Path) -> dict[str, str]:
    """Each folder below the top of ``workspace`` whose ``.git`` git would wait on (or read
    outside it through), by its path in the work tree: why. Walked without following a
    symlink, at most :data:`WALK_LIMIT` entries and :data:`TRAP_LIMIT` such folders."""
    root = os.path.realpath(workspace)
    base = Path(root)
    found: dict[str, str] = {}
    pending = [root]
    seen = 0
    while pending:
        folder = pending.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue  # git cannot list it either
        with entries:
            for entry in entries:
                seen += 1
                if seen > WALK_LIMIT:
                    raise InvalidInput("the workspace holds too many files to show its diff")
                if entry.name == ".git":
                    reason = why(Path(entry.path), base) if folder != root else None
                    if reason is not None:
                        found[os.path.relpath(folder, root).replace(os.sep, "/")] = reason
                        if len(found) > TRAP_LIMIT:
                            raise InvalidInput(
                                f"the workspace holds more than {TRAP_LIMIT} repositories git "
                                "cannot read without waiting (a .git that is a link, or a "
                                "HEAD that is not a file): its diff is not shown")
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
    return dict(sorted(found.items()))
