"""A session's branch on GitHub: push it, read its pull request, open one, merge it.

Theory of operation. Everything here is done for a person (a UI asked, or the reconciler's
schedule): git and GitHub's API are reached through the appliance's own proxy identity
(:mod:`appliance.publish`, :mod:`appliance.github_client`), and what is learned is written
on the session row as its :class:`~appliance.pullstate.PullStatus` (event ``pull``), which
every UI shows with the session and hears about on ``/ws/events``.

* :func:`push`: the workspace's newest commit is brought into the user's repository first
  (the reconciler does that on its own pace; a push must not wait for it), then the branch
  is pushed from there; optionally a pull request is opened from it;
* :func:`refresh`: the pull request whose head is the branch, its mergeability, the check
  runs on its head commit and its reviews;
* :func:`merge`: checked against a fresh read (open, the head GitHub would merge is the
  one read), merged by GitHub with the chosen method; GitHub's 405 (not mergeable) and 409
  (the head moved) come back as conflicts in its own words. ``delete_branch`` deletes the
  branch on the remote after the merge; the user's repository keeps its copy.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

from appliance import branchsync, github, hostgit, publish, repos, workspaces
from appliance.config import Settings
from appliance.errors import ClauderonError, Conflict, InvalidInput
from appliance.github import RepoSlug
from appliance.github_client import GitHubClient, owner_proxy, proxy_ca
from appliance.pullstate import PullStatus, to_merge
from appliance.quoted import marked
from appliance.sessions import BackendKind, Session
from appliance.store import AsyncStore
from appliance.timeline import plain

log = logging.getLogger(__name__)

METHODS = ("merge", "squash", "rebase")
_HEX = re.compile(r"[0-9a-f]{7,64}")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def base_status(s: Session, slug: RepoSlug | None) -> PullStatus:
    if s.pull is not None:
        return s.pull
    return PullStatus(repo=str(slug) if slug else "", branch=s.branch)


async def _record(store: AsyncStore, s: Session, status: PullStatus, event: str,
                  **detail: Any) -> Session:
    return await store.run(lambda: store.sync.update_session(
        s.id, event=event, detail=detail or None, pull=status))


def _github(remote: publish.Remote) -> RepoSlug:
    if remote.slug is None:
        raise InvalidInput(f"the remote {remote.url} is not on github.com: pull requests "
                           "are shown and merged for GitHub repositories only")
    return remote.slug


async def _remote(s: Session) -> tuple[repos.RepoInfo, publish.Remote]:
    repo = await trio.to_thread.run_sync(repos.repo_facts, s.repo_path)
    return repo, await trio.to_thread.run_sync(publish.remote_of, repo)


def bring_current(settings: Settings, s: Session, repo: repos.RepoInfo) -> None:
    """The workspace's newest commit into the user's repository (blocking)."""
    if s.backend is not BackendKind.DOCKER:
        return  # a pod's branch reaches the user's repository through the remote
    tip = workspaces.read_tip(Path(s.worktree_path), s.branch)
    if tip is None or repos.branch_tip(repo, s.branch) == tip:
        return
    try:
        branchsync.sync_branch(repo, Path(s.worktree_path), s.branch, tip,
                               settings.shadows_dir / s.id,
                               max_bytes=settings.max_sync_mib << 20)
    except ClauderonError:
        if repos.branch_tip(repo, s.branch) != tip:  # not the reconciler's sync beside ours
            raise


def _base_branch(s: Session) -> str | None:
    base = s.base_ref.removeprefix("refs/heads/").removeprefix("origin/")
    if base in ("", "HEAD") or base.startswith("refs/") or _HEX.fullmatch(base):
        return None
    return base


def _title(repo: repos.RepoInfo, s: Session) -> str:
    # The agent wrote the subject, of any length: 4 KiB of it is read, 250 characters kept.
    # git holds the commit whole and formats the subject whole before it prints a byte (a
    # message of 300 MiB of zeros is an object of KiB): a title it has not the heap for is
    # the session's name.
    subject = hostgit.run(["log", "-1", "--format=%s", f"refs/heads/{s.branch}", "--"],
                          owner=repo.owner, cwd=repo.root, check=False, limit=4096,
                          memory=hostgit.READ_MEMORY).stdout[:4096].decode(
                              "utf-8", "replace").strip()
    # Written on the person's GitHub, where nothing marks them: each character drawn as
    # nothing or reordering the rest is shown as what it is, controls are taken out.
    return plain(marked(subject or s.name), 250)


async def push(settings: Settings, key: bytes, store: AsyncStore, s: Session, *,
               force: bool = False, open_pr: bool = False, draft: bool = False,
               expect: str | None = None) -> Session:
    """Push the session's branch (its newest commit brought in first); ``expect``: only
    when that is the commit the person looked at (:func:`appliance.publish.push_branch`)."""
    repo, remote = await _remote(s)
    await trio.to_thread.run_sync(bring_current, settings, s, repo)
    proxy = owner_proxy(settings, key)
    sha = await trio.to_thread.run_sync(lambda: publish.push_branch(
        repo, remote, s.branch, proxy=proxy, ca=proxy_ca(settings), force=force,
        expect=expect))
    log.info("pushed %s at %s to %s", s.branch, sha[:12], remote.url,
             extra={"session": s.id})
    base = PullStatus(repo=str(remote.slug or remote.url), branch=s.branch,
                      pushed_sha=sha, pushed_at=now())
    if remote.slug is None:
        return await _record(store, s, base, "pushed", commit=sha)
    async with GitHubClient.for_settings(settings, key) as gh:
        status = await read(gh, remote.slug, base)
        if open_pr and not status.is_open:
            target = _base_branch(s) or await gh.default_branch(remote.slug)
            title = await trio.to_thread.run_sync(_title, repo, s)
            body = (f"Opened by Clauderon for the session `{s.name}`.\n\n"
                    + "".join(f"> {line}\n" for line in s.initial_prompt.splitlines()[:20]))
            await gh.open_pull(remote.slug, head=s.branch, base=target, title=title,
                               body=body, draft=draft)
            status = await read(gh, remote.slug, base)
    return await _record(store, s, status, "pushed", commit=sha)


async def read(gh: GitHubClient, slug: RepoSlug, base: PullStatus) -> PullStatus:
    """What GitHub says now about ``base.branch``."""
    pr = github.newest_pull(await gh.pulls_for(slug, base.branch), base.branch)
    if pr is None:
        return github.status_of(base, None, now=now())
    number = int(pr["number"])
    if pr.get("state") != "open":
        return github.status_of(base, pr, now=now())
    detail = await gh.pull(slug, number)
    sha = str((detail.get("head") or {}).get("sha") or "")
    runs = await gh.check_runs(slug, sha) if sha else []
    reviews = await gh.reviews(slug, number)
    return github.status_of(base, pr, detail=detail, runs=runs, reviews=reviews, now=now())


async def refresh(settings: Settings, key: bytes, store: AsyncStore, s: Session,
                  *, quiet: bool = False) -> Session:
    """Read the branch's pull request again and record it. ``quiet``: a failure is written
    on the status (kept beside what was known) instead of raised (the schedule's way)."""
    _repo, remote = await _remote(s)
    base = base_status(s, remote.slug)
    try:
        async with GitHubClient.for_settings(settings, key) as gh:
            status = await read(gh, _github(remote), base)
    except ClauderonError as exc:
        if not quiet or s.pull is None:
            raise
        status = replace(base, error=exc.message[:300], checked_at=now())
    if status.same_as(s.pull) or (quiet and s.pull is None and status.number is None):
        return s  # nothing new; a branch never pushed is written once a pull request shows
    return await _record(store, s, status, "pull")


async def merge(settings: Settings, key: bytes, store: AsyncStore, s: Session, *,
                method: str, delete_branch: bool = False,
                head_sha: str | None = None) -> tuple[Session, str]:
    """``head_sha``: the head the person saw (a UI sends what it showed); anything newer
    (the agent pushed since) is refused, so nothing is merged that was not looked at. A
    pull request whose base is not the session's base (its agent may edit its pull
    request) is refused too: a merge lands only where the session was made from."""
    if method not in METHODS:
        raise InvalidInput(f"the merge method is one of {', '.join(METHODS)}", field="method")
    _repo, remote = await _remote(s)
    slug = _github(remote)
    async with GitHubClient.for_settings(settings, key) as gh:
        status = await read(gh, slug, base_status(s, slug))
        target = _base_branch(s) or await gh.default_branch(slug)
        try:
            number = to_merge(status, target, head_sha)
        except Conflict as refusal:
            if refusal.field is not None:  # what GitHub says now, for the person to see
                await _record(store, s, status, "pull")
            raise
        answer = await gh.merge(slug, number, method=method, sha=status.head_sha)
        merged = str(answer.get("sha") or "") if isinstance(answer, dict) else ""
        kept: str | None = None
        if delete_branch:
            try:
                await gh.delete_branch(slug, s.branch)
            except ClauderonError as exc:  # merged all the same: say so, do not fail it
                kept = exc.message
                log.warning("merged %s, but its branch was not deleted: %s", s.name,
                            exc.message, extra={"session": s.id})
        status = await read(gh, slug, status)
    session = await _record(store, s, status, "merged", method=method, commit=merged,
                            number=status.number, deleted_branch=delete_branch and not kept,
                            **({"branch_kept": kept} if kept else {}))
    return session, merged
