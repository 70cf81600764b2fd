"""Bringing each session branch into the user's repository (the SyncBranch action).

The plan asks for a sync when a workspace's branch moved past what was last brought in
(:class:`BranchSync` remembers that per session, in memory: after a restart every session is
brought in once more, which is a no-op fetch). A failed sync is shown on the session — its
status reason and a ``branch_sync_failed`` event — and tried again after
:data:`RETRY_SECONDS`, or at once when the agent commits again. Before a workspace is
deleted, :func:`last_sync` brings the branch in one last time, or keeps the workspace aside.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import trio

from appliance import branchsync, repos, workspaces
from appliance.errors import ClauderonError
from appliance.reconcile import pods
from appliance.reconcile.deps import Deps
from appliance.sessions import ExtraRepo, Session

log = logging.getLogger(__name__)

PREFIX = "the session branch could not be brought into your repository: "
RETRY_SECONDS = 30.0
#: The least time between the starts of two syncs of one session.
MIN_GAP_SECONDS = 1.0


class BranchSync:
    """Per session: the commit last brought in (or given up on), when to try again, and
    when its last sync began (an agent committing in a loop gets one every
    :data:`MIN_GAP_SECONDS`, not one a commit: each is several host git processes)."""

    def __init__(self) -> None:
        self.synced: dict[str, str] = {}
        self._retry_at: dict[str, float] = {}
        self._began: dict[str, float] = {}

    def due(self, now: float,
            tips: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """What the plan compares ``tips`` against: failed syncs whose wait is over drop
        out, and a session whose last sync began under the gap ago counts as in step (a
        later pass, at most ``resync_seconds`` away, brings it in)."""
        for sid, at in list(self._retry_at.items()):
            if at <= now:
                self.synced.pop(sid, None)
                del self._retry_at[sid]
        recent = {sid: tip for sid, tip in (tips or {}).items()
                  if tip and now - self._began.get(sid, -math.inf) < MIN_GAP_SECONDS}
        return self.synced | recent

    def forget(self, session_id: str) -> None:
        self.synced.pop(session_id, None)
        self._retry_at.pop(session_id, None)
        self._began.pop(session_id, None)

    def begin(self, session_id: str, now: float) -> None:
        self._began[session_id] = now

    async def run(self, deps: Deps, s: Session, tip: str) -> None:
        self.begin(s.id, trio.current_time())
        try:
            await bring_in(deps, s, tip)
        except ClauderonError as exc:
            self.synced[s.id] = tip
            self._retry_at[s.id] = trio.current_time() + RETRY_SECONDS
            log.warning("bringing %s into %s failed: %s", s.branch, s.repo_path, exc.message,
                        extra={"session": s.id})
            reason = f"{PREFIX}{exc.message}"
            if s.status_reason != reason:
                await deps.update(s, status_reason=reason)
                await deps.event(s, "branch_sync_failed", {"branch": s.branch, "commit": tip,
                                                           "reason": exc.message})
            return
        self.synced[s.id] = tip
        self._retry_at.pop(s.id, None)
        primary, extra_tips = split_tip(tip)
        payload: dict[str, object] = {"branch": s.branch, "commit": primary}
        if extra_tips:
            payload["repos"] = extra_tips
        await deps.event(s, "branch_synced", payload)
        if s.status_reason and s.status_reason.startswith(PREFIX):
            await deps.update(s, status_reason=None)


def combined_tip(primary: str | None, s: Session) -> str | None:
    """What the plan compares to decide a sync: the primary's tip, then each further
    repository's as ``<mount>=<commit>`` (a single-repo session's is its tip alone)."""
    if primary is None or not s.extra_repos:
        return primary
    parts = [primary]
    for e in s.extra_repos:
        tip = workspaces.read_tip(Path(e.worktree_path), s.branch)
        if tip is not None:
            parts.append(f"{e.mount}={tip}")
    return " ".join(parts)


def split_tip(combined: str) -> tuple[str, dict[str, str]]:
    first, *rest = combined.split(" ")
    return first, dict(part.split("=", 1) for part in rest if "=" in part)


async def bring_in(deps: Deps, s: Session, tip: str) -> None:
    """Each repository's session branch into its user repository, the primary first."""
    if pods.on_kubernetes(s):
        await pods.bring_in(deps, s)  # from the remote the agent pushed to
        return
    primary, extra_tips = split_tip(tip)
    await _bring_in_one(deps, s, None, primary)
    for e in s.extra_repos:
        if e.mount in extra_tips:
            await _bring_in_one(deps, s, e, extra_tips[e.mount])


async def _bring_in_one(deps: Deps, s: Session, extra: ExtraRepo | None, tip: str) -> None:
    """One repository's session branch, at ``tip``, into its user repository: the primary
    one (``extra`` None) or a further one (its errors then name its mount)."""
    repo_path, worktree = ((s.repo_path, s.worktree_path) if extra is None
                           else (extra.repo_path, extra.worktree_path))
    info = await trio.to_thread.run_sync(repos.repo_facts, repo_path)
    try:
        await trio.to_thread.run_sync(lambda: branchsync.sync_branch(
            info, Path(worktree), s.branch, tip, deps.settings.shadows_dir / s.id,
            max_bytes=deps.settings.max_sync_mib << 20))
    except ClauderonError as exc:
        if extra is not None:
            exc.message = f"{extra.mount}: {exc.message}"
        raise


