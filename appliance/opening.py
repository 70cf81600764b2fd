"""Opening an agent-writable tree to its owner, so that ``rm`` can remove it.

An agent closes folders of its workspace to everyone (``chmod 000``), and ``rm`` run as their
owner (the appliance on a workstation) stops at them. ``chmod -R u+rwx`` looked at each name
without following it and then changed it by name, following it: an agent whose container
still ran swapped a file or a folder for a link to one of the owner's outside in between,
and the owner's file outside was made writable and executable.

So the walk is by descriptor, and only folders are changed (``rm`` needs nothing of a file):
each is opened relative to its parent with ``O_PATH | O_DIRECTORY | O_NOFOLLOW`` (a link
fails to open) and changed as ``.`` of that descriptor, never by a name that can be
swapped. It holds two descriptors at a time, not one a level (an agent's tree can be deeper
than a process may hold descriptors), and goes back up by ``..`` only to the very folder it
came down from (device and inode): a folder the agent moved higher meanwhile ends the walk
rather than lead it above the tree. It stays on the tree's filesystem.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from appliance.errors import ClauderonError

#: The most folder names the walk reads: an agent whose container still runs can make
#: folders faster than the walk opens them, deeper at the bottom of a chain or a million in
#: one folder (each name held until it is entered); past it the walk ends, to be tried again.
NAMES_AT_MOST = 1_000_000
_AT = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_up(fd: int) -> tuple[int, int]:
    """Give the owner ``rwx`` on their folder open at ``fd``; its identity."""
    st = os.fstat(fd)
    if st.st_mode & 0o700 != 0o700:
        # By the descriptor's own link: a name looked up in a closed folder, even ``.``,
        # is refused before its owner can open it.
        os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(st.st_mode) | 0o700)
    return st.st_dev, st.st_ino


def _ours(fd: int, dev: int) -> bool:
    """Whether the folder open at ``fd`` is the owner's, on the tree's filesystem: no other
    is changed or entered (``rm`` says what it could not remove)."""
    st = os.fstat(fd)
    return st.st_dev == dev and st.st_uid == os.geteuid()


def _subfolders(fd: int) -> list[str]:
    """The names of the folder's entries that were folders when it was read."""
    try:
        listing = os.open(".", _READ, dir_fd=fd)
    except OSError:
        return []  # not ours to open: rm says so
    try:
        with os.scandir(listing) as it:
            return [e.name for e in it if e.is_dir(follow_symlinks=False)]
    finally:
        os.close(listing)


def open_to_owner(path: Path) -> None:
    """Every folder of the tree at ``path`` (itself never a link) opened to its owner."""
    try:
        fd = os.open(path, _AT)
    except OSError:
        return  # gone, or a link now: nothing of it to open, rm says what is left
    try:
        dev = os.fstat(fd).st_dev
        if not _ours(fd, dev):
            return
        stack = [(_open_up(fd), _subfolders(fd))]
        read = len(stack[0][1])
        while stack:
            left = stack[-1][1]
            if not left:
                stack.pop()
                if stack:
                    parent = _parent(fd, stack[-1][0])
                    os.close(fd)
                    fd = parent
                continue
            try:
                child = os.open(left.pop(), _AT, dir_fd=fd)
            except OSError:
                continue  # gone, or no longer a folder
            if not _ours(child, dev):
                os.close(child)
                continue
            os.close(fd)
            fd = child
            stack.append((_open_up(fd), _subfolders(fd)))
            read += len(stack[-1][1])
            if read > NAMES_AT_MOST:
                raise ClauderonError(f"the tree holds more than {NAMES_AT_MOST} folders, or "
                                     "grows while it is opened; try again when nothing "
                                     "writes it")
    finally:
        os.close(fd)


def _parent(fd: int, expect: tuple[int, int]) -> int:
    """The folder above ``fd``, which must be the one the walk came down from."""
    parent = os.open("..", _AT, dir_fd=fd)
    st = os.fstat(parent)
    if (st.st_dev, st.st_ino) != expect:
        os.close(parent)
        raise ClauderonError("a folder of the tree moved while it was being opened; "
                             "try again when nothing writes it")
    return parent
