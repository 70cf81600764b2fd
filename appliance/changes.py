"""What a session changed: its workspace (or its branch) against where it forked from its base.

Runs git with a shadow git directory (:mod:`appliance.shadow`) and the workspace as work
tree, as the repository owner, so nothing of the agent's config, hooks, index or ``info/``
is read; the index is a scratch one, filled from the workspace's checked-out commit, and
``git add -A`` on it sees committed, staged, unstaged and untracked work alike. Diffs never
run an external diff or a textconv. Called by the API on a worker thread.

:func:`branch_diff` is for a session whose workspace this host cannot see (a pod's): the
session branch as fetched into the user's repository, against its fork point. Git runs in
the user's own repository on commits only (no work tree of the agent's is read), with the
same safe configuration and the same flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance import hostgit, repos, workspaces
from appliance.errors import GitError, InvalidInput
from appliance.repos import RepoInfo

DIFF_LIMIT = 2 * 1024 * 1024
DIFF_FLAGS = ("--no-color", "--no-ext-diff", "--no-textconv", "--no-renames")


def diff(repo: RepoInfo, workspace: Path, base_ref: str, scratch: Path) -> dict[str, Any]:
    """Files and unified diff of the workspace against the fork point of ``base_ref``."""
    head = workspaces.read_head(workspace)
    if head is None:
        raise InvalidInput("the workspace has no readable HEAD (the agent may have broken it)")
    base = repos.base_commit(repo, base_ref)
    refs = {"head": head} | ({"base": base} if base else {})
    with workspaces.shadow_of(repo, workspace, scratch, refs) as gitdir:
        env = {"GIT_DIR": str(gitdir), "GIT_WORK_TREE": str(workspace),
               "GIT_INDEX_FILE": str(gitdir / "scratch-index")}

        def git(*args: str, check: bool = True) -> str:
            proc = hostgit.run(args, owner=repo.owner, cwd=gitdir, env=env, check=check)
            return proc.stdout.decode("utf-8", "replace")

        fork = git("merge-base", "base", "head", check=False).strip() if base else ""
        against = fork or base or head
        git("read-tree", "head")
        untracked = {p for p in git("ls-files", "--others", "--exclude-standard", "-z")
                     .split("\0") if p}
        try:
            git("add", "--all")
        except GitError as exc:
            raise GitError(f"reading the workspace failed: {exc.message}") from exc
        text = git("diff", "--cached", *DIFF_FLAGS, against, "--")
        stat = git("diff", "--cached", "--name-status", "--no-renames", against, "--")
    return _answer(base_ref, fork, stat, untracked, text)


def _answer(base_ref: str, fork: str, stat: str, untracked: set[str],
            text: str) -> dict[str, Any]:
    """What both diffs answer: the files (from ``--name-status``) and the diff, bounded."""
    files = []
    for line in stat.splitlines():
        if not line.strip():
            continue
        status, _, path = line.partition("\t")
        files.append({"status": "?" if path in untracked else status, "path": path})
    return {"base_ref": base_ref, "merge_base": fork or None, "files": files,
            "truncated": len(text) > DIFF_LIMIT, "diff": text[:DIFF_LIMIT]}


def branch_diff(repo: RepoInfo, branch: str, base_ref: str) -> dict[str, Any]:
    """Files and unified diff of ``branch`` in the user's repository against the fork point
    of ``base_ref``: what the agent committed and the appliance fetched."""
    tip = repos.branch_tip(repo, branch)
    if tip is None:
        raise InvalidInput(f"the branch {branch} is not in {repo.root} yet (the appliance "
                           "fetches it once the session's pod pushes it)")
    base = repos.base_commit(repo, base_ref)

    def git(*args: str, check: bool = True) -> str:
        proc = hostgit.run(args, owner=repo.owner, cwd=repo.root, check=check)
        return proc.stdout.decode("utf-8", "replace")

    fork = git("merge-base", base, tip, check=False).strip() if base else ""
    against = fork or base or tip
    text = git("diff", *DIFF_FLAGS, against, tip, "--")
    stat = git("diff", "--name-status", "--no-renames", against, tip, "--")
    return _answer(base_ref, fork, stat, set(), text)
