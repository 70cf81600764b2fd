"""Bringing a workspace's commits into the user's repository, and reading them checked.

The agent's objects are read only through a *shadow* git directory the appliance writes
itself (:mod:`appliance.shadow`, :func:`shadow_of`); what is brought in is counted against
``max_sync_mib`` (:func:`refuse_past`) and fetched with every object named from its content
into a shadow that borrows the user's objects only (:func:`checked_copy`), so no pack of the
agent's answers for an object of the user's. :func:`sync_branch` moves the session branch,
and nothing else; :func:`checked_shadow` is what a diff and the timeline read, held to the
same ``max_sync_mib``: a commit the sync refuses is not copied for each read either.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from appliance import hostgit, repos, shadow
from appliance.errors import GitError, InvalidInput
from appliance.quoted import quote
from appliance.repos import RepoInfo
from appliance.workspaces import hex_id

#: The object ids a sync lists at most (41 bytes each: about 800,000 objects).
LIST_LIMIT = 32 << 20


def incoming_bytes(repo: RepoInfo, gitdir: Path, tip: str, known: list[str], *,
                   also: Sequence[str] = (), timeout: float = hostgit.GIT_TIMEOUT) -> int:
    """The full size of the objects reachable from ``tip`` (or from any of ``also``, more
    commits or refs of the shadow's, each object counted once) and from none of ``known``,
    listed in the shadow ``gitdir`` (our config; the agent's objects read, never its
    repository)."""
    env = {"GIT_DIR": str(gitdir)}
    listed = hostgit.run(["rev-list", "--objects", "--no-object-names", tip, *also, "--not",
                          *known, "--"], owner=repo.owner, cwd=gitdir, env=env, limit=LIST_LIMIT,
                         memory=hostgit.READ_MEMORY, timeout=timeout)
    if len(listed.stdout) > LIST_LIMIT:
        raise GitError(f"its new commits hold more than {LIST_LIMIT // 41:,} objects; "
                       "have the agent drop the generated files from its branch")
    sizes = hostgit.run(["cat-file", "--batch-check=%(objectsize)"], owner=repo.owner,
                        cwd=gitdir, env=env, input=listed.stdout,
                        memory=hostgit.READ_MEMORY, timeout=timeout)
    return sum(int(line) for line in sizes.stdout.split() if line.isdigit())


#: How git and its children say the heap ran out (:data:`~appliance.hostgit.READ_MEMORY`):
#: git's own allocations, zlib's, and a thread whose stack did not fit.
OUT_OF_MEMORY = ("out of memory", "unable to allocate", "unable to create thread")


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
    refused = fsck_refused(said_all)
    if refused is not None:
        return GitError(f"{failed}: {refused}; {branch} stays at its last commit brought in. "
                        "Have the agent remove it from its branch (`git rm` it and rewrite "
                        "the commits that hold it)")
    if any(words in said_all.lower() for words in OUT_OF_MEMORY):
        return GitError(f"{failed}: one of its objects is more than host git reads with "
                        f"{hostgit.READ_MEMORY >> 20} MiB of memory ({detail}); {branch} stays "
                        "at its last commit brought in. Have the agent drop it from its "
                        "branch (look at `clauderon diff`)")
    return GitError(f"{failed}: {detail}")


#: What git's object check says of a path in a tree (``error: object <id>: <id of the
#: message>: ...``) that a checkout could misuse, or of a ``.gitmodules`` a clone or a
#: submodule update could, and what the check protects.
_PATH_CHECKS = {
    "hasDotgit": "a path that macOS or Windows reads as .git (.GIT, git~1, ...): a checkout "
                 "on macOS or Windows would write into the repository's own .git",
    "hasDot": "a path named `.`", "hasDotdot": "a path named `..`",
    "fullPathname": "a path with `/` in a name", "emptyName": "a path with an empty name",
    **{f"gitmodules{check}": f"a .gitmodules {what}: a clone or a submodule update of the "
       "branch would take it" for check, what in (
        ("Url", "whose URL git would run as an option or a command"),
        ("Path", "whose path git would read as an option"),
        ("Name", "whose submodule name leads outside .git/modules"),
        ("Symlink", "that is a symbolic link"), ("Large", "too large to check"),
        ("Update", "whose update runs a command"), ("Parse", "git cannot read"),
        ("Blob", "that is no file"), ("Missing", "git could not find to check"))},
}


def fsck_refused(said: str) -> str | None:
    """What of one of the agent's trees git's object check refused, in words (or None)."""
    for line in said.splitlines():
        _, _, rest = line.partition(": object ")
        check = rest.split(": ", 2)[1:2]
        if check and check[0] in _PATH_CHECKS:
            return f"one of its trees holds {_PATH_CHECKS[check[0]]} ({quote('git', line)})"
    return None


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
    if hex_id(tip.encode()) is None:
        raise InvalidInput(f"{tip!r} is not a commit id")
    known = known_commits(repo, branch)
    failed = f"could not bring {branch} into {repo.root}"
    with shadow_of(repo, workspace, scratch, {"sync": tip}) as source, \
            checked_copy(repo, source, scratch, "sync", tip, refs={}, branch=branch,
                         failed=failed, known=known, max_bytes=max_bytes) as gitdir:
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


#: What a refusal of :func:`refuse_past` says is left, for a sync (of ``branch``) and for a
#: read of the workspace's commit (:func:`checked_shadow`), and what to do.
SYNC_REFUSED = ("{branch} stays at its last commit brought in. Look at the session's files "
                "(the web UI's Files tab): if they are meant, raise the limit and restart the "
                "reconciler, or have the agent drop the large files from its branch")
READ_REFUSED = ("so its diff and its commits are not read until it is brought in. Have the "
                "agent drop the large files from its branch (the web UI's Files tab shows "
                "them), or, if they are meant, raise the limit and restart the appliance")


def refuse_past(repo: RepoInfo, gitdir: Path, branch: str, tip: str, known: list[str], *,
                max_bytes: int, also: Sequence[str] = (), then: str = SYNC_REFUSED,
                timeout: float = hostgit.GIT_TIMEOUT) -> None:
    """A refusal, saying what to do (``then``), when what the shadow ``gitdir`` reads of
    ``tip`` and of ``also`` together and the user's repository lacks (from ``known``) is
    more than ``max_bytes`` in full."""
    size = incoming_bytes(repo, gitdir, tip, known, also=also, timeout=timeout)
    if size > max_bytes:
        raise GitError(
            f"its new commits hold {size / 2**20:,.0f} MiB, more than the "
            f"{max_bytes / 2**20:,.0f} MiB one sync brings in ([limits] max_sync_mib); "
            + then.format(branch=branch))


def fetch_argv(source: Path, ref: str, into: str) -> list[str]:
    """A fetch of the shadow ``source``'s branch ``ref`` as branch ``into``, and of nothing
    else: every object checked (its name computed from its content, ``fsckObjects``) as it
    comes in, a large file streamed."""
    return [*hostgit.STREAMED, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
            "--no-auto-gc", "--no-recurse-submodules", "--end-of-options", str(source),
            f"+refs/heads/{ref}:refs/heads/{into}"]


def copy_bound(max_bytes: int) -> int:
    """The largest pack a checked copy of at most ``max_bytes`` of objects (in full) may
    write: a pack holds each object compressed, which for data that does not compress is a
    little more than the object (zlib's blocks), and gives each of the objects a sync lists
    at most some 24 bytes of its own (a header, zlib's)."""
    return max_bytes + max_bytes // 64 + 24 * (LIST_LIMIT // 41)


#: A fetch into a shadow (ours) that writes one pack, stopped where a copy of ``max_bytes``
#: stops (:func:`copy_bound`, ``hostgit.run(files=)``): what :func:`copy_failed` reads.
BOUNDED_FETCH = ("-c", "fetch.unpackLimit=1")


def copy_failed(proc: subprocess.CompletedProcess[bytes], gitdir: Path, max_bytes: int, *,
                branch: str, failed: str, then: str = SYNC_REFUSED) -> GitError:
    """Why a fetch into the shadow ``gitdir`` (:data:`BOUNDED_FETCH`) failed: the pack it
    wrote stopped at :func:`copy_bound` (its ``index-pack`` died of ``SIGXFSZ``, and git
    says only that its output was invalid), or as :func:`fetch_error` says."""
    bound = copy_bound(max_bytes)
    packs = gitdir / "objects" / "pack"
    if packs.is_dir() and any(f.is_file() and f.stat().st_size >= bound
                              for f in packs.iterdir()):
        return GitError(
            f"its new commits came over as more than the {max_bytes / 2**20:,.0f} MiB one "
            "sync brings in ([limits] max_sync_mib); " + then.format(branch=branch))
    return fetch_error(proc, branch, failed)


#: What a read of the workspace's commits (:func:`checked_shadow`) lets through of git's
#: object checks: those of a ``.gitmodules`` (a URL saying ``--upload-pack=``, a symlink
#: named so, one of many MiB) guard a repository that would clone or update submodules,
#: and that of a name macOS or Windows reads as ``.git`` one that would check it out; a
#: diff or a timeline does neither (the diff's index leaves such a path out:
#: :func:`appliance.unindexed.read_tree`). Refused there, one such file committed denied
#: the person the diff of all the agent's work. A sync still refuses them.
READ_LENIENT = tuple(arg for check in (*(f"gitmodules{c}" for c in (
    "Blob", "Large", "Missing", "Name", "Parse", "Path", "Symlink", "Update", "Url")),
    "hasDotgit") for arg in ("-c", f"fetch.fsck.{check}=warn"))


@contextlib.contextmanager
def checked_shadow(repo: RepoInfo, workspace: Path, scratch: Path, heads: Mapping[str, str],
                   refs: Mapping[str, str], *, branch: str, max_bytes: int,
                   timeout: float = hostgit.GIT_TIMEOUT) -> Iterator[Path]:
    """A shadow that reads the workspace's commits ``heads`` (``refs/heads/<name>`` each,
    beside ``refs``) and the user's objects, and no object git has not named from its
    content (:func:`checked_copy`); refused when what it copies of them beyond the session's
    ``branch`` would be more than ``max_bytes``, as a sync of it is."""
    known = [*known_commits(repo, branch), *refs.values()]
    [first, *more] = heads
    with shadow_of(repo, workspace, scratch, heads) as source, \
            checked_copy(repo, source, scratch, first, heads[first], refs=refs,
                         branch="the workspace's commit", also=more,
                         failed="could not read the workspace's commit", known=known,
                         max_bytes=max_bytes, then=READ_REFUSED, timeout=timeout,
                         lenient=READ_LENIENT) as gitdir:
        yield gitdir


@contextlib.contextmanager
def checked_copy(repo: RepoInfo, source: Path, scratch: Path, ref: str, head: str, *,
                 refs: Mapping[str, str], branch: str, failed: str, known: list[str],
                 max_bytes: int, also: Sequence[str] = (), then: str = SYNC_REFUSED,
                 timeout: float = hostgit.GIT_TIMEOUT, lenient: Sequence[str] = ()
                 ) -> Iterator[Path]:
    """A shadow in ``scratch`` that borrows the user's objects only, with the commit
    ``head`` fetched into it (as ``refs/heads/<ref>``, beside ``refs``) from the shadow
    ``source``, which reads the agent's (and with it, its branches ``also``, by the same
    names); ``branch`` and ``failed`` say what could not be done when the fetch fails;
    ``lenient``: options that let some object checks through (:data:`READ_LENIENT`).
    What the user's objects lack (from ``known``) of all of them together is held to
    ``max_bytes`` (:func:`refuse_past`, saying ``then``): counted in ``source`` before
    anything is copied, and again in the copy, where no lie of the agent's is read; the
    copy, one pack, stops at :func:`copy_bound` between the two, and goes with the shadow
    either way.

    git believes a pack's index for the name of each object in it, and looks in every pack
    (the one it last found something in first, else the newest, whichever folder it is in)
    for an object it needs; an object named by the agent's pack could then stand for one of
    the user's. The shadow borrows the user's objects only, and the fetch (``fsckObjects``)
    names each object it copies from its content, so no name in the copy is the agent's
    word: an object the agent's pack names under another's id is copied under its own, and
    it leaves the fetch short of an object, and the fetch fails."""
    if hex_id(head.encode()) is None:
        raise InvalidInput(f"{head!r} is not a commit id")
    heads = [f"refs/heads/{r}" for r in also]
    refuse_past(repo, source, branch, head, known, also=heads, max_bytes=max_bytes,
                then=then, timeout=timeout)
    with shadow.shadow_dir(scratch, owner=repo.owner, refs=refs,
                           objects=repos.borrowed_object_dirs(repo.objects_dir)) as gitdir:
        # One pack, stopped where the limit does (BOUNDED_FETCH): the count above read the
        # agent's objects, and an object that answers two ways read two bytes, sent 64 MiB.
        proc = hostgit.run([*BOUNDED_FETCH, *lenient, *fetch_argv(source, ref, ref),
                            *(f"+{h}:{h}" for h in heads)],
                           owner=repo.owner, cwd=gitdir, env={"GIT_DIR": str(gitdir)},
                           check=False, memory=hostgit.READ_MEMORY, timeout=timeout,
                           files=copy_bound(max_bytes))
        if proc.returncode != 0:
            raise copy_failed(proc, gitdir, max_bytes, branch=branch,
                              failed=f"{failed} ({head[:12]})", then=then)
        refuse_past(repo, gitdir, branch, head, known, also=heads, max_bytes=max_bytes,
                    then=then, timeout=timeout)
        yield gitdir
