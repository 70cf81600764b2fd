"""Shadow git directories: how the host reads an agent's repository without trusting it.

A shadow is a bare git directory the appliance writes itself, in a scratch folder only the
appliance and the repository owner can reach: our ``config`` (nothing but the format), our
refs (commit ids read as hex by :func:`appliance.workspaces.read_tip`), and an
``objects/info/alternates`` naming the object folders to read — the agent's and the user's.
Git pointed at it (``fetch <shadow>``, or ``GIT_DIR=<shadow>`` with the workspace as work
tree) reads objects and files from the agent's tree but never its config, hooks, attributes
in ``info/``, refs or ``config.worktree``. What objects it finds are checked by git
(``fsckObjects``) before they enter the user's repository.

git also reads each alternate's own ``info/`` (its ``alternates``, whole and blocking on a
FIFO, and its commit graphs), so an object folder the agent writes is never named directly:
the shadow names a *view* of it (:func:`object_view`), a folder of ours whose fan-out folders
and ``pack`` are ours too, holding a hard link to each loose object and pack the agent's
hold, and whose ``info`` is ours and empty. git follows a symbolic link wherever it leads (to
another repository of the owner's, another session's objects), and the agent can put one in
the place of any folder or file of its objects at any moment; a hard link is the very file
that was found a regular one in a real folder, whatever the agent moves afterwards.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from appliance.errors import GitError
from appliance.hostgit import STREAM_SIZE, Owner
from appliance.safefs import DIR_FLAGS

#: Our config: the format, and what bounds the memory of a git that packs the agent's
#: objects from here (a fetch's sending side, which takes no configuration from the
#: command line): files larger than :data:`~appliance.hostgit.STREAM_SIZE` streamed,
#: the others' delta search held to a window of 64 MiB on each of two threads.
CONFIG = (b"[core]\n\trepositoryformatversion = 0\n\tbare = true\n"
          b"\tbigFileThreshold = %d\n[pack]\n\twindowMemory = %d\n\tthreads = 2\n"
          % (STREAM_SIZE, 64 << 20))


def _chown_tree(top: Path, owner: Owner) -> None:
    if os.geteuid() != 0:
        return
    for dirpath, _dirs, files in os.walk(top):
        os.chown(dirpath, owner.uid, owner.gid)
        for name in files:
            os.chown(os.path.join(dirpath, name), owner.uid, owner.gid, follow_symlinks=False)


#: The files of the agent's object folders a view reads at most: each loose object or pack
#: is a link made per read.
VIEW_LIMIT = 1 << 20
_FANOUT = tuple(f"{i:02x}" for i in range(256))
_HEX = frozenset("0123456789abcdef")


def _is_object(folder: str, name: str) -> bool:
    """Whether git reads ``name`` in the object folder ``folder`` (00..ff, or ``pack``)."""
    if folder == "pack":
        return name.startswith("pack-") and name.endswith((".pack", ".idx"))
    return len(name) in (38, 62) and set(name) <= _HEX


def _kind(mode: int) -> str:
    return ("a symbolic link" if stat.S_ISLNK(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a folder" if stat.S_ISDIR(mode) else "not a regular file")


def _refused(where: str, what: str) -> GitError:
    return GitError(f"the workspace's {where} is {what}; host git reads only the regular "
                    "files of real folders of the agent's objects. Remove it in the session "
                    "(`git fsck` there shows what is missing)")


def _open_dir(parent: int, name: str, where: str) -> int | None:
    """A real folder ``name`` of ``parent`` (None when absent); a link or anything else in
    its place is refused."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise GitError(f"the workspace's {where} cannot be read: {exc.strerror}") from exc
        try:
            mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
        except OSError:
            mode = 0
        raise _refused(where, _kind(mode)) from exc


def _link_objects(source: int, target: int, folder: str, budget: list[int]) -> None:
    """A hard link in ``target`` to each object file of ``source`` (the agent's fan-out
    folder or ``pack``), each checked, after it is made, to be a regular file: the link
    names the file itself, so no later swap of the agent's can change what git reads. Each
    entry read is one of ``budget``: the listing stops where it runs out."""
    with os.scandir(source) as entries:
        for entry in entries:
            budget[0] -= 1
            if budget[0] < 0:
                raise GitError(f"the workspace's objects hold more than {VIEW_LIMIT:,} files; "
                               "have the agent pack them (`git gc` in the session)")
            if _is_object(folder, entry.name):
                _link(source, target, folder, entry.name)


