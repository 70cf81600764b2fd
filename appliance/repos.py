"""The user's repositories, as the appliance sees them: where, whose, which refs.

Everything here reads the user's own repository (never an agent's workspace) and runs git
through :mod:`appliance.hostgit`, as the repository's owner. :func:`inspect_repo` validates
a path a person typed; :func:`repo_facts` is the cheap version the reconciler uses on a
repository it validated before.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from appliance import hostgit
from appliance.errors import GitError, InvalidInput
from appliance.github import repo_slug
from appliance.hostgit import Owner

log = logging.getLogger(__name__)

#: Nested alternates followed when listing the object folders a workspace borrows.
ALTERNATES_DEPTH = 5
#: The packs a repository holds before a sync rolls the small ones up (:func:`roll_up`).
PACK_LIMIT = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoInfo:
    root: Path
    subdirectory: str
    common_dir: Path
    owner_uid: int
    owner_gid: int

    @property
    def owner(self) -> Owner:
        return Owner(uid=self.owner_uid, gid=self.owner_gid)

    @property
    def objects_dir(self) -> Path:
        return self.common_dir / "objects"


def _owner_of(path: Path) -> Owner:
    st = path.stat()
    return Owner(uid=st.st_uid, gid=st.st_gid)


def _toplevel(p: Path, said: bytes) -> tuple[Path, Path]:
    """The work tree's root and the common git folder, from what ``git rev-parse
    --show-toplevel --git-common-dir --is-bare-repository`` said in ``p`` (a relative
    common folder is relative to ``p``); a bare repository is refused."""
    top, common, bare = said.decode("utf-8", "replace").strip().splitlines()
    if bare == "true":
        raise InvalidInput(f"{str(p)!r} is a bare repository; give a checkout", field="repo_path")
    return Path(top).resolve(), (p / common).resolve()


def inspect_repo(path: str | Path) -> RepoInfo:
    """Where the repository of ``path`` is, and which subdirectory ``path`` is inside it."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        raise InvalidInput(f"the repo path {str(path)!r} must be absolute", field="repo_path")
    if not p.exists():
        raise InvalidInput(f"the repo path {str(p)!r} does not exist", field="repo_path")
    if not p.is_dir():
        raise InvalidInput(f"the repo path {str(p)!r} is not a folder", field="repo_path")
    if not any(os.path.lexists(d / ".git") for d in (p, *p.parents)):
        raise InvalidInput(f"{str(p)!r} is not inside a git repository (run `git init` "
                           "there first)", field="repo_path")
    owner = _owner_of(p)
    hostgit.check_owner(owner, p)
    closed = hostgit.owner_can_reach(p, owner)
    if closed is not None:
        raise InvalidInput(
            f"{str(p)!r} belongs to uid {owner.uid}, who cannot reach it: {closed} is closed "
            f"to them (git runs as the repository's owner); chmod o+x {closed}",
            field="repo_path")
    proc = hostgit.run(["rev-parse", "--show-toplevel", "--git-common-dir",
                        "--is-bare-repository"], owner=owner, cwd=p, check=False)
    if proc.returncode != 0:
        # A .git is there (above), so say what git said rather than guess it is none.
        raise InvalidInput(f"git, run as the folder's owner (uid {owner.uid}), cannot read "
                           f"the repository at {str(p)!r}: {hostgit.said(proc)}; check that "
                           "the folder is a git repository its owner can read",
                           field="repo_path")
    root, common_dir = _toplevel(p, proc.stdout)
    root_owner = _owner_of(root)
    hostgit.check_owner(root_owner, root)
    if hostgit.run(["rev-parse", "--verify", "--quiet", "HEAD"], owner=root_owner, cwd=root,
                   check=False).returncode != 0:
        raise InvalidInput(f"the repository {str(root)!r} has no commit yet; commit "
                           "something first", field="repo_path")
    sub = p.resolve().relative_to(root)
    return RepoInfo(root=root, subdirectory="" if str(sub) == "." else str(sub),
                    common_dir=common_dir, owner_uid=root_owner.uid, owner_gid=root_owner.gid)


