"""What a session changed: its workspace (or its branch) against where it forked from its base.

Runs git with a shadow git directory (:mod:`appliance.shadow`) and the workspace as work
tree, as the repository owner, so nothing of the agent's config, hooks, index or ``info/``
is read, nor any object whose name git has not checked: the workspace's commits (the one
checked out, the branch's) are fetched into the shadow first
(:func:`appliance.branchsync.checked_shadow`; what the reconciler has brought in already
does not come again, and no more than one sync brings in, the two together), so a pack of
the agent's that answers for an object of the user's (a folder of the fork point,
holding the agent's files) hides no change. The index is a scratch one, filled from the
workspace's checked-out commit, with the workspace's deletions and, for each untracked
file, an intent to add (``git add -N -A``), so a diff of the work tree against the fork
sees committed, staged, unstaged and untracked work alike while no object of the work tree
is written: the workspace is the agent's to fill, and a diff that copied it into objects
would write as much again on the appliance's disk.
A push (a pull request, a merge) sends the session branch's commit, not the work tree, and
the agent may have undone in its work tree what it committed (a file put back as the fork
has it, the fork checked out detached): so beside the work tree against the fork, the
answer has the branch's commit against the fork (``committed``, each file marked when the
work tree holds it otherwise, :func:`marked`) and the work tree against that commit
(``uncommitted``), each read under the same bounds.
Only the first :data:`DIFF_LIMIT` bytes of the diff (and :data:`STAT_LIMIT` of the file
list, of which :data:`FILES_LIMIT` files are named) are read; git is stopped past them.
Diffs never run an external diff or a textconv. Called by the API on a worker thread.

:func:`branch_diff` is for a session whose workspace this host cannot see (a pod's): the
session branch as fetched into the user's repository, against its fork point. Git runs in
the user's own repository on commits only (no work tree of the agent's is read), with the
same safe configuration and the same flags; its work tree is not read (``uncommitted`` is
null).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from functools import partial
from pathlib import Path
from typing import Any

from appliance import branchsync, hostgit, nested, repos, unindexed, workspaces
from appliance.errors import GitError, InvalidInput
from appliance.quoted import shown
from appliance.repos import RepoInfo

DIFF_LIMIT = 2 * 1024 * 1024
#: The file list's bytes read at most (tens of thousands of paths).
STAT_LIMIT = 4 * 1024 * 1024
#: The files a diff names at most. The diff shown (:data:`DIFF_LIMIT`) holds a few thousand
#: at most, and each named is a record the API builds and encodes on its one loop: a commit
#: of 200,000 files was as many (the list's bytes alone, :data:`STAT_LIMIT`, hold some
#: 60,000 of git's ``--raw`` lines).
FILES_LIMIT = 10_000
#: The scratch index's listing read at most (a few hundred thousand files); past it, no diff.
INDEX_LIMIT = 64 * 1024 * 1024
#: ``--ignore-submodules=all``: git asks a submodule whether it is dirty by starting ``git
#: status`` in it, with its ``.git`` (the agent's, or wherever a ``.git`` file of the agent's
#: points) as git directory, whose clean filters run; only this flag, on the command line,
#: outranks a ``.gitmodules`` of the agent's saying ``ignore = none``.
DIFF_FLAGS = ("--no-color", "--no-ext-diff", "--no-textconv", "--no-renames",
              "--ignore-submodules=all")
#: Two commits compared (no work tree): nothing asks a submodule anything, and each
#: submodule's commit they change (a gitlink: the agent may point the person's submodule at
#: a commit of its own) is named, as a push sends it. ``none`` on the command line outranks
#: a ``.gitmodules`` saying ``ignore = all``.
COMMIT_FLAGS = (*DIFF_FLAGS[:-1], "--ignore-submodules=none")
#: git builds a file's whole diff in memory before writing a line of it (some 40 bytes
#: for each line): a file larger than the diff shown is diffed as a binary one, named and
#: not read, as git does past its own bound of 512 MiB.
BOUNDED = ("-c", f"core.bigFileThreshold={DIFF_LIMIT}")
#: The heap each of the diff's git processes may take: a file git converts whole (a
#: sparse one of no size on disk whose ``.gitattributes`` names a ``working-tree-encoding``)
#: is as large as the agent says, and the diff fails rather than take the host's memory.
DIFF_MEMORY = hostgit.READ_MEMORY


#: The answer's ``note`` when the workspace's HEAD cannot be read but its branch can.
UNREADABLE_HEAD = ("the workspace's HEAD cannot be read (the agent checked out a branch with "
                   "no commit yet, or broke .git/HEAD): what a push sends is the branch's "
                   "commit, shown in full; the work tree is compared as if that commit were "
                   "checked out, so what it holds against another commit the agent may "
                   "mean is not shown as such")


def sent_tip(*, in_workspace: str | None, brought_in: str | None,
             head: str | None) -> str | None:
    """The commit a push of the session branch sends, as the diff shows it: the branch as
    the workspace has it (the host brings it in from there at the next sync, which a push
    runs first), else as last brought in; the commit checked out when neither is known.
    None when neither the workspace's branch nor its HEAD (``head`` None: an unborn branch
    checked out, a HEAD that names nothing) can be read: nothing is shown then."""
    if in_workspace is None and head is None:
        return None
    return in_workspace or brought_in or head


def diff(repo: RepoInfo, workspace: Path, base_ref: str, scratch: Path, *,
         branch: str, max_bytes: int) -> dict[str, Any]:
    """Files and unified diff of the workspace against the fork point of ``base_ref``; of
    ``branch``'s commit against it (``committed``: what a push sends, :func:`sent_tip`,
    each file marked with what the work tree holds of it, :func:`marked`); and of the work
    tree against that commit (``uncommitted``). What the commits hold beyond the user's
    objects (and ``branch`` as brought in) is copied only up to ``max_bytes``, as a sync
    is. A HEAD that cannot be read (an unborn branch, garbage) hides nothing a push sends:
    the work tree is read against the branch's commit and the answer says so (``note``);
    refused only when the branch cannot be read either."""
    head, tip = _head_and_tip(repo, workspace, branch)
    # Before git walks the tree: a repository nested there whose HEAD is a FIFO held it.
    skipped = nested.traps(workspace)
    base = repos.base_commit(repo, base_ref)
    heads = {"head": head, "tip": tip} if head is not None else {"tip": tip}
    with branchsync.checked_shadow(repo, workspace, scratch, heads,
                                   {"base": base} if base else {}, branch=branch,
                                   max_bytes=max_bytes) as gitdir:
        git = partial(_git, repo, gitdir, workspace)
        fork = git("merge-base", "base", "tip", check=False).decode().strip() if base else ""
        # With the base gone, the work tree is compared with the commit checked out (as it
        # always was), and the branch's commit with nothing: all of it is what a push sends.
        against = fork or base or head or tip
        since = fork or base or git("hash-object", "-t", "tree", "--stdin", input=b"",
                                    tree=False).decode().strip()
        untracked, refused = _scratch_index(git, "head" if head is not None else "tip", skipped)
        left_out = unindexed.part(
            lambda *a, limit: git("-C", str(workspace), *BOUNDED, *a, check=False, limit=limit,
                                  tree=False), refused, DIFF_FLAGS[:-1], DIFF_LIMIT)
        work_tree, _ = _diffed(git, against, untracked=untracked, left_out=left_out)
        # Commits only, with no work tree: no ``.gitattributes`` of the agent's (``-diff``
        # would name a file and hide its lines) is read for what a push sends.
        committed, links = _diffed(git, since, "tip", untracked=set(), tree=False)
        uncommitted, _ = _diffed(git, "tip", untracked=untracked, left_out=left_out)
        said = subject(lambda *a: git(*a, check=False, limit=SUBJECT_LIMIT, tree=False))
    notes = (said_of(head is not None, skipped), unindexed.note(refused))
    return _answer(base_ref, fork, work_tree, tip=tip, committed=committed,
                   uncommitted=uncommitted, forked=bool(fork or base),
                   note=" ".join(filter(None, notes)) or None, subject=said, submodules=links)


def _head_and_tip(repo: RepoInfo, workspace: Path, branch: str) -> tuple[str | None, str]:
    """The workspace's HEAD (None: unreadable) and the commit a push sends (:func:`sent_tip`);
    refused when there is neither."""
    head = workspaces.read_head(workspace)
    tip = sent_tip(in_workspace=workspaces.read_tip(workspace, branch),
                   brought_in=repos.branch_tip(repo, branch), head=head)
    if tip is None:
        raise InvalidInput("the workspace has no readable HEAD, nor a branch to read (the "
                           "agent may have broken them)")
    return head, tip


def _git(repo: RepoInfo, gitdir: Path, workspace: Path, *args: str, check: bool = True,
         limit: int | None = None, input: bytes | None = None, tree: bool = True,
         allowed: Collection[int] = (0,)) -> bytes:
    """git in the shadow ``gitdir`` as the user, reading ``workspace``'s work tree when
    ``tree``."""
    env = {"GIT_DIR": str(gitdir)}
    if tree:
        env |= {"GIT_WORK_TREE": str(workspace), "GIT_INDEX_FILE": str(gitdir / "scratch-index")}
    return hostgit.run(args, owner=repo.owner, cwd=gitdir, env=env, check=check, limit=limit,
                       input=input, memory=DIFF_MEMORY, allowed=allowed).stdout


def said_of(head_readable: bool, skipped: dict[str, str]) -> str | None:
    """The diff's ``note``: an unborn branch checked out, or a HEAD that names nothing (the
    branch's commit still says what a push sends, and the work tree is read against it);
    the nested repositories left out of the work tree's listing (:func:`skipped_note`)."""
    notes = [] if head_readable else [UNREADABLE_HEAD]
    if skipped:
        notes.append(skipped_note(skipped))
    return " ".join(notes) or None


