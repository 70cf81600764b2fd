"""Pushing a session's branch to the repository's remote, with the host's credential.

The push runs on the host, from the **user's repository** (where the reconciler brings the
session branch, :func:`appliance.branchsync.sync_branch`), never inside the container: git
runs as the repository's owner through :mod:`appliance.hostgit` (no hooks, no config of
ours to trust but command-line configuration), over https only, through the appliance's own
proxy identity. The proxy injects the git credential; none is on the command line, in a
git config file or in the remote URL. The proxy URL, which carries the identity's token,
is handed to git as command-scope configuration in the environment
(``GIT_CONFIG_COUNT``/``KEY``/``VALUE``: it outranks the repository's own ``http.proxy``
and, unlike ``-c``, never shows in a process list). Only ``refs/heads/clauderon/<name>``
is pushed: the proxy's owner rules (``proxy/gitguard.py``) refuse anything else anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appliance import hostgit, remotes, repos
from appliance.errors import Conflict, GitError, InvalidInput
from appliance.github import RepoSlug, push_url, repo_slug
from appliance.repos import RepoInfo

PUSH_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Remote:
    url: str  # https, no credential
    slug: RepoSlug | None  # the GitHub repository, when it is one


def remote_of(repo: RepoInfo) -> Remote:
    """Where a session's branch is pushed, or a refusal that says how to add a remote."""
    raw = repos.remote_url(repo)
    slug = repo_slug(raw)
    if slug is not None:
        return Remote(url=push_url(slug), slug=slug)
    url = repos.clean_remote(raw)
    if url is None:
        said = f"its origin is {raw!r}" if raw else "it has no remote named origin"
        raise InvalidInput(
            f"{repo.root} has no https or GitHub remote to push to ({said}); add one: "
            "git remote add origin https://github.com/OWNER/REPO.git", field="repo_path")
    return Remote(url=url, slug=None)


def push_argv(url: str, branch: str, commit: str, *, force: bool,
              ca: Path | None) -> list[str]:
    """A push of ``commit`` as ``branch``: the commit named, not the branch as it is when
    git reads it (a sync may move it between)."""
    ref = f"refs/heads/{branch}"
    return [*remotes.https_argv(ca), *hostgit.PACKING, "push", "--porcelain", "--no-verify",
            "--end-of-options", url, f"{'+' if force else ''}{commit}:{ref}"]


def proxy_env(proxy: str) -> dict[str, str]:
    """``http.proxy`` in command scope, through the environment (never in argv)."""
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.proxy",
            "GIT_CONFIG_VALUE_0": proxy}


def push_branch(repo: RepoInfo, remote: Remote, branch: str, *, proxy: str, ca: Path | None,
                force: bool, expect: str | None = None) -> str:
    """Push ``branch`` of the user's repository; the commit pushed. ``expect``: the commit
    the person looked at (the diff's committed part), refused when the branch is at another
    (the agent committed since)."""
    tip = repos.branch_tip(repo, branch)
    if tip is None:
        raise GitError(f"{repo.root} has no branch {branch} yet: the session has not been "
                       "brought in (wait for its first commit, or see its status)")
    if expect is not None and expect.strip().lower() != tip:
        raise Conflict(f"{branch} moved to {tip[:12]} since you looked ({expect[:12]}); "
                       "look at its diff again, then push", field="commit")
    # The branch holds the agent's objects: git packs them with the heap of a host git
    # reading them, a large file streamed (two of 500 MiB a byte apart were held whole to
    # look for a delta between them).
    proc = hostgit.run(push_argv(remote.url, branch, tip, force=force, ca=ca), owner=repo.owner,
                       cwd=repo.root, env=proxy_env(proxy), check=False, timeout=PUSH_TIMEOUT,
                       memory=hostgit.READ_MEMORY)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        if "non-fast-forward" in out or "fetch first" in out or "[rejected]" in out:
            raise Conflict(
                f"the remote's {branch} has commits the session's branch does not (someone "
                "pushed to it, or the agent rewrote its history); push with force to "
                "replace them", field="force")
        said = hostgit.said(proc).replace(proxy, "<the appliance's proxy>")
        raise GitError(f"could not push {branch} to {remote.url}: {said}")
    return tip
