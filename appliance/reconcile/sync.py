"""Bringing each session branch into the user's repository (the SyncBranch action).

The plan asks for a sync when a workspace's branch moved past what was last brought in
(:class:`BranchSync` remembers that per session, in memory: after a restart every session is
brought in once more, which is a no-op fetch). A failed sync is shown on the session — its
status reason and a ``branch_sync_failed`` event — and tried again after
:data:`RETRY_SECONDS`, or at once when the agent commits again. Before a workspace is
deleted, :func:`last_sync` brings the branch in one last time, or keeps the workspace aside.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import trio

from appliance import repos, workspaces
from appliance.errors import ClauderonError
from appliance.reconcile import pods
from appliance.reconcile.deps import Deps
from appliance.sessions import Session

log = logging.getLogger(__name__)

PREFIX = "the session branch could not be brought into your repository: "
RETRY_SECONDS = 30.0


class BranchSync:
    """Per session: the commit last brought in (or given up on), and when to try again."""

    def __init__(self) -> None:
        self.synced: dict[str, str] = {}
        self._retry_at: dict[str, float] = {}

    def due(self, now: float) -> dict[str, str]:
        """What the plan compares tips against; failed syncs whose wait is over drop out."""
        for sid, at in list(self._retry_at.items()):
            if at <= now:
                self.synced.pop(sid, None)
                del self._retry_at[sid]
        return self.synced

    def forget(self, session_id: str) -> None:
        self.synced.pop(session_id, None)
        self._retry_at.pop(session_id, None)

    async def run(self, deps: Deps, s: Session, tip: str) -> None:
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
        await deps.event(s, "branch_synced", {"branch": s.branch, "commit": tip})
        if s.status_reason and s.status_reason.startswith(PREFIX):
            await deps.update(s, status_reason=None)


async def bring_in(deps: Deps, s: Session, tip: str) -> None:
    if pods.on_kubernetes(s):
        await pods.bring_in(deps, s)  # from the remote the agent pushed to
        return
    repo = await trio.to_thread.run_sync(repos.repo_facts, s.repo_path)
    await trio.to_thread.run_sync(workspaces.sync_branch, repo, Path(s.worktree_path),
                                  s.branch, tip, deps.settings.shadows_dir / s.id)


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
        return
    path = Path(s.worktree_path)
    try:
        if not await trio.to_thread.run_sync(workspaces.is_workspace, path):
            return
        tip = await trio.to_thread.run_sync(workspaces.read_tip, path, s.branch)
        if tip is None:
            return
        try:
            await bring_in(deps, s, tip)
        except ClauderonError as exc:
            kept = deps.settings.kept_dir / f"{s.name}-{s.id[:8]}"
            await trio.to_thread.run_sync(lambda: kept.parent.mkdir(mode=0o700, exist_ok=True))
            await trio.to_thread.run_sync(path.rename, kept)
            log.warning("kept the workspace of %s at %s: %s", s.name, kept, exc.message,
                        extra={"session": s.id})
            await deps.event(s, "workspace_kept", {"path": str(kept), "reason": exc.message})
    finally:
        await trio.to_thread.run_sync(
            lambda: shutil.rmtree(deps.settings.shadows_dir / s.id, ignore_errors=True))
