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
and ``pack`` are links into the agent's and whose ``info`` is ours and empty.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from appliance.hostgit import Owner

CONFIG = b"[core]\n\trepositoryformatversion = 0\n\tbare = true\n"


def _chown_tree(top: Path, owner: Owner) -> None:
    if os.geteuid() != 0:
        return
    for dirpath, _dirs, files in os.walk(top):
        os.chown(dirpath, owner.uid, owner.gid)
        for name in files:
            os.chown(os.path.join(dirpath, name), owner.uid, owner.gid, follow_symlinks=False)


def object_view(view: Path, objects: Path) -> Path:
    """``view`` (a new folder of ours) made to read as the object folder ``objects`` to git,
    its loose objects and packs alone: a link to each of its 256 fan-out folders and to its
    ``pack``, and an empty ``info`` of ours. An agent's ``info/alternates`` made a link to
    ``/dev/zero`` (or a FIFO it streams into) is then never read by the host."""
    (view / "info").mkdir(parents=True)
    for name in (*(f"{i:02x}" for i in range(256)), "pack"):
        os.symlink(objects / name, view / name)
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
    ``objects`` (the user's) as they are and ``agents`` (object folders an agent writes)
    through a view each (:func:`object_view`)."""
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.geteuid() == 0:
        os.chown(scratch, owner.uid, owner.gid)
    top = Path(tempfile.mkdtemp(prefix="shadow-", dir=scratch))
    try:
        gitdir = top / "git"
        gitdir.mkdir()
        views = [object_view(top / f"view-{i}", p) for i, p in enumerate(agents)]
        build(gitdir, owner=owner, refs=refs, objects=(*views, *objects))
        _chown_tree(top, owner)
        yield gitdir
    finally:
        shutil.rmtree(top, ignore_errors=True)
