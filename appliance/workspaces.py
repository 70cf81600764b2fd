"""Session workspaces: a private clone per session that borrows the user's objects.

Theory of operation
-------------------
The agent must be able to do anything git allows in its session (commit, amend, rebase,
hooks of its own) and nothing to the user's repository. So the container never sees the
user's git directory. Each session gets its own repository at ``worktrees/<name>``:

- made by :func:`create_workspace` as the repository owner: ``git init``, an
  ``objects/info/alternates`` line naming the user's object folder (mounted read-only into
  the container at the same path, so nothing is copied and nothing of the user's can be
  changed or removed), the session branch at its start commit, checked out;
- the agent owns it entirely: its config, hooks, refs and objects are its own business and
  **nothing on the host ever runs git with that repository as its git directory**;
- the host learns about the agent's work only through :func:`read_tip` (the branch's commit,
  read from the ref file without following a symlink and parsed as hex, never trusted as a
  path or config) and :func:`appliance.branchsync.sync_branch`, which fetches that commit
  into the user's repository through a *shadow* git directory the appliance writes itself
  (:mod:`appliance.shadow`): our config, our one ref, object folders by path. Only the
  session branch ``clauderon/<name>`` of the user's repository ever moves, and only there.

The user's ``git gc`` and ``git worktree prune`` cannot break a live session: the workspace is
a separate repository (nothing for prune to find), and the objects it borrows stay reachable
from the session branch, which exists in the user's repository from the moment the session
is created and follows the agent's commits at every sync.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

from appliance import hostgit, repos, safefs
from appliance.errors import ClauderonError, InvalidInput
from appliance.repos import RepoInfo

_HEX = frozenset(string.hexdigits.lower())
REF_LIMIT = 4096
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
PACKED_REFS_LIMIT = 16 * 1024 * 1024


def is_workspace(path: Path) -> bool:
    """Whether ``path`` holds a workspace (a real folder with a real ``.git`` folder)."""
    try:
        with safefs.open_tree(path, label="the workspace", absent="") as tree:
            return safefs.has_dir(tree, (".git",))
    except (ClauderonError, OSError):
        return False


def _read(path: Path, parts: tuple[str, ...], limit: int) -> bytes | None:
    """A regular file of the workspace, read without following any symlink; None when it
    is missing, is not a regular file, or a link stands anywhere on the way."""
    try:
        with safefs.open_tree(path, label="the workspace", absent="") as tree:
            return safefs.read_file(tree, parts, limit=limit).data
    except (ClauderonError, OSError):
        return None


def create_workspace(repo: RepoInfo, path: Path, branch: str, start: str,
                     *, base_branch: str | None = None) -> None:
    """The session's repository at ``path`` on ``branch`` at ``start``. Idempotent.

    A folder that stands without a repository (its ``.git`` removed, or made a file or a
    link, by the agent or by hand) is mended, not made again: its files are the agent's
    work. The repository is made around them on ``branch`` at ``start`` (the branch as last
    brought in), its index at that commit, and not one file of the folder is read or
    written: the agent's ``git status`` then shows its work as changes."""
    if is_workspace(path):
        return
    owner = repo.owner
    mend = _clear_repository(path)
    if not mend:
        _make_folder(path, owner)

    def git(*args: str) -> None:
        # ``start`` is the agent's commit when the workspace is made again: the checkout
        # converts a file whole when the commit's attributes name an encoding.
        hostgit.run(args, owner=owner, cwd=path, memory=hostgit.READ_MEMORY)

    git("init", "--quiet", "--template=", f"--initial-branch={branch}")
    borrowed = repos.borrowed_object_dirs(repo.objects_dir)
    _borrow(path, "".join(f"{d}\n" for d in borrowed).encode(), owner)
    git("update-ref", f"refs/heads/{branch}", start)
    if base_branch and base_branch != "HEAD":
        # Where it forked, for `git rebase origin/<base>` and `git log origin/<base>..`.
        git("update-ref", f"refs/remotes/origin/{base_branch}", start)
    # The remote without the credential a person may keep in its URL: the agent reads
    # its own config, and the proxy injects what a push needs.
    url = repos.clean_remote(repos.remote_url(repo))
    if url:
        git("config", "remote.origin.url", url)
        git("config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*")
    if mend:
        git("read-tree", start)
    else:
        git("reset", "--quiet", "--hard", start)


def _borrow(path: Path, alternates: bytes, owner: hostgit.Owner) -> None:
    """Write ``.git/objects/info/alternates`` in the workspace made just now, as root, each
    step relative to a folder opened without following a link: a link put in the way (by
    an agent whose container still ran) fails the step, and root makes, owns or writes
    nothing elsewhere."""
    opened = [os.open(path, _DIR)]
    try:
        for name in (".git", "objects"):
            opened.append(os.open(name, _DIR, dir_fd=opened[-1]))
        opened.append(_mkdir_at(opened[-1], "info", owner, own_found=True))
        _write_at(opened[-1], "alternates", alternates, owner, append=False)
    finally:
        for fd in reversed(opened):
            os.close(fd)


def _mkdir_at(fd: int, name: str, owner: hostgit.Owner, *, own_found: bool = False) -> int:
    """The folder ``name`` in the folder open at ``fd``, opened without following a link;
    made for ``owner`` where it is missing (``own_found``: given to them where found too)."""
    try:
        os.mkdir(name, 0o755, dir_fd=fd)
        made = True
    except FileExistsError:
        made = False
    sub = os.open(name, _DIR, dir_fd=fd)
    if (made or own_found) and os.geteuid() == 0:
        os.fchown(sub, owner.uid, owner.gid)
    return sub


