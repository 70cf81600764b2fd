"""The reconciler's I/O shell: read the world, call :func:`plan`, apply the actions.

Theory of operation
-------------------
``serve`` runs passes forever. A pass lists every session (the store) and every workload of
this instance (the backend, by label), asks the pure :func:`~appliance.reconcile.plan.plan`
what to do, and starts each action as a task in the service's nursery, at most
``max_concurrent_ops`` at once. A session with an action in flight is *busy* and skipped by
later passes until its action ends, so slow work (a create) never blocks others (a delete).

Between passes it waits for a reason to look again: another process committed to the
database (``PRAGMA data_version`` moved: the API wrote a desired state), one of our own
actions finished, or ``resync_seconds`` went by (drift: a container removed behind our
back). Every step writes its outcome to the session row and the events journal, which is
all the API needs to show progress.

Failures are recorded on the session (``status_reason``), retried with exponential
back-off, and given up after ``max_attempts`` (phase ``failed``). A failed first create
leaves nothing behind: its container and workspace are removed; the branch stays.

Each pass also reads every workspace's session branch (a ref file, no git) and, when it moved,
brings the commit into the user's repository (:func:`appliance.workspaces.sync_branch`): a
commit shows in the user's repository on the first pass after it, which any hook event of
the agent triggers at once and ``resync_seconds`` bounds otherwise. A delete brings it in one
last time before the workspace goes; if that fails, the workspace is kept aside, never lost.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import trio

from appliance import repos, workspaces
from appliance.agents import runner
from appliance.agents.boot import boot_plan
from appliance.backends.base import Backend
from appliance.config import Settings
from appliance.contract import HostContext, RepoMounts, workload_for
from appliance.errors import (
    BackendError,
    BackendUnavailable,
    ClauderonError,
    Conflict,
    GitError,
    InvalidInput,
    NotFound,
)
from appliance.reconcile.plan import (
    Action,
    Create,
    Delete,
    Mark,
    PlanSettings,
    RemoveOrphan,
    RemoveWorkload,
    Start,
    Stop,
    SyncBranch,
    backoff_seconds,
    plan,
)
from appliance.sessions import Agent, AgentStatus, Desired, Phase, Session, utcnow
from appliance.store import AsyncStore
from appliance.tokens import Purpose, derive_token

log = logging.getLogger(__name__)

SYNC_PREFIX = "the session branch could not be brought into your repository: "
SYNC_RETRY_SECONDS = 30.0


def _still_desired(desired: Desired) -> Callable[[Session], None]:
    def expect(current: Session) -> None:
        if current.desired is not desired:
            raise Conflict(f"{current.name}: desired state changed to {current.desired}")

    return expect


class Reconciler:
    def __init__(
        self,
        *,
        settings: Settings,
        store: AsyncStore,
        backend: Backend,
        host: HostContext,
        instance_key: bytes,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.store = store
        self.backend = backend
        self.host = host
        self.key = instance_key
        self.clock = clock
        self.busy: set[str] = set()
        #: The action in flight per busy key, and the scope that cancels it.
        self._inflight: dict[str, tuple[Action, trio.CancelScope]] = {}
        self.passes = 0
        self._wake = trio.Event()
        self._idle = trio.Event()
        self._idle.set()
        self._limiter = trio.CapacityLimiter(settings.max_concurrent_ops)
        self._cfg = PlanSettings(
            max_attempts=settings.max_attempts, stable_seconds=settings.stable_seconds
        )
        self._last_backend_error: str | None = None
        #: Per session, the workspace commit last brought into the user's repository (or
        #: given up on), and when a failed one is tried again.
        self.synced: dict[str, str] = {}
        self._sync_retry_at: dict[str, float] = {}

    # --- the loop -------------------------------------------------------------------
    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                seen = await self.store.run(self.store.sync.data_version)
                await self.run_pass(nursery)
                await self._wait_for_change(seen)

    async def drain(self, grace: float) -> None:
        """Wait (bounded) for in-flight actions to finish: graceful shutdown."""
        with trio.move_on_after(grace):
            await self._idle.wait()

    async def _wait_for_change(self, seen: int) -> None:
        with trio.move_on_after(self.settings.resync_seconds):
            while not self._wake.is_set():
                with trio.move_on_after(self.settings.reconcile_poll_seconds):
                    await self._wake.wait()
                if await self.store.run(self.store.sync.data_version) != seen:
                    break
        self._wake = trio.Event()

    async def run_pass(self, nursery: trio.Nursery) -> list[Action]:
        self.passes += 1
        sessions = await self.store.run(self.store.sync.list_sessions)
        self._cancel_deleted_creates(sessions)
        try:
            observed = await self.backend.list_workloads()
        except BackendUnavailable as exc:
            await self._note_backend_down(sessions, exc)
            return []
        if self._last_backend_error is not None:
            log.info("the container engine is reachable again")
            self._last_backend_error = None
        tips = await trio.to_thread.run_sync(self._read_tips, sessions)
        now_t = trio.current_time()
        for sid, at in list(self._sync_retry_at.items()):
            if at <= now_t:
                self.synced.pop(sid, None)
                del self._sync_retry_at[sid]
        actions = plan(sessions, observed, now=self.clock(), busy=set(self.busy), cfg=self._cfg,
                       tips=tips, synced=self.synced)
        for action in actions:
            key = action.session.id if not isinstance(action, RemoveOrphan) else action.backend_id
            if key in self.busy:
                continue  # a second action for the same session waits for the next pass
            self.busy.add(key)
            self._idle = trio.Event()
            nursery.start_soon(self._run_action, key, action)
        return actions

    def _read_tips(self, sessions: list[Session]) -> dict[str, str | None]:
        return {s.id: workspaces.read_tip(Path(s.worktree_path), s.branch) for s in sessions
                if s.id not in self.busy
                and s.phase in (Phase.RUNNING, Phase.STOPPED, Phase.ARCHIVED)}

    async def _note_backend_down(self, sessions: list[Session], exc: BackendUnavailable) -> None:
        if self._last_backend_error != exc.message:
            log.warning("%s", exc.message)
        self._last_backend_error = exc.message
        for s in sessions:
            if s.phase in (Phase.CREATING, Phase.DELETING) and s.status_reason != exc.message:
                await self._update(s, status_reason=exc.message)

    def _cancel_deleted_creates(self, sessions: list[Session]) -> None:
        """A delete wins over a create that is queued or under way: cancel it (the create
        undoes what it made), and the next pass deletes what is left."""
        for s in sessions:
            inflight = self._inflight.get(s.id)
            if inflight is not None and s.desired is Desired.DELETED \
                    and isinstance(inflight[0], Create):
                log.info("cancelling the create of %s: it was deleted", s.name,
                         extra={"session": s.id})
                inflight[1].cancel()

    async def _run_action(self, key: str, action: Action) -> None:
        try:
            with trio.CancelScope() as scope:
                self._inflight[key] = (action, scope)
                async with self._limiter:
                    await self.apply(action)
        except (Conflict, NotFound) as exc:
            # The API changed the session while we worked; the next pass sees the new state.
            log.info("action %s superseded: %s", type(action).__name__, exc)
        except ClauderonError as exc:
            log.warning("action %s failed: %s", type(action).__name__, exc)
        finally:
            self._inflight.pop(key, None)
            self.busy.discard(key)
            if not self.busy:
                self._idle.set()
            self._wake.set()

    # --- actions --------------------------------------------------------------------
    async def apply(self, action: Action) -> None:
        match action:
            case RemoveOrphan(backend_id=bid, name=name):
                await self.backend.remove(bid)
                await self.store.run(self.store.sync.append_event, None, "orphan_removed",
                                     {"backend_id": bid, "name": name})
            case RemoveWorkload(backend_id=bid):
                await self.backend.remove(bid)
            case Delete():
                await self._delete(action)
            case Create():
                await self._create(action)
            case Start(session=s, backend_id=bid):
                try:
                    await self.backend.start(bid)
                    await self._boot_agent(s, bid)
                except ClauderonError as exc:
                    await self._fail(s, exc)
                    return
                await self._update(s, phase=Phase.RUNNING, backend_id=bid, status_reason=None)
            case SyncBranch(session=s, tip=tip):
                await self._sync(s, tip)
            case Stop(session=s, backend_id=bid, then=then):
                await self.backend.stop(bid)
                await self._mark(s, then, bid)
            case Mark(session=s, phase=phase, backend_id=bid, reset_attempts=reset,
                      reason=reason, desired=desired):
                extra: dict[str, Any] = {"attempts": 0, "retry_at": None} if reset else {}
                if desired is not None:
                    extra["desired"] = desired
                    # Only if nobody asked for something else meanwhile.
                    extra["expect"] = _still_desired(s.desired)
                await self._mark(s, phase, bid, reason=reason, **extra)

    async def _mark(self, s: Session, phase: Phase, bid: str | None, *,
                    reason: str | None = None, **extra: Any) -> None:
        changes: dict[str, Any] = {"phase": phase, "backend_id": bid, "status_reason": reason}
        if phase is Phase.ARCHIVED and s.archived_at is None:
            changes["archived_at"] = self.clock()
        await self._update(s, **changes, **extra)

    async def _update(self, s: Session, **changes: Any) -> Session:
        return await self.store.run(lambda: self.store.sync.update_session(s.id, **changes))

    async def _progress(self, s: Session, step: str, message: str) -> None:
        await self.store.run(self.store.sync.append_event, s.id, "progress",
                             {"id": s.id, "name": s.name, "step": step, "message": message})

    async def _create(self, a: Create) -> None:
        s = a.session
        created: str | None = None
        fresh_worktree = False
        settled = False
        try:
            if a.recreate:
                await self.store.run(self.store.sync.append_event, s.id, "drift", {
                    "id": s.id, "name": s.name, "attempt": s.attempts + 1,
                    "reason": "the container is missing; recreating it",
                })
            await self._progress(s, "worktree", f"creating the workspace on {s.branch}")
            repo = await trio.to_thread.run_sync(repos.repo_facts, s.repo_path)
            # Safe to remove on failure: a workspace made now, or one no container ever used.
            fresh_worktree = s.backend_id is None or not await trio.to_thread.run_sync(
                workspaces.is_workspace, Path(s.worktree_path))
            await trio.to_thread.run_sync(self._prepare_workspace, s, repo)
            (self.settings.uploads_dir / s.id).mkdir(parents=True, exist_ok=True)
            await self._progress(s, "container", f"creating container {s.container_name}")
            ca = self.settings.ca_cert_path
            home = self.settings.homes_dir / s.id
            await trio.to_thread.run_sync(runner.prepare_home, home, repo.owner_uid,
                                          repo.owner_gid)
            host = replace(self.host, ca_cert_path=str(ca) if ca.exists() else None,
                           homes_root=str(self.settings.homes_dir))
            borrowed = await trio.to_thread.run_sync(repos.borrowed_object_dirs,
                                                     repo.objects_dir)
            spec = workload_for(
                s,
                host=host,
                repo=RepoMounts(borrowed_objects=tuple(str(d) for d in borrowed),
                                owner_uid=repo.owner_uid, owner_gid=repo.owner_gid),
                proxy_token=derive_token(self.key, s.id, Purpose.PROXY),
                hook_token=derive_token(self.key, s.id, Purpose.HOOK),
            )
            created = await self.backend.create(spec)
            if a.start:
                await self._progress(s, "start", "starting the container")
                await self.backend.start(created)
                if not a.recreate and self.settings.start_agents and \
                        s.agent is Agent.CODEX and s.initial_prompt:
                    # Codex has no prompt or tool hooks (only a notify when a turn ends):
                    # it is working from the moment the daemon hands it the prompt. Said
                    # before the boot, so its end-of-turn notify always comes after.
                    s = await self._update(s, agent_status=AgentStatus.WORKING)
                await self._boot_agent(s, created)
            settled = True
        except ClauderonError as exc:
            settled = True
            await self._undo_create(a, created, remove_worktree=fresh_worktree)
            await self._fail(s, exc)
            return
        finally:
            if not settled:  # cancelled: the session was deleted while it was being made
                await self._undo_create(a, created, remove_worktree=fresh_worktree)
        now = self.clock()
        attempts = s.attempts + 1 if a.recreate else 0
        retry_at = now + timedelta(seconds=self._backoff(attempts)) if a.recreate else None
        await self._update(
            s, phase=Phase.RUNNING if a.start else Phase.STOPPED, backend_id=created,
            status_reason=None, attempts=attempts, retry_at=retry_at,
        )

    @staticmethod
    def _prepare_workspace(s: Session, repo: repos.RepoInfo) -> None:
        """The session branch in the user's repository (made at the base the first time:
        it pins what the workspace borrows), then the workspace on it."""
        start = repos.branch_tip(repo, s.branch)
        if start is None:
            start = repos.resolve_ref(repo, s.base_ref)
            repos.create_branch(repo, s.branch, start)
        base_branch = s.base_ref if repos.branch_exists(repo, s.base_ref) else None
        workspaces.create_workspace(repo, Path(s.worktree_path), s.branch, start,
                                    base_branch=base_branch)

    async def _sync(self, s: Session, tip: str) -> None:
        """Bring the workspace's branch into the user's repository; a failure is shown on
        the session and tried again later (or as soon as the agent commits again)."""
        try:
            repo = await trio.to_thread.run_sync(repos.repo_facts, s.repo_path)
            await trio.to_thread.run_sync(
                workspaces.sync_branch, repo, Path(s.worktree_path), s.branch, tip,
                self.settings.shadows_dir / s.id)
        except ClauderonError as exc:
            self.synced[s.id] = tip
            self._sync_retry_at[s.id] = trio.current_time() + SYNC_RETRY_SECONDS
            log.warning("bringing %s into %s failed: %s", s.branch, s.repo_path, exc.message,
                        extra={"session": s.id})
            reason = f"{SYNC_PREFIX}{exc.message}"
            if s.status_reason != reason:
                await self._update(s, status_reason=reason)
                await self.store.run(self.store.sync.append_event, s.id, "branch_sync_failed",
                                     {"id": s.id, "name": s.name, "branch": s.branch,
                                      "commit": tip, "reason": exc.message})
            return
        self.synced[s.id] = tip
        self._sync_retry_at.pop(s.id, None)
        await self.store.run(self.store.sync.append_event, s.id, "branch_synced",
                             {"id": s.id, "name": s.name, "branch": s.branch, "commit": tip})
        if s.status_reason and s.status_reason.startswith(SYNC_PREFIX):
            await self._update(s, status_reason=None)

    async def _boot_agent(self, s: Session, backend_id: str) -> None:
        """Hooks, settings and the agent itself, inside the started container."""
        if not self.settings.start_agents:
            return
        await self._progress(s, "agent", f"starting {s.agent}")
        await runner.boot(self.backend, backend_id, boot_plan(s), image=s.image)

    async def _undo_create(self, a: Create, created: str | None, *,
                           remove_worktree: bool) -> None:
        """Leave nothing behind a failed create; never remove a worktree we did not just make
        (a recreated or retried session's worktree holds its work)."""
        s = a.session
        with trio.CancelScope(shield=True), trio.move_on_after(30):
            if created is not None:
                try:
                    await self.backend.remove(created)
                except ClauderonError as exc:
                    log.warning("could not remove container of failed create: %s", exc)
            if remove_worktree and not a.recreate:
                await trio.to_thread.run_sync(workspaces.remove_workspace,
                                              Path(s.worktree_path))
                await trio.to_thread.run_sync(runner.remove_home, self.settings.homes_dir / s.id)

    def _backoff(self, attempts: int) -> float:
        return backoff_seconds(attempts, self.settings.backoff_seconds,
                               self.settings.backoff_max_seconds)

    async def _fail(self, s: Session, exc: ClauderonError) -> None:
        attempts = s.attempts + 1
        permanent = isinstance(exc, (InvalidInput, GitError)) or (
            isinstance(exc, BackendError) and not exc.retryable
        )
        if permanent or attempts >= self.settings.max_attempts:
            reason = exc.message if permanent else (
                f"gave up after {attempts} attempts: {exc.message}"
            )
            await self._update(s, phase=Phase.FAILED, status_reason=reason, attempts=attempts,
                               retry_at=None)
            return
        delay = self._backoff(attempts)
        await self._update(
            s, attempts=attempts, retry_at=self.clock() + timedelta(seconds=delay),
            status_reason=(f"attempt {attempts}/{self.settings.max_attempts} failed: "
                           f"{exc.message}; retrying in {delay:.0f}s"),
        )

    async def _delete(self, a: Delete) -> None:
        s = a.session
        if s.phase is not Phase.DELETING:
            s = await self._update(s, phase=Phase.DELETING)
        await self._progress(s, "container", "removing the container")
        for bid in a.backend_ids:
            await self.backend.remove(bid)
        await self._progress(s, "worktree", f"removing the workspace (branch {s.branch} is kept)")
        await self._last_sync(s)
        await trio.to_thread.run_sync(workspaces.remove_workspace, Path(s.worktree_path))
        await trio.to_thread.run_sync(
            lambda: shutil.rmtree(self.settings.uploads_dir / s.id, ignore_errors=True)
        )
        await trio.to_thread.run_sync(runner.remove_home, self.settings.homes_dir / s.id)
        await self.store.run(self.store.sync.delete_session, s.id)
        self.synced.pop(s.id, None)
        self._sync_retry_at.pop(s.id, None)

    async def _last_sync(self, s: Session) -> None:
        """Before a workspace goes: its branch into the user's repository, or, when that
        cannot be done, the workspace kept aside under ``kept/`` (work is never lost)."""
        path = Path(s.worktree_path)
        if not await trio.to_thread.run_sync(workspaces.is_workspace, path):
            return
        tip = await trio.to_thread.run_sync(workspaces.read_tip, path, s.branch)
        if tip is None:
            return
        try:
            repo = await trio.to_thread.run_sync(repos.repo_facts, s.repo_path)
            await trio.to_thread.run_sync(workspaces.sync_branch, repo, path, s.branch, tip,
                                          self.settings.shadows_dir / s.id)
        except ClauderonError as exc:
            kept = self.settings.kept_dir / f"{s.name}-{s.id[:8]}"
            await trio.to_thread.run_sync(lambda: kept.parent.mkdir(mode=0o700, exist_ok=True))
            await trio.to_thread.run_sync(path.rename, kept)
            log.warning("kept the workspace of %s at %s: %s", s.name, kept, exc.message,
                        extra={"session": s.id})
            await self.store.run(self.store.sync.append_event, s.id, "workspace_kept", {
                "id": s.id, "name": s.name, "path": str(kept), "reason": exc.message})
        finally:
            await trio.to_thread.run_sync(
                lambda: shutil.rmtree(self.settings.shadows_dir / s.id, ignore_errors=True))