def _link(source: int, target: int, folder: str, name: str) -> None:
    try:
        os.link(name, name, src_dir_fd=source, dst_dir_fd=target, follow_symlinks=False)
    except FileNotFoundError:
        return  # gone since the listing (the agent's own git packed it)
    except OSError as exc:
        raise GitError(f"the workspace's .git/objects/{folder}/{name} cannot be read "
                       f"by the host: {exc.strerror}") from exc
    mode = os.stat(name, dir_fd=target, follow_symlinks=False).st_mode
    if not stat.S_ISREG(mode):
        os.unlink(name, dir_fd=target)
        raise _refused(f".git/objects/{folder}/{name}", _kind(mode))


def object_view(view: Path, workspace: Path, *, owner: Owner) -> Path:
    """``view`` (a new folder of ours) made to read, to git, as the workspace's object
    folder ``.git/objects``, its loose objects and packs alone, as they are now: folders of
    ours holding a hard link to each (loose objects first: the agent's ``git gc`` packs
    them before it removes them), and an empty ``info`` of ours. Nothing of it is reached
    through a link: ``.git``, ``objects``, a fan-out folder or ``pack`` that is one, or an
    object that is a link, FIFO or device, is refused (:class:`GitError`). An agent's
    ``info/alternates`` made a link to ``/dev/zero`` (or a FIFO it streams into) is never
    read by the host."""
    for name in ("info", *_FANOUT, "pack"):
        (view / name).mkdir(parents=True)
        if os.geteuid() == 0:
            os.chown(view / name, owner.uid, owner.gid)
    if os.geteuid() == 0:
        os.chown(view, owner.uid, owner.gid)
    budget = [VIEW_LIMIT]
    with contextlib.ExitStack() as stack:
        objects = os.open(workspace, DIR_FLAGS)
        stack.callback(os.close, objects)
        for where in (".git", ".git/objects"):
            fd = _open_dir(objects, where.rsplit("/", 1)[-1], where)
            if fd is None:
                return view
            stack.callback(os.close, fd)
            objects = fd
        for folder in (*_FANOUT, "pack"):
            source = _open_dir(objects, folder, f".git/objects/{folder}")
            if source is None:
                continue
            target = os.open(view / folder, DIR_FLAGS)
            try:
                _link_objects(source, target, folder, budget)
            finally:
                os.close(source)
                os.close(target)
    return view


def build(gitdir: Path, *, owner: Owner, refs: Mapping[str, str],
          objects: Sequence[Path]) -> None:
    """Write a shadow at ``gitdir`` (a new, empty folder of ours)."""
    for sub in ("objects/info", "objects/pack", "refs/heads", "refs/tags"):
        (gitdir / sub).mkdir(parents=True, exist_ok=True)
    (gitdir / "config").write_bytes(CONFIG)
    first = next(iter(refs), None)
    (gitdir / "HEAD").write_text(f"ref: refs/heads/{first or 'none'}\n")
    for name, sha in refs.items():
        (gitdir / "refs" / "heads" / name).write_text(f"{sha}\n")
    (gitdir / "objects" / "info" / "alternates").write_text(
        "".join(f"{p}\n" for p in objects))
    _chown_tree(gitdir, owner)


@contextlib.contextmanager
def shadow_dir(scratch: Path, *, owner: Owner, refs: Mapping[str, str],
               objects: Sequence[Path], agents: Sequence[Path] = ()) -> Iterator[Path]:
    """A fresh shadow under ``scratch`` for the ``with`` block; removed afterwards. It reads
    ``objects`` (the user's) as they are and the object folder of each of ``agents`` (the
    workspaces, whose ``.git`` the agent writes) through a view (:func:`object_view`).

    ``scratch`` (a session's) goes with its last shadow: a fetch still under way when its
    session is deleted, after the delete removed the folder, leaves nothing behind."""
    top = _fresh(scratch, owner)
    try:
        gitdir = top / "git"
        gitdir.mkdir()
        if os.geteuid() == 0:
            os.chown(top, owner.uid, owner.gid)
        views = [object_view(top / f"view-{i}", p, owner=owner) for i, p in enumerate(agents)]
        # The views are chowned as they are made: their files are the agent's own.
        build(gitdir, owner=owner, refs=refs, objects=(*views, *objects))
        yield gitdir
    finally:
        shutil.rmtree(top, ignore_errors=True)
        with contextlib.suppress(OSError):  # another shadow is in it, or it is gone
            scratch.rmdir()


def _fresh(scratch: Path, owner: Owner) -> Path:
    """A new folder in ``scratch``, made if need be; made again if another shadow's end
    took it away between the two steps."""
    for _ in range(5):
        scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.geteuid() == 0:
            os.chown(scratch, owner.uid, owner.gid)
        try:
            return Path(tempfile.mkdtemp(prefix="shadow-", dir=scratch))
        except FileNotFoundError:
            continue
    return Path(tempfile.mkdtemp(prefix="shadow-", dir=scratch))