def repo_facts(repo_root: str | Path) -> RepoInfo:
    """What the reconciler needs of an already-validated repository, cheaply.

    A plain checkout's git directory is ``<root>/.git``: no git process needed. Anything
    else (the repo is itself a worktree, or ``.git`` is a file) asks git.
    """
    root = Path(repo_root)
    dot_git = root / ".git"
    if not dot_git.is_dir():
        return inspect_repo(root)
    owner = _owner_of(root)
    return RepoInfo(root=root, subdirectory="", common_dir=dot_git.resolve(),
                    owner_uid=owner.uid, owner_gid=owner.gid)


def current_branch(repo: RepoInfo) -> str:
    """The branch checked out in the repository, or ``HEAD`` when detached."""
    out = hostgit.text(["symbolic-ref", "--quiet", "--short", "HEAD"], owner=repo.owner,
                       cwd=repo.root, check=False)
    return out or "HEAD"


def head_commit(repo: RepoInfo) -> str | None:
    """The commit checked out in the repository; None in one without commits."""
    out = hostgit.text(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
                       owner=repo.owner, cwd=repo.root, check=False)
    return out or None


def resolve_ref(repo: RepoInfo, ref: str) -> str:
    """The commit a base ref names, or a clear error."""
    if ref.startswith("-") or not ref.strip():
        raise InvalidInput(f"{ref!r} is not a valid base ref", field="base")
    out = hostgit.text(["rev-parse", "--verify", "--quiet", "--end-of-options",
                        f"{ref}^{{commit}}"], owner=repo.owner, cwd=repo.root, check=False)
    if not out:
        raise InvalidInput(f"the base {ref!r} is not a branch, tag or commit of {repo.root}",
                           field="base")
    return out


def is_object_name(ref: str) -> bool:
    """Whether ``ref`` reads as an object's name, whole or abbreviated (4 to 64 hex)."""
    return 4 <= len(ref) <= 64 and all(c in "0123456789abcdefABCDEF" for c in ref)


def kept_base(repo: RepoInfo, ref: str) -> str:
    """The base a session keeps for ``ref`` (which resolves): ``ref`` itself, unless it is
    an object's name that names no ref, which becomes the full id of the commit it names
    now. The diff and the timeline resolve the base again on every read, in the repository
    every session's sync brings commits into, and an agent can make a commit whose name
    begins like the short one (seconds of hashing for five hex digits): the name then
    names two commits and the base is gone from the other session's views."""
    commit = resolve_ref(repo, ref)
    if not is_object_name(ref):
        return ref
    named = hostgit.text(["rev-parse", "--verify", "--quiet", "--symbolic-full-name",
                          "--end-of-options", ref], owner=repo.owner, cwd=repo.root,
                         check=False)
    return ref if named.startswith("refs/") else commit


def base_commit(repo: RepoInfo, ref: str) -> str | None:
    """The commit a session's base names, or None when it is gone from the repository."""
    try:
        return resolve_ref(repo, ref)
    except InvalidInput:
        return None


def branch_tip(repo: RepoInfo, branch: str) -> str | None:
    out = hostgit.text(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
                       owner=repo.owner, cwd=repo.root, check=False)
    return out or None


def branch_exists(repo: RepoInfo, branch: str) -> bool:
    return branch_tip(repo, branch) is not None


def create_branch(repo: RepoInfo, branch: str, commit: str) -> None:
    """Make ``branch`` at ``commit`` unless it exists (a retry keeps what is there)."""
    proc = hostgit.run(["update-ref", f"refs/heads/{branch}", commit, ""], owner=repo.owner,
                       cwd=repo.root, check=False)
    if proc.returncode != 0 and not branch_exists(repo, branch):
        raise GitError(f"could not create the branch {branch} in {repo.root}: "
                       f"{hostgit.said(proc)}")