def _write_at(fd: int, name: str, data: bytes, owner: hostgit.Owner, *, append: bool) -> None:
    """Write ``data`` to the file ``name`` in the folder open at ``fd`` (never a link),
    owned by ``owner``."""
    how = os.O_APPEND if append else os.O_TRUNC
    out = os.open(name, os.O_WRONLY | os.O_CREAT | how | os.O_NOFOLLOW, 0o644, dir_fd=fd)
    try:
        os.write(out, data)
        if os.geteuid() == 0:
            os.fchown(out, owner.uid, owner.gid)
    finally:
        os.close(out)


def _make_folder(path: Path, owner: hostgit.Owner) -> None:
    unreachable = hostgit.owner_can_reach(path.parent, owner)
    if unreachable is not None:
        raise InvalidInput(
            f"the repository owner (uid {owner.uid}) cannot reach {path.parent}: "
            f"{unreachable} is closed to them; make it traversable (chmod o+x) or move "
            "CLAUDERON_HOME", field="repo_path")
    path.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(path, owner.uid, owner.gid)


def _clear_repository(path: Path) -> bool:
    """Whether a folder holding files stands at ``path`` (to be mended): whatever is at its
    ``.git`` is removed (never followed). An empty folder (a create interrupted before its
    repository) and anything else at ``path`` (a link, a file: not the agent's, whose
    workspace is a mount) are removed, for the workspace to be made anew."""
    if not os.path.lexists(path):
        return False
    if os.path.islink(path) or not path.is_dir():
        safefs.remove_tree(path)
        return False
    safefs.remove_tree(path / ".git")
    try:
        path.rmdir()
    except OSError:
        return True  # not empty: the agent's files
    return False


def make_owned_dir(path: Path, owner: hostgit.Owner) -> None:
    """A folder of ours (``<session>.repos``) the owner can use; never a link."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if path.is_symlink() or not path.is_dir():
            raise InvalidInput(f"{path} is in the way of the session's repositories; "
                               "remove it") from None
        return
    if os.geteuid() == 0:
        os.chown(path, owner.uid, owner.gid)


def add_mountpoints(path: Path, mounts: list[str], owner: hostgit.Owner) -> None:
    """In a workspace made just now: a folder per further repository (where it is mounted)
    and each named in ``.git/info/exclude``, so the primary never adds them as its own.
    Every step is relative to a folder opened without following a link."""
    opened = [os.open(path, _DIR)]
    try:
        for mount in mounts:
            os.close(_mkdir_at(opened[0], mount, owner))
        opened.append(os.open(".git", _DIR, dir_fd=opened[0]))
        opened.append(_mkdir_at(opened[-1], "info", owner, own_found=True))
        _write_at(opened[-1], "exclude", "".join(f"/{m}/\n" for m in mounts).encode(), owner,
                  append=True)
    finally:
        for fd in reversed(opened):
            os.close(fd)


def hex_id(raw: bytes) -> str | None:
    value = raw.strip().decode("ascii", "replace").lower()
    if len(value) in (40, 64) and set(value) <= _HEX:
        return value
    return None


def read_tip(path: Path, branch: str) -> str | None:
    """The commit ``branch`` names in the workspace, as plain hex; None when unreadable.

    Reads the loose ref, then ``packed-refs``; a symbolic ref, a symlink anywhere on the
    way, a non-regular file or anything that is not a bare object name counts as no tip.
    """
    raw = _read(path, (".git", "refs", "heads", *branch.split("/")), REF_LIMIT)
    if raw is not None:
        return hex_id(raw)
    packed = _read(path, (".git", "packed-refs"), PACKED_REFS_LIMIT)
    if packed is None:
        return None
    wanted = f"refs/heads/{branch}".encode()
    for line in packed.splitlines():
        sha, _, name = line.partition(b" ")
        if name.strip() == wanted:
            return hex_id(sha)
    return None


def read_ref(path: Path) -> str | None:
    """The commit a loose ref of a shadow (a folder of ours) names, as plain hex; None when
    it is missing or not a bare object name."""
    try:
        with path.open("rb") as f:
            return hex_id(f.read(REF_LIMIT))
    except OSError:
        return None


def read_head(path: Path) -> str | None:
    """The commit the workspace has checked out (its branch's tip, or a detached commit)."""
    raw = _read(path, (".git", "HEAD"), REF_LIMIT)
    if raw is None:
        return None
    text = raw.decode("ascii", "replace").strip()
    if text.startswith("ref: refs/heads/"):
        return read_tip(path, text.removeprefix("ref: refs/heads/"))
    return hex_id(raw)


def odd_object(path: Path) -> str | None:
    """What of the workspace's object folder host git must not be given, or None: a
    loose-object folder or ``pack`` that is not a real folder, or anything in them that is
    not a regular file. A FIFO where an object should be keeps host git waiting for a
    writer (with the container gone, for git's whole timeout); a link leads anywhere. Only
    a guard while nothing writes the folder (the agent's container is gone)."""
    fanout = {f"{i:02x}" for i in range(256)} | {"pack"}
    try:
        with safefs.open_tree(path, label="the workspace", absent="no workspace") as tree:
            top = (".git", "objects")
            for entry in safefs.list_dir(tree, top, limit=1 << 30).entries:
                if entry.name not in fanout:
                    continue
                if entry.kind is not safefs.Kind.DIR:
                    return f"{entry.path} is not a folder ({entry.kind})"
                for item in safefs.list_dir(tree, (*top, entry.name), limit=1 << 30).entries:
                    if item.kind is not safefs.Kind.FILE:
                        return f"{item.path} is not a regular file ({item.kind})"
    except ClauderonError as exc:
        return f"its objects cannot be read ({exc.message})"
    except OSError as exc:
        return f"its objects cannot be read ({exc.strerror})"
    return None