def _diffed(git: Callable[..., bytes], *against: str, untracked: set[str], tree: bool = True,
            left_out: tuple[list[dict[str, Any]], bytes] = ([], b"")
            ) -> tuple[dict[str, Any], set[str]]:
    """One part of the diff (:func:`_part`) against ``against``, with the work tree or (not
    ``tree``) of two commits, and the submodules its listing names (:func:`gitlinks`); the
    files git would not index (``left_out``, :func:`appliance.unindexed.part`) after it."""
    flags = DIFF_FLAGS if tree else COMMIT_FLAGS
    text = git(*BOUNDED, "diff", *flags, *against, "--", limit=DIFF_LIMIT, tree=tree)
    stat = git("diff", "--raw", *flags[-2:], *against, "--", limit=STAT_LIMIT, tree=tree)
    part = _part(stat, untracked, text + left_out[1])
    if len(part["files"]) + len(left_out[0]) > FILES_LIMIT:
        part["truncated"] = True
    part["files"] += left_out[0][:FILES_LIMIT - len(part["files"])]
    return part, gitlinks(stat)


#: The most of a commit's subject read: the agent wrote it, of any length.
SUBJECT_LIMIT = 4096


def subject(git: Callable[..., bytes], ref: str = "tip") -> str:
    """The subject of ``ref``'s commit, as a push's question names it (the agent's text:
    each UI makes it inert); 250 characters of the first 4 KiB, empty when git could not
    format it within its heap (a message of hundreds of MiB)."""
    said = git("log", "-1", "--format=%s", ref, "--")[:SUBJECT_LIMIT]
    return said.decode("utf-8", "replace").strip()[:250]


