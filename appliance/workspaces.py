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
  path or config) and :func:`sync_branch`, which fetches that commit into the user's
  repository through a *shadow* git directory the appliance writes itself
  (:mod:`appliance.shadow`): our config, our one ref, object folders by path. Only the
  session branch ``clauderon/<name>`` of the user's repository ever moves, and only there.

The user's ``git gc`` and ``git worktree prune`` cannot break a live session: the workspace is
a separate repository (nothing for prune to find), and the objects it borrows stay reachable
from the session branch, which exists in the user's repository from the moment the session
is created and follows the agent's commits at every sync.
"""

from __future__ import annotations

import contextlib
import os
import string
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

from appliance import hostgit, repos, safefs, shadow
from appliance.errors import ClauderonError, GitError, InvalidInput
from appliance.repos import RepoInfo

_HEX = frozenset(string.hexdigits.lower())
REF_LIMIT = 4096
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


def _write_owned(path: Path, data: bytes, owner: hostgit.Owner, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
        if os.geteuid() == 0:
            os.fchown(fd, owner.uid, owner.gid)
    finally:
        os.close(fd)


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
    info = path / ".git" / "objects" / "info"
    info.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        os.chown(info, owner.uid, owner.gid)
    borrowed = repos.borrowed_object_dirs(repo.objects_dir)
    _write_owned(info / "alternates", "".join(f"{d}\n" for d in borrowed).encode(), owner)
    git("update-ref", f"refs/heads/{branch}", start)
    if base_branch and base_branch != "HEAD":
        # Where it forked, for `git rebase origin/<base>` and `git log origin/<base>..`.
        git("update-ref", f"refs/remotes/origin/{base_branch}", start)
    url = repos.remote_url(repo)
    if url and url.startswith("https://"):
        git("config", "remote.origin.url", url)
        git("config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*")
    if mend:
        git("read-tree", start)
    else:
        git("reset", "--quiet", "--hard", start)


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
        remove_workspace(path)
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
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW

    def mkdir_at(fd: int, name: str) -> int:
        try:
            os.mkdir(name, 0o755, dir_fd=fd)
            made = True
        except FileExistsError:
            made = False
        sub = os.open(name, flags, dir_fd=fd)
        if made and os.geteuid() == 0:
            os.fchown(sub, owner.uid, owner.gid)
        return sub

    top = os.open(path, flags)
    try:
        for mount in mounts:
            os.close(mkdir_at(top, mount))
        git = os.open(".git", flags, dir_fd=top)
        try:
            info = mkdir_at(git, "info")
            try:
                fd = os.open("exclude", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW,
                             0o644, dir_fd=info)
                try:
                    os.write(fd, "".join(f"/{m}/\n" for m in mounts).encode())
                    if os.geteuid() == 0:
                        os.fchown(fd, owner.uid, owner.gid)
                finally:
                    os.close(fd)
            finally:
                os.close(info)
        finally:
            os.close(git)
    finally:
        os.close(top)


def remove_workspace(path: Path) -> None:
    """Remove the workspace folder (never following a link out). Idempotent."""
    safefs.remove_tree(path)


def _hex(raw: bytes) -> str | None:
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
        return _hex(raw)
    packed = _read(path, (".git", "packed-refs"), PACKED_REFS_LIMIT)
    if packed is None:
        return None
    wanted = f"refs/heads/{branch}".encode()
    for line in packed.splitlines():
        sha, _, name = line.partition(b" ")
        if name.strip() == wanted:
            return _hex(sha)
    return None


def read_ref(path: Path) -> str | None:
    """The commit a loose ref of a shadow (a folder of ours) names, as plain hex; None when
    it is missing or not a bare object name."""
    try:
        with path.open("rb") as f:
            return _hex(f.read(REF_LIMIT))
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
    return _hex(raw)


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


#: The object ids a sync lists at most (41 bytes each: about 800,000 objects).
LIST_LIMIT = 32 << 20


def incoming_bytes(repo: RepoInfo, gitdir: Path, tip: str, known: list[str]) -> int:
    """The full size of the objects reachable from ``tip`` and from none of ``known``,
    listed in the shadow ``gitdir`` (our config; the agent's objects read, never its
    repository)."""
    env = {"GIT_DIR": str(gitdir)}
    listed = hostgit.run(["rev-list", "--objects", "--no-object-names", tip, "--not", *known,
                          "--"], owner=repo.owner, cwd=gitdir, env=env, limit=LIST_LIMIT,
                         memory=hostgit.READ_MEMORY)
    if len(listed.stdout) > LIST_LIMIT:
        raise GitError(f"its new commits hold more than {LIST_LIMIT // 41:,} objects; "
                       "have the agent drop the generated files from its branch")
    sizes = hostgit.run(["cat-file", "--batch-check=%(objectsize)"], owner=repo.owner,
                        cwd=gitdir, env=env, input=listed.stdout,
                        memory=hostgit.READ_MEMORY)
    return sum(int(line) for line in sizes.stdout.split() if line.isdigit())


def fetch_error(proc: subprocess.CompletedProcess[bytes], branch: str,
                failed: str) -> GitError:
    """Why a fetch of ``branch`` into the user's repository failed: ``failed`` and git's
    words, or what to do when the branch is checked out there."""
    detail = hostgit.said(proc)
    # A child of the fetch (index-pack) that ran out says so on a line of its own, and the
    # fetch's last line is then only that the child failed.
    said_all = (proc.stderr or b"").decode("utf-8", "replace")
    if "checked out" in detail:
        return GitError(f"the branch {branch} is checked out in your repository, so the "
                        "session's commits cannot be brought in; check out another branch "
                        f"there ({detail})")
    if "Out of memory" in said_all or "unable to allocate" in said_all:
        return GitError(f"{failed}: one of its objects is more than host git reads with "
                        f"{hostgit.READ_MEMORY >> 20} MiB of memory ({detail}); {branch} stays "
                        "at its last commit brought in. Have the agent drop it from its "
                        "branch (look at `clauderon diff`)")
    return GitError(f"{failed}: {detail}")


def shadow_of(repo: RepoInfo, workspace: Path, scratch: Path,
              refs: Mapping[str, str]) -> AbstractContextManager[Path]:
    """A shadow (:mod:`appliance.shadow`) in ``scratch`` with ``refs`` that reads the
    workspace's objects and those of the user's repository it borrows."""
    return shadow.shadow_dir(scratch, owner=repo.owner, refs=refs,
                             objects=repos.borrowed_object_dirs(repo.objects_dir),
                             agents=(workspace,))


def sync_branch(repo: RepoInfo, workspace: Path, branch: str, tip: str, scratch: Path, *,
                max_bytes: int) -> None:
    """Bring the workspace's commit ``tip`` into the user's repository as ``branch``.

    Counted against ``max_bytes`` where the agent's objects are read (a flood is refused
    before anything is copied), then fetched into a shadow that reads no object of the
    agent's git has not named from its content (:func:`checked_copy`), as the owner, with
    objects checked (``fetch.fsckObjects``), and from there as :func:`take_branch` does,
    counted again on what came in: two packs of the agent's that answered differently for
    one object had the count read the small one and the fetch send the large one. Moves
    nothing but ``branch``.
    """
    if _hex(tip.encode()) is None:
        raise InvalidInput(f"{tip!r} is not a commit id")
    known = known_commits(repo, branch)
    failed = f"could not bring {branch} into {repo.root}"
    with shadow_of(repo, workspace, scratch, {"sync": tip}) as source:
        refuse_past(repo, source, branch, tip, known, max_bytes=max_bytes)
        with checked_copy(repo, source, scratch, "sync", tip, refs={}, branch=branch,
                          failed=failed) as gitdir:
            take_branch(repo, gitdir, branch, tip, known, max_bytes=max_bytes, failed=failed)


def known_commits(repo: RepoInfo, branch: str) -> list[str]:
    """What the user's repository already has of a session's work: ``branch`` as last
    brought in, and the commit checked out."""
    return [c for c in (repos.branch_tip(repo, branch), repos.head_commit(repo)) if c]


def take_branch(repo: RepoInfo, gitdir: Path, branch: str, tip: str, known: list[str], *,
                max_bytes: int, failed: str) -> None:
    """``tip``, which the shadow ``gitdir`` names ``refs/heads/sync`` and whose objects it
    reads (an agent's), into the user's repository as ``branch``: every sync of a session's
    work ends here, whichever road the objects took (a workspace on this host, or the
    remote a pod pushed to). Refused, bringing nothing, when the objects the user's
    repository lacks (from ``known``) come to more than ``max_bytes`` in full (what a
    checkout would write, however well it compresses). The fetch runs with the heap of a
    host git reading an agent's objects, both its sides streaming a large file."""
    refuse_past(repo, gitdir, branch, tip, known, max_bytes=max_bytes)
    proc = hostgit.run(fetch_argv(gitdir, "sync", branch), owner=repo.owner, cwd=repo.root,
                       check=False, memory=hostgit.READ_MEMORY)
    if proc.returncode != 0:
        raise fetch_error(proc, branch, failed)
    repos.roll_up(repo)


def refuse_past(repo: RepoInfo, gitdir: Path, branch: str, tip: str, known: list[str], *,
                max_bytes: int) -> None:
    """A refusal, saying what to do, when what the shadow ``gitdir`` reads of ``tip`` and
    the user's repository lacks (from ``known``) is more than ``max_bytes`` in full."""
    size = incoming_bytes(repo, gitdir, tip, known)
    if size > max_bytes:
        raise GitError(
            f"its new commits hold {size / 2**20:,.0f} MiB, more than the "
            f"{max_bytes / 2**20:,.0f} MiB one sync brings in ([limits] max_sync_mib); "
            f"{branch} stays at its last commit brought in. Look at the session's work "
            "(`clauderon diff`): if it is meant, raise the limit and restart the "
            "reconciler, or have the agent drop the large files from its branch")


def fetch_argv(source: Path, ref: str, into: str) -> list[str]:
    """A fetch of the shadow ``source``'s branch ``ref`` as branch ``into``, and of nothing
    else: every object checked (its name computed from its content, ``fsckObjects``) as it
    comes in, a large file streamed."""
    return [*hostgit.STREAMED, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
            "--no-auto-gc", "--no-recurse-submodules", "--end-of-options", str(source),
            f"+refs/heads/{ref}:refs/heads/{into}"]


@contextlib.contextmanager
def checked_shadow(repo: RepoInfo, workspace: Path, scratch: Path, head: str,
                   refs: Mapping[str, str]) -> Iterator[Path]:
    """A shadow that reads the workspace's commit ``head`` (``refs/heads/head``, beside
    ``refs``) and the user's objects, and no object git has not named from its content
    (:func:`checked_copy`)."""
    with shadow_of(repo, workspace, scratch, {"head": head}) as source, \
            checked_copy(repo, source, scratch, "head", head, refs=refs,
                         branch="the workspace's commit",
                         failed="could not read the workspace's commit") as gitdir:
        yield gitdir


@contextlib.contextmanager
def checked_copy(repo: RepoInfo, source: Path, scratch: Path, ref: str, head: str, *,
                 refs: Mapping[str, str], branch: str, failed: str) -> Iterator[Path]:
    """A shadow in ``scratch`` that borrows the user's objects only, with the commit
    ``head`` fetched into it (as ``refs/heads/<ref>``, beside ``refs``) from the shadow
    ``source``, which reads the agent's; ``branch`` and ``failed`` say what could not be
    done when the fetch fails.

    git believes a pack's index for the name of each object in it, and looks in every pack
    (the one it last found something in first, else the newest, whichever folder it is in)
    before any loose object: a pack of the agent's may answer for an object of the user's
    with content of its own (a folder of the fork point holding the agent's files: a diff
    against it hides them), or two of its packs for one object with different contents.
    Fetched, what the user's objects lack comes over as a pack of ours, each object named
    from its content; what they hold is read from them. A lie is never believed: at worst
    it leaves the fetch short of an object, and the fetch fails."""
    if _hex(head.encode()) is None:
        raise InvalidInput(f"{head!r} is not a commit id")
    with shadow.shadow_dir(scratch, owner=repo.owner, refs=refs,
                           objects=repos.borrowed_object_dirs(repo.objects_dir)) as gitdir:
        proc = hostgit.run(fetch_argv(source, ref, ref), owner=repo.owner, cwd=gitdir,
                           env={"GIT_DIR": str(gitdir)}, check=False,
                           memory=hostgit.READ_MEMORY)
        if proc.returncode != 0:
            raise fetch_error(proc, branch, f"{failed} ({head[:12]})")
        yield gitdir