def delete_branch_at(repo: RepoInfo, branch: str, commit: str) -> None:
    """Remove ``branch`` only while it is still at ``commit`` (best effort: a branch that
    moved is someone's work and stays)."""
    hostgit.run(["update-ref", "-d", f"refs/heads/{branch}", commit], owner=repo.owner,
                cwd=repo.root, check=False)


def top_entries(repo: RepoInfo, commit: str) -> set[str]:
    """The names at the top of ``commit``'s tree (what a mount name would hide)."""
    out = hostgit.text(["ls-tree", "--name-only", "--end-of-options", commit],
                       owner=repo.owner, cwd=repo.root, check=False)
    return set(out.splitlines())


def remote_url(repo: RepoInfo) -> str | None:
    """The URL of the repository's ``origin`` remote, if it has one."""
    out = hostgit.text(["config", "--get", "remote.origin.url"], owner=repo.owner,
                       cwd=repo.root, check=False)
    return out or None


def github_remotes(root: Path, owner: Owner) -> tuple[str, ...]:
    """The GitHub repositories (``owner/repo``) the repository at ``root`` has as remotes,
    in order, each once."""
    out = hostgit.text(["config", "--get-regexp", r"^remote\..*\.url$"], owner=owner,
                       cwd=root, check=False)
    slugs = (repo_slug(line.split(" ", 1)[1]) for line in out.splitlines() if " " in line)
    return tuple(dict.fromkeys(str(s) for s in slugs if s is not None))


def clean_remote(url: str | None) -> str | None:
    """The remote as an agent may be given it (a workspace's ``origin``, a pod's clone): https
    only, no user name, password or query in it (the proxy injects the credential); None
    otherwise. A person who cloned with a token in the URL keeps it in their own config only."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:  # not a port number
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    host += f":{port}" if port else ""
    # Nor a query: a token may travel there too (``?private_token=``).
    return urlunsplit(("https", host, parts.path, "", ""))


def borrowed_object_dirs(objects_dir: Path) -> list[Path]:
    """``objects_dir`` and the object folders it borrows from (its alternates), in order.

    A workspace reads the user's objects through these; each is mounted read-only into the
    container at its own path, so the chain resolves the same inside and out.
    """
    out: list[Path] = []
    pending = [(objects_dir.resolve(), 0)]
    while pending:
        current, depth = pending.pop(0)
        if current in out or not current.is_dir():
            continue
        out.append(current)
        if depth >= ALTERNATES_DEPTH:
            continue
        try:
            lines = (current / "info" / "alternates").read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
            continue
        for raw in lines:
            line = raw.strip()
            if line and not line.startswith("#"):
                nxt = Path(line) if os.path.isabs(line) else current / line
                pending.append((nxt.resolve(), depth + 1))
    return out


def pack_count(repo: RepoInfo) -> int:
    """How many packs the repository's own object folder holds."""
    try:
        with os.scandir(repo.objects_dir / "pack") as entries:
            return sum(1 for e in entries if e.name.endswith(".pack"))
    except OSError:
        return 0


def roll_up(repo: RepoInfo) -> None:
    """Past :data:`PACK_LIMIT` packs, the small ones and the loose objects rolled up into
    one (``repack --geometric``: each pack left at least twice the size of the ones it
    outgrew). Every sync writes a pack (or loose objects) into the person's repository and
    auto-gc is off for our git, so an agent committing in a loop left thousands, and every
    git the person runs there looks in each. The roll-up keeps every object, reachable or
    not (nothing of the person's is pruned), runs with the heap of a git reading what an
    agent wrote, and is best effort: a failure is logged, the sync stands."""
    if pack_count(repo) <= PACK_LIMIT:
        return
    proc = hostgit.run([*hostgit.PACKING, "repack", "-d",
                        "-q", "--geometric=2", "--no-write-bitmap-index"],
                       owner=repo.owner, cwd=repo.root, check=False,
                       memory=hostgit.READ_MEMORY)
    if proc.returncode != 0:
        log.warning("could not roll up the packs of %s: %s", repo.root, hostgit.said(proc))