def skipped_note(skipped: dict[str, str]) -> str:
    """The answer's ``note`` naming the folders :func:`appliance.nested.traps` found, each
    name (the agent's to choose) in quotes on the note's one line (:func:`shown`)."""
    named = "; ".join(f'"{shown(path)}" ({why})' for path, why in list(skipped.items())[:20])
    more = f" and {len(skipped) - 20} more" if len(skipped) > 20 else ""
    return ("not shown: folders holding a repository host git could not look at without "
            f"waiting or reading outside the work tree: {named}{more}")


def pathspec(skipped: Collection[str]) -> tuple[str, ...]:
    """The whole work tree but ``skipped``'s folders (git asks them nothing)."""
    if not skipped:
        return ()
    return ("--", ".", *(f":(exclude,literal){path}" for path in skipped))


def pathspec_file(skipped: Collection[str]) -> bytes:
    """:func:`pathspec` as ``--pathspec-from-file`` reads it (NUL-separated, no ``--``):
    the folders left out may be many more than a command line holds."""
    return b"".join(os.fsencode(p) + b"\0" for p in pathspec(skipped)[1:] or (".",))


def repositories(untracked: Collection[str]) -> list[str]:
    """The folders ``ls-files --others`` names (with a trailing slash): each holds a
    repository of its own, which git lists as one entry and never walks."""
    return sorted(p[:-1] for p in untracked if p.endswith("/"))


