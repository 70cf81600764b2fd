"""A session branch that lives on the repository's remote (Kubernetes sessions).

A pod cannot borrow the user's objects from the host, so its workspace is a clone of the
repository's remote, made in the cluster through the proxy, and the agent's commits reach
the user by the same road back: the agent pushes its branch (the proxy injects the git
credential: none is in the pod), and the appliance fetches that branch into the user's
repository, as the repository's owner, through the proxy with the session's own proxy
credentials (so the proxy audits it under the session), objects checked, moving nothing but
``refs/heads/<branch>``.

Only ``https://`` remotes are used (the proxy injects credentials over TLS only), with any
user name or password stripped from the URL: credentials are the proxy's business.
"""

from __future__ import annotations

from pathlib import Path

from appliance import branchsync, hostgit, repos, shadow, workspaces
from appliance.errors import GitError, InvalidInput
from appliance.repos import RepoInfo

#: How long a listing of the remote's refs may take. A fetch of the branch takes as long as
#: any host git reading an agent's objects (:data:`~appliance.hostgit.GIT_TIMEOUT`): it may
#: bring in up to ``max_sync_mib``, and resolving a file's deltas alone took over 30 s on a
#: busy machine.
REMOTE_TIMEOUT = 30.0
#: What of the remote's answer to ``ls-remote`` is read: git prints each ref whose name
#: ends like the branch, and the remote names its refs (and sends as many as it likes,
#: which git's helper holds whole: a listing runs with the heap of a git reading an
#: agent's data).
LISTING_LIMIT = 64 << 10


def cluster_remote(repo: RepoInfo) -> str:
    """The remote a Kubernetes session clones, or a refusal that says what to do."""
    raw = repos.remote_url(repo)
    url = repos.clean_remote(raw)
    if url is None:
        said = f"its origin is {raw!r}" if raw else "it has no remote named origin"
        raise InvalidInput(
            f"the kubernetes backend clones the repository's remote inside the cluster, but "
            f"{repo.root} has no https remote ({said}); add one (git remote add origin "
            "https://...) and push the base branch, or use the docker backend",
            field="backend")
    return url


def https_argv(ca: Path | None) -> list[str]:
    """Git's options for an https remote: https allowed (the safe configuration allows local
    files only) and, when given, the proxy's CA trusted."""
    argv = ["-c", "protocol.https.allow=always"]
    if ca is not None:
        argv += ["-c", f"http.sslCAInfo={ca}"]
    return argv


def _env(proxy: str) -> dict[str, str]:
    # In the environment, not on the command line: the URL carries the session's proxy
    # credentials, and any user of the host can read another's command line.
    return {"https_proxy": proxy, "HTTPS_PROXY": proxy}


def remote_tip(repo: RepoInfo, url: str, branch: str, *, proxy: str,
               ca: Path | None) -> str | None:
    """The commit ``branch`` names on the remote (None: not there yet)."""
    proc = hostgit.run([*https_argv(ca), "ls-remote", "--heads", "--end-of-options", url,
                        f"refs/heads/{branch}"], owner=repo.owner, cwd=repo.root,
                       env=_env(proxy), check=False, timeout=REMOTE_TIMEOUT,
                       limit=LISTING_LIMIT, memory=hostgit.READ_MEMORY)
    cut = len(proc.stdout) > LISTING_LIMIT
    if proc.returncode != 0 and not cut:
        raise GitError(f"could not ask {url} for {branch}: {hostgit.said(proc)}")
    for line in proc.stdout[:LISTING_LIMIT].decode("ascii", "replace").splitlines():
        sha, _, name = line.partition("\t")
        if name.strip() == f"refs/heads/{branch}" and workspaces.hex_id(sha.encode()) == sha:
            return sha
    return None


def fetch_branch(repo: RepoInfo, url: str, branch: str, *, proxy: str, ca: Path | None,
                 scratch: Path, max_bytes: int) -> None:
    """``branch`` of the remote into the user's repository, forced (amend and rebase are
    the agent's right on its branch); nothing else moves.

    What the agent pushed is fetched into a shadow in ``scratch`` first (:mod:`appliance.shadow`:
    our config and refs, the user's objects borrowed, so only what is new comes over the
    wire), with the heap of a host git reading an agent's objects, a large file streamed,
    one pack that stops where a copy of ``max_bytes`` does (the agent's branch on the remote
    is of any size, and it was written whole on the host's disk before it was counted);
    from there it ends like the sync of a workspace on this host
    (:func:`~appliance.branchsync.take_branch`): held to ``max_bytes``, then brought in."""
    known = branchsync.known_commits(repo, branch)
    failed = f"could not fetch {branch} from {url} into {repo.root}"
    with shadow.shadow_dir(scratch, owner=repo.owner,
                           refs={f"known-{i}": c for i, c in enumerate(known)},
                           objects=repos.borrowed_object_dirs(repo.objects_dir)) as gitdir:
        proc = hostgit.run(
            [*https_argv(ca), *hostgit.STREAMED, *branchsync.BOUNDED_FETCH, "fetch", "--quiet",
             "--no-tags", "--no-write-fetch-head", "--no-auto-gc", "--no-recurse-submodules",
             "--end-of-options", url, f"+refs/heads/{branch}:refs/heads/sync"],
            owner=repo.owner, cwd=gitdir, env={"GIT_DIR": str(gitdir), **_env(proxy)},
            check=False, memory=hostgit.READ_MEMORY, files=branchsync.copy_bound(max_bytes))
        if proc.returncode != 0:
            raise branchsync.copy_failed(proc, gitdir, max_bytes, branch=branch, failed=failed)
        tip = workspaces.read_ref(gitdir / "refs" / "heads" / "sync")
        if tip is None:
            raise GitError(f"{failed}: the remote's {branch} is not a commit")
        branchsync.take_branch(repo, gitdir, branch, tip, known, max_bytes=max_bytes,
                               failed=failed)