async def last_sync(deps: Deps, s: Session) -> None:
    """Before a workspace goes: its branch into the user's repository, or, when that cannot
    be done, the workspace kept aside under ``kept/`` (work is never lost)."""
    if pods.on_kubernetes(s):
        # The branch is on the remote (the agent pushed it): bring its last state in; if
        # that fails the remote still has it, and the failure is written down.
        try:
            await pods.bring_in(deps, s)
        except ClauderonError as exc:
            log.warning("the last fetch of %s failed: %s", s.branch, exc.message,
                        extra={"session": s.id})
            await deps.event(s, "branch_sync_failed", {"branch": s.branch,
                                                       "reason": exc.message})
        finally:  # where its fetches landed first
            await trio.to_thread.run_sync(
                lambda: shutil.rmtree(deps.settings.shadows_dir / s.id, ignore_errors=True))
        return
    try:
        await _last_one(deps, s, Path(s.worktree_path), f"{s.name}-{s.id[:8]}", None)
        for e in s.extra_repos:
            await _last_one(deps, s, Path(e.worktree_path),
                            f"{s.name}-{s.id[:8]}-{e.mount}", e)
    finally:
        await trio.to_thread.run_sync(
            lambda: shutil.rmtree(deps.settings.shadows_dir / s.id, ignore_errors=True))


async def _last_one(deps: Deps, s: Session, path: Path, kept_name: str,
                    extra: ExtraRepo | None) -> None:
    """One repository's last sync, or its workspace kept aside when it cannot be done: the
    sync fails, the branch cannot be read, its objects hold what is not a file
    (:func:`~appliance.workspaces.odd_object`), or a folder with files stands without a
    repository (its ``.git`` removed, or made a file or a link): what is in it would be
    lost."""
    repository = await trio.to_thread.run_sync(workspaces.is_workspace, path)
    tip = await trio.to_thread.run_sync(workspaces.read_tip, path, s.branch) \
        if repository else None
    if tip is None:
        if await trio.to_thread.run_sync(_holds_files, path):
            await _keep(deps, s, path, kept_name, (
                f"the workspace's branch {s.branch} cannot be read (its ref is gone, or "
                "not a commit id)") if repository else (
                "the workspace has no repository (.git) to bring its branch in from"))
        return
    # The container is gone, so the folder holds still: what host git would wait on (a
    # FIFO where an object should be), for its whole timeout in the place of the action
    # every other session's create and delete share, is seen now.
    odd = await trio.to_thread.run_sync(workspaces.odd_object, path)
    if odd is not None:
        await _keep(deps, s, path, kept_name, f"the branch was not brought in: {odd}")
        return
    try:
        await _bring_in_one(deps, s, extra, tip)
    except ClauderonError as exc:
        await _keep(deps, s, path, kept_name, exc.message)


#: The ``.git`` of a kept workspace: a link file to a path that can never be a folder.
NO_REPOSITORY = b"gitdir: /dev/null/kept-by-clauderon-not-a-repository\n"


def _move_aside(path: Path, kept: Path) -> None:
    """The workspace to ``kept``, its repository renamed ``.git-agent``: the user comes here
    to take the work back, and a git they run in the folder (or their shell's prompt) would
    otherwise use the agent's repository, whose config and hooks are the agent's to write.
    The rename is of the entry itself, whatever it is (a link is not followed). So are the
    repositories the agent made in its folders (``src/.git``), and each such folder, and
    the top, gets a ``.git`` of ours naming no repository: git also takes a folder holding
    ``HEAD``, ``objects/`` and ``refs/`` for a (bare) repository, config and all, and a git
    run below a folder looks in each one up to here. The container is gone: nothing moves
    while this walks."""
    kept.parent.mkdir(mode=0o700, exist_ok=True)
    path.rename(kept)
    _defuse(kept)
    found = subprocess.run(
        ["find", "-P", str(kept), "-mindepth", "2", "(", "-name", ".git", "-o", "-name",
         "HEAD", ")", "-print0"], capture_output=True, check=False, timeout=600)
    for raw in found.stdout.split(b"\0"):
        folder = Path(os.fsdecode(raw)).parent
        if raw and not folder.name.startswith(".git") and folder.is_dir() \
                and not folder.is_symlink():
            with contextlib.suppress(OSError):
                _defuse(folder)


def _defuse(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if _entry(".git", fd):
            # The agent may have used the first names itself: none of its files is replaced.
            name = next(n for n in (f".git-agent{i or ''}" for i in range(10_000))
                        if not _entry(n, fd))
            os.rename(".git", name, src_dir_fd=fd, dst_dir_fd=fd)
        ours = os.open(".git", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644,
                       dir_fd=fd)
        try:
            os.write(ours, NO_REPOSITORY)
        finally:
            os.close(ours)
    finally:
        os.close(fd)


def _entry(name: str, folder: int) -> bool:
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _holds_files(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return any(e.name != ".git" for e in entries)
    except OSError:  # gone, or not a folder
        return False


async def _keep(deps: Deps, s: Session, path: Path, kept_name: str, reason: str) -> None:
    """``path`` moved aside under ``kept/`` (renames only: nothing in it is read)."""
    kept = deps.settings.kept_dir / kept_name
    await trio.to_thread.run_sync(_move_aside, path, kept)
    log.warning("kept the workspace of %s at %s: %s", s.name, kept, reason,
                extra={"session": s.id})
    await deps.event(s, "workspace_kept", {"path": str(kept), "reason": reason})