def _scratch_index(git: Callable[..., bytes], commit: str,
                   skipped: Collection[str] = ()) -> tuple[set[str], list[bytes]]:
    """Fill the scratch index from ``commit`` (the one checked out), with the work tree's
    deletions and an intent to add each untracked file, outside the ``skipped`` folders
    (:mod:`appliance.nested`) and the repositories nested in it (:func:`repositories`);
    the untracked files' names, and those git would not index
    (:func:`appliance.unindexed.refused`)."""
    unindexed.read_tree(git, commit, INDEX_LIMIT)
    _drop_gitlinks(git)
    listed = git("ls-files", "--others", "--exclude-standard", "-z", *pathspec(skipped),
                 limit=STAT_LIMIT)
    untracked = {p for p in listed.decode("utf-8", "replace").split("\0") if p}
    # A repository nested in a folder git does not track is listed as that folder: adding
    # it (a gitlink, never shown: :data:`DIFF_FLAGS`) would resolve its branch through
    # its ``config``, refs and ``packed-refs``, any of them a FIFO the agent made.
    try:
        # A name git refuses in any index leaves that file out (exit status 1), not all.
        git("add", "--intent-to-add", "--all", "--ignore-errors", "--pathspec-file-nul",
            "--pathspec-from-file=-", input=pathspec_file([*skipped, *repositories(untracked)]),
            allowed=(0, 1))
    except GitError as exc:
        raise GitError(f"reading the workspace failed: {exc.message}") from exc
    return untracked, unindexed.refused(listed, git("ls-files", "-z", limit=INDEX_LIMIT))


def _drop_gitlinks(git: Callable[..., bytes]) -> None:
    """Take the submodules (gitlinks) out of the scratch index before anything compares it
    with the workspace: ``add --all`` has no ``--ignore-submodules`` and asks each one
    whether it is dirty (``git status`` with the agent's config, :data:`DIFF_FLAGS`). One
    the agent nested is then a folder ``ls-files --others`` names, and ``add`` skips."""
    listed = git("ls-files", "--stage", "-z", limit=INDEX_LIMIT)
    if len(listed) > INDEX_LIMIT:
        raise InvalidInput("the workspace's commit lists too many files to show its diff")
    links = [entry.partition(b"\t")[2] for entry in listed.split(b"\0")
             if entry.startswith(b"160000 ")]
    if links:
        git("update-index", "--force-remove", "-z", "--stdin",
            input=b"".join(link + b"\0" for link in links))


#: What the work tree holds of a file the branch's commit changes: as the fork has it (the
#: work tree undoes the committed change), or otherwise than the commit.
UNDONE = "undone"
DIFFERS = "differs"


#: A submodule's mode in git's ``--raw`` listing: a gitlink, a commit of another repository.
GITLINK = "160000"


def _listed(stat: bytes) -> list[tuple[list[str], str]]:
    """The lines of a ``--raw`` listing read within :data:`STAT_LIMIT` (cut at the last
    whole line): each one's fields (``:old-mode new-mode old new status``) and path."""
    listed = stat if len(stat) <= STAT_LIMIT else stat[:stat.rfind(b"\n", 0, STAT_LIMIT) + 1]
    out = []
    for line in listed.decode("utf-8", "replace").splitlines():
        fields, _, path = line.partition("\t")
        if fields.strip():
            out.append((fields.split(), path))
    return out


def gitlinks(stat: bytes) -> set[str]:
    """The paths a ``--raw`` listing shows as a submodule on either side: the work tree's
    parts ask no submodule anything (:data:`DIFF_FLAGS`), so they say nothing of these."""
    return {path for fields, path in _listed(stat)
            if GITLINK in (fields[0].lstrip(":"), *fields[1:2])}


