"""Git worktrees: one per session, on its own branch, under ``CLAUDERON_HOME/worktrees``.

Every function here is idempotent, because the reconciler may be killed between any two
steps and run them again: adding a worktree that is already there reuses it, removing one
that is gone is a no-op. Removing a worktree never deletes its branch: the work is kept.

Git runs as the appliance's user with ``safe.directory=*`` (the repository may belong to
someone else when the appliance runs as root); when it does, the new worktree's files are
handed to the repository's owner, the uid the agent's container runs as.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import GitError, InvalidInput

GIT_TIMEOUT = 60


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoInfo:
    root: Path
    subdirectory: str
    common_dir: Path
    owner_uid: int
    owner_gid: int


def git(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["git", "-c", "safe.directory=*", *args]
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed on the appliance's host; install git") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"`git {' '.join(args)}` in {cwd} took over {GIT_TIMEOUT}s") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise GitError(f"`git {' '.join(args)}` failed in {cwd}: {detail[-1] if detail else ''}")
    return proc


def inspect_repo(path: str | Path) -> RepoInfo:
    """Where the repository of ``path`` is, and which subdirectory ``path`` is inside it."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        raise InvalidInput(f"the repo path {str(path)!r} must be absolute", field="repo_path")
    if not p.exists():
        raise InvalidInput(f"the repo path {str(p)!r} does not exist", field="repo_path")
    if not p.is_dir():
        raise InvalidInput(f"the repo path {str(p)!r} is not a folder", field="repo_path")
    proc = git("rev-parse", "--show-toplevel", "--git-common-dir", "--is-bare-repository",
               cwd=p, check=False)
    if proc.returncode != 0:
        raise InvalidInput(
            f"{str(p)!r} is not inside a git repository (run `git init` there first)",
            field="repo_path",
        )
    top, common, bare = proc.stdout.strip().splitlines()
    if bare == "true":
        raise InvalidInput(f"{str(p)!r} is a bare repository; give a checkout", field="repo_path")
    root = Path(top).resolve()
    common_dir = (p / common).resolve() if not os.path.isabs(common) else Path(common).resolve()
    if git("rev-parse", "--verify", "--quiet", "HEAD", cwd=root, check=False).returncode != 0:
        raise InvalidInput(
            f"the repository {str(root)!r} has no commit yet; commit something first",
            field="repo_path",
        )
    sub = p.resolve().relative_to(root)
    st = root.stat()
    return RepoInfo(
        root=root, subdirectory="" if str(sub) == "." else str(sub), common_dir=common_dir,
        owner_uid=st.st_uid, owner_gid=st.st_gid,
    )


def repo_facts(repo_root: str | Path) -> RepoInfo:
    """What the reconciler needs of an already-validated repository, cheaply.

    A plain checkout's git directory is ``<root>/.git``: no git process needed. Anything
    else (the repo is itself a worktree, or ``.git`` is a file) asks git.
    """
    root = Path(repo_root)
    dot_git = root / ".git"
    if not dot_git.is_dir():
        return inspect_repo(root)
    st = root.stat()
    return RepoInfo(root=root, subdirectory="", common_dir=dot_git.resolve(),
                    owner_uid=st.st_uid, owner_gid=st.st_gid)


def resolve_ref(repo: Path, ref: str) -> str:
    """The commit a base ref names, or a clear error."""
    if ref.startswith("-"):
        raise InvalidInput(f"{ref!r} is not a valid base ref", field="base")
    proc = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo, check=False)
    if proc.returncode != 0:
        raise InvalidInput(f"the base {ref!r} is not a branch, tag or commit of {repo}",
                           field="base")
    return proc.stdout.strip()


def branch_exists(repo: Path, branch: str) -> bool:
    return git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}",
               cwd=repo, check=False).returncode == 0


def is_worktree(path: Path) -> bool:
    return (path / ".git").is_file()


def add_worktree(repo: Path, path: Path, branch: str, base_ref: str) -> None:
    """Create ``path`` on ``branch`` (made from ``base_ref`` when new). Idempotent."""
    if is_worktree(path):
        return
    if path.exists():
        # A leftover from an interrupted add: nothing of value can be in it yet.
        shutil.rmtree(path)
        git("worktree", "prune", cwd=repo, check=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The common case (a new branch) costs one git process; an existing branch (a retry,
    # or a restart after a crash) falls back to checking it out.
    proc = git("worktree", "add", "--quiet", "-b", branch, str(path), base_ref, cwd=repo,
               check=False)
    if proc.returncode != 0:
        git("worktree", "prune", cwd=repo, check=False)
        if not branch_exists(repo, branch):
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise GitError(f"`git worktree add` failed in {repo}: "
                           f"{detail[-1] if detail else ''}")
        git("worktree", "add", "--quiet", str(path), branch, cwd=repo)
    _hand_over(repo, path)


def _hand_over(repo: Path, path: Path) -> None:
    """When we run as root, give the worktree to the repository's owner."""
    st = repo.stat()
    if os.geteuid() != 0 or st.st_uid == 0:
        return
    admin = Path((path / ".git").read_text().split("gitdir:", 1)[1].strip())
    for target in (path, admin):
        for dirpath, _dirs, files in os.walk(target):
            os.chown(dirpath, st.st_uid, st.st_gid)
            for name in files:
                os.lchown(os.path.join(dirpath, name), st.st_uid, st.st_gid)


def remove_worktree(repo: Path, path: Path) -> None:
    """Remove the worktree folder and git's record of it; the branch stays. Idempotent."""
    if repo.exists():
        git("worktree", "remove", "--force", "--force", str(path), cwd=repo, check=False)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    if repo.exists():
        git("worktree", "prune", cwd=repo, check=False)


def changed_files(path: Path) -> list[str]:
    proc = git("status", "--porcelain", cwd=path, check=False)
    return [line[3:] for line in proc.stdout.splitlines() if line.strip()]