def _part(stat: bytes, untracked: set[str], text: bytes) -> dict[str, Any]:
    """One diff's files (from ``--raw``, the first :data:`FILES_LIMIT`) and text, bounded
    (a list or a diff cut short ends at its last whole line, and says so)."""
    files: list[dict[str, Any]] = []
    more = False
    for fields, path in _listed(stat):
        if len(files) == FILES_LIMIT:
            more = True
            break
        status = fields[-1]
        # New and never added (to the commit compared with: else it is that commit's).
        new = status == "A" and path in untracked
        files.append({"status": "?" if new else status, "path": path})
    cut = len(text) > DIFF_LIMIT or len(stat) > STAT_LIMIT or more
    return {"files": files, "truncated": cut,
            "diff": text[:DIFF_LIMIT].decode("utf-8", "replace")}


def marked(committed: list[dict[str, Any]], work_tree: dict[str, Any] | None,
           uncommitted: dict[str, Any] | None, submodules: Collection[str] = ()
           ) -> list[dict[str, Any]]:
    """The files the branch's commit changes, each with ``work_tree``: :data:`UNDONE` when
    the work tree holds it as the fork does (the whole diff of the work tree against the
    fork does not name it; ``work_tree`` None: no fork, so never), :data:`DIFFERS` when it
    holds it otherwise than the commit (the uncommitted diff names it, or is cut short),
    else None. No work tree read (``uncommitted`` None, a pod's branch): nothing marked;
    nor a submodule (in ``submodules``, a gitlink on either side): the work tree's diffs
    never read one, so never name it, and saying it undone would be a guess."""
    if uncommitted is None:
        return [{**f, "work_tree": None} for f in committed]
    changed = {f["path"] for f in uncommitted["files"]}
    shown = {f["path"] for f in work_tree["files"]} if work_tree else set()
    out = []
    for f in committed:
        mark: str | None = None
        if f["path"] in submodules:
            pass
        elif work_tree is not None and f["path"] not in shown and not work_tree["truncated"]:
            mark = UNDONE
        elif f["path"] in changed or uncommitted["truncated"]:
            mark = DIFFERS
        out.append({**f, "work_tree": mark})
    return out


def _answer(base_ref: str, fork: str, work_tree: dict[str, Any], *, tip: str,
            committed: dict[str, Any], uncommitted: dict[str, Any] | None,
            forked: bool = True, note: str | None = None, subject: str = "",
            submodules: Collection[str] = ()) -> dict[str, Any]:
    """What both diffs answer: the work tree against the fork (as before: ``files``,
    ``diff``, ``truncated``), the branch's commit against it and the work tree against the
    commit. Not ``forked`` (the base is gone): the work tree was compared with its own
    commit, which says nothing of what it undoes."""
    return {"base_ref": base_ref, "merge_base": fork or None, **work_tree,
            "committed": {"commit": tip, "subject": subject, **committed,
                          "files": marked(committed["files"], work_tree if forked else None,
                                          uncommitted, submodules)},
            "uncommitted": uncommitted, "note": note}


def branch_diff(repo: RepoInfo, branch: str, base_ref: str) -> dict[str, Any]:
    """Files and unified diff of ``branch`` in the user's repository against the fork point
    of ``base_ref``: what the agent committed and the appliance fetched."""
    tip = repos.branch_tip(repo, branch)
    if tip is None:
        raise InvalidInput(f"the branch {branch} is not in {repo.root} yet (the appliance "
                           "fetches it once the session's pod pushes it)")
    base = repos.base_commit(repo, base_ref)

    def git(*args: str, check: bool = True, limit: int | None = None) -> bytes:
        return hostgit.run(args, owner=repo.owner, cwd=repo.root, check=check,
                           limit=limit, memory=DIFF_MEMORY).stdout

    fork = git("merge-base", base, tip, check=False).decode().strip() if base else ""
    against = fork or base or tip
    text = git(*BOUNDED, "diff", *COMMIT_FLAGS, against, tip, "--", limit=DIFF_LIMIT)
    stat = git("diff", "--raw", *COMMIT_FLAGS[-2:], against, tip, "--", limit=STAT_LIMIT)
    branch_part = _part(stat, set(), text)
    said = subject(lambda *a: git(*a, check=False, limit=SUBJECT_LIMIT), tip)
    # The pod's work tree is not read: what it holds besides the branch is not known here.
    return _answer(base_ref, fork, branch_part, tip=tip, committed=branch_part,
                   uncommitted=None, subject=said)
