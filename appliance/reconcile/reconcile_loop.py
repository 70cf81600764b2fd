"""The reconciler's I/O shell: read the world, call :func:`plan`, apply the actions.

Theory of operation
-------------------
``serve`` runs passes forever. A pass lists every session (the store) and every workload of
this instance (each configured backend, by label), reads each workspace's branch tip (a ref
file, no git), asks the pure :func:`~appliance.reconcile.plan.plan` what to do, and starts
each action as a task in the service's nursery, at most ``max_concurrent_ops`` at once, and
as many syncs besides in a lane of their own (:func:`lane`). A session with an action in
flight is *busy* and skipped by later passes until its action ends, so slow work (a create)
never blocks others (a delete). A backend that cannot be
reached leaves its sessions alone for the pass (their status says why).

Between passes it waits for a reason to look again: another process committed to the
database (``PRAGMA data_version`` moved: the API wrote a desired state, a hook arrived), one
of our own actions finished, or ``resync_seconds`` went by (drift: a container removed
behind our back). Every step writes its outcome to the session row and the events journal,
which is all the API needs to show progress.

The actions live beside this module: :mod:`create` (workspace, workload, agent, or nothing),
:mod:`sync` (the session branch into the user's repository: on the first pass after a commit,
which any hook event of the agent triggers at once), and the small ones here. What a failure
means is :mod:`policy`'s to say; a step retried every pass (delete, stop, orphan removal) that
keeps failing is written on the session and in its events.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import trio

from appliance import safefs, trees, workspaces
from appliance.backends.base import Backend, Observed
from appliance.config import Settings
from appliance.contract import HostContext
from appliance.errors import BackendUnavailable, ClauderonError, Conflict, NotFound
from appliance.reconcile import contain, creating, pods, pullwatch, rebuild, sync
from appliance.reconcile.deps import Deps
from appliance.reconcile.plan import (
    SETTLED_PHASES,
    Action,
    Create,
    Delete,
    Mark,
    PlanSettings,
    Recreate,
    Remake,
    RemoveOrphan,
    RemoveWorkload,
    Rename,
    Start,
    Stop,
    SyncBranch,
    Tighten,
    plan,
)
from appliance.reconcile.reconcile_metrics import ReconcilerMetrics
from appliance.reconcile.told import Told
from appliance.sessions import Desired, Phase, Session, utcnow
from appliance.store import AsyncStore

log = logging.getLogger(__name__)
#: How often the events journal is pruned (``keep_events_days``).
PRUNE_EVERY = 3600.0


def _mark_fields(s: Session, *, reset: bool, desired: Desired | None) -> dict[str, Any]:
    """What a Mark of ``s`` writes beside its phase: its attempts reset (``reset``), and the
    state ``desired``, only if nobody asked for something else meanwhile."""
    extra: dict[str, Any] = {"attempts": 0, "retry_at": None} if reset else {}
    if desired is not None:

        def expect(current: Session) -> None:
            if current.desired is not s.desired:
                raise Conflict(f"{current.name}: desired state changed to {current.desired}")

        extra |= {"desired": desired, "expect": expect}
    return extra


def lane(action: Action) -> str:
    """Which of the reconciler's limiters ``action`` waits in. A sync reads what the agent
    wrote, and the agent can make that read wait for host git's whole timeout (a FIFO where
    an object should be), again each time it commits: in the lane every other action
    shares, it held a place another session's create, start or delete queued behind."""
    return "sync" if isinstance(action, SyncBranch) else "ops"


def superseded(action: Action, current: Session, *, waiting: bool) -> str | None:
    """Why ``action``, in flight for ``current`` (the session as the store has it now),
    is to be cancelled, or None. A delete wins over a create, or a remake, that is queued
    or under way (it undoes what it made). A sync still waiting for its lane gives way to any
    change of what is wanted of the session: its session is busy while it waits, and the
    syncs ahead of it can be other agents' held for minutes (a delete brings the branch
    in itself; a later pass syncs again)."""
    if isinstance(action, Create | Recreate | Remake) and current.desired is Desired.DELETED:
        return "it was deleted"
    if isinstance(action, SyncBranch) and waiting \
            and current.desired is not action.session.desired:
        return f"it is wanted {current.desired} now"
    return None


def _read_workspaces(sessions: list[Session]) -> tuple[dict[str, str | None], set[str]]:
    """Each host workspace's branch tip, and the sessions a workspace folder of which is
    gone (:func:`appliance.trees.workspace_gone`)."""
    tips: dict[str, str | None] = {}
    missing: set[str] = set()
    for s in sessions:
        if trees.workspace_gone(s):
            missing.add(s.id)
            continue
        tips[s.id] = sync.combined_tip(workspaces.read_tip(Path(s.worktree_path), s.branch), s)
    return tips, missing


class Reconciler:
    def __init__(
        self,
        *,
        settings: Settings,
        store: AsyncStore,
        backends: Mapping[str, Backend],
        host: HostContext,
        instance_key: bytes,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.metrics = ReconcilerMetrics()
        self.deps = Deps(settings=settings, store=store, backends=backends, host=host,
                         key=instance_key, clock=clock, on_failure=self._failed)
        self.settings = settings
        self.store = store
        self.busy: set[str] = set()
        #: The action in flight per busy key, and the scope that cancels it.
        self._inflight: dict[str, tuple[Action, trio.CancelScope]] = {}
        #: The busy keys whose action still waits for its lane (:func:`lane`).
        self._waiting: set[str] = set()
        self.passes = 0
        #: Orphans whose failing removal was told, and why (told again when that changes).
        self._orphans_told = Told()
        #: Deletes whose first step was said (a removal the engine refuses is tried again).
        self._deleting = Told()
        self._wake = trio.Event()
        self._idle = trio.Event()
        self._idle.set()
        self._limiters = {name: trio.CapacityLimiter(settings.max_concurrent_ops)
                          for name in ("ops", "sync")}
        self._cfg = PlanSettings(max_attempts=settings.max_attempts,
                                 stable_seconds=settings.stable_seconds)
        self._down: dict[str, str] = {}  # backend kind -> why it cannot be reached
        self.branches = sync.BranchSync()
        self.remote_tips = pods.RemoteTips()

    # --- the loop -------------------------------------------------------------------
    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.metrics.publisher.run, self.store.sync)
            await nursery.start(pullwatch.watch, self.deps)
            nursery.start_soon(self._prune_events)
            task_status.started()
            while True:
                seen = await self.store.run(self.store.sync.data_version)
                with self.metrics.pass_seconds.time():
                    await self.run_pass(nursery)
                await self._wait_for_change(seen)

    async def _prune_events(self) -> None:
        """The journal's events older than ``keep_events_days`` (never with 0), and each
        session's hook events past its ``keep_hook_events`` newest (the API trims as it
        writes them; this covers a bound lowered since), removed at start and then every
        :data:`PRUNE_EVERY` seconds."""
        days, hooks = self.settings.keep_events_days, self.settings.keep_hook_events
        while days > 0 or hooks > 0:
            try:
                if days > 0:
                    before = self.deps.clock() - timedelta(days=days)
                    if gone := await self.store.run(self.store.sync.prune_events, before):
                        log.info("removed %d events older than %g days from the journal",
                                 gone, days)
                if gone := await self.store.run(self.store.sync.trim_hooks, None, hooks):
                    log.info("removed %d hook events past the newest %d of their sessions",
                             gone, hooks)
            except (ClauderonError, sqlite3.Error) as exc:  # the next round tries again
                log.warning("could not prune the events journal: %s", exc)
            await trio.sleep(PRUNE_EVERY)

    def _failed(self, final: bool) -> None:
        self.metrics.attempt_failures.inc()
        if final:
            self.metrics.failures.inc()

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
        self.metrics.passes.inc()
        sessions = await self.store.run(self.store.sync.list_sessions)
        self._cancel_superseded(sessions)
        observed = await self._observe(sessions)
        reachable = [s for s in sessions if str(s.backend) not in self._down]
        # Whose branch is looked at: sessions with a workspace and nothing in flight.
        settled = [s for s in reachable if s.id not in self.busy and s.phase in SETTLED_PHASES]
        remote = [s for s in settled if pods.on_kubernetes(s)]
        tips, missing = await trio.to_thread.run_sync(
            _read_workspaces, [s for s in settled if not pods.on_kubernetes(s)])
        if remote:
            now = trio.current_time()
            tips |= await trio.to_thread.run_sync(
                lambda: self.remote_tips.read(self.deps, remote, now))
        synced = self.branches.due(trio.current_time(), tips)
        actions = plan(reachable, observed, now=self.deps.clock(), busy=set(self.busy),
                       cfg=self._cfg, tips=tips, synced=synced, missing=missing)
        for action in actions:
            key = action.session.id if not isinstance(action, RemoveOrphan) else action.backend_id
            if key in self.busy:
                continue  # a second action for the same session waits for the next pass
            self.busy.add(key)
            self._idle = trio.Event()
            nursery.start_soon(self._run_action, key, action)
        return actions

    async def _observe(self, sessions: list[Session]) -> list[Observed]:
        """Every workload of every reachable backend; a backend that cannot be reached is
        noted (its sessions' status says why) and its sessions sit this pass out."""
        observed: list[Observed] = []
        for kind, backend in self.deps.backends.items():
            try:
                observed += await backend.list_workloads()
            except BackendUnavailable as exc:
                if self._down.get(kind) != exc.message:
                    log.warning("%s", exc.message)
                self._down[kind] = exc.message
                for s in sessions:
                    if str(s.backend) == kind and s.phase in (Phase.CREATING, Phase.DELETING) \
                            and s.status_reason != exc.message:
                        await self.deps.update(s, status_reason=exc.message)
                continue
            if self._down.pop(kind, None) is not None:
                log.info("the %s backend is reachable again", kind)
        return observed

    def _cancel_superseded(self, sessions: list[Session]) -> None:
        """Cancel what is in flight for a session that no longer wants it
        (:func:`superseded`); the next pass does what it wants now."""
        for s in sessions:
            inflight = self._inflight.get(s.id)
            if inflight is None:
                continue
            action, scope = inflight
            why = superseded(action, s, waiting=s.id in self._waiting)
            if why is not None and not scope.cancel_called:
                log.info("cancelling the %s of %s: %s", type(action).__name__, s.name, why,
                         extra={"session": s.id})
                scope.cancel()

    async def _run_action(self, key: str, action: Action) -> None:
        outcome = "interrupted"  # unless one below says otherwise (a shutdown cancels it)
        try:
            with trio.CancelScope() as scope:
                self._inflight[key] = (action, scope)
                self._waiting.add(key)
                async with self._limiters[lane(action)]:
                    self._waiting.discard(key)
                    await self.apply(action)
            outcome = "ok" if not scope.cancelled_caught else "cancelled"
        except (Conflict, NotFound) as exc:
            # The API changed the session while we worked; the next pass sees the new state.
            outcome = "superseded"
            log.info("action %s superseded: %s", type(action).__name__, exc,
                     extra={"session": key})
        except ClauderonError as exc:
            outcome = "error"
            await self._note_failure(action, exc)
        finally:
            self.metrics.actions.labels(action=type(action).__name__, outcome=outcome).inc()
            self._inflight.pop(key, None)
            self._waiting.discard(key)
            self.busy.discard(key)
            if not self.busy:
                self._idle.set()
            # An action that failed is tried again at the next pass a change or the resync
            # brings: woken at once, one the engine keeps refusing ran in a loop.
            if outcome != "error":
                self._wake.set()

    async def _note_failure(self, action: Action, exc: ClauderonError) -> None:
        """Steps retried every pass say why they keep failing where a person looks."""
        what = {Delete: "deleting", Stop: "stopping", RemoveWorkload: "removing a container",
                Mark: "recording the state", SyncBranch: "bringing the branch in",
                Recreate: "recreating", Tighten: "replacing its network policy"}.get(
                    type(action), type(action).__name__)
        if isinstance(action, RemoveOrphan):
            if not self._orphans_told.due(action.backend_id, exc.message):
                log.debug("removing the orphan container %s still fails", action.name)
                return
            log.warning("removing the orphan container %s failed: %s", action.name, exc)
            await self.deps.event(None, "orphan_removal_failed", {
                "backend_id": action.backend_id, "name": action.name, "reason": exc.message})
            return
        with contextlib.suppress(Conflict, NotFound):  # it changed or went: nothing to say
            await self.deps.note(action.session, what, exc)

    # --- actions --------------------------------------------------------------------
    async def apply(self, action: Action) -> None:
        deps = self.deps
        match action:
            case RemoveOrphan(backend_id=bid, name=name, kind=kind):
                await deps.backend(kind).remove(bid)
                await deps.backend(kind).forget(bid)
                self._orphans_told.forget(bid)
                await deps.event(None, "orphan_removed", {"backend_id": bid, "name": name})
            case RemoveWorkload(session=s, backend_id=bid, reason=reason):
                if reason:
                    await deps.event(s, "drift", {"attempt": s.attempts, "reason": reason})
                await deps.backend_for(s).remove(bid)
            case Delete():
                await self._delete(action)
            case Create():
                await creating.create(deps, action)
            case Recreate():
                await rebuild.recreate(deps, action)
                self.branches.forget(action.session.id)
            case Start(session=s, backend_id=bid):
                await creating.start(deps, s, bid)
            case Tighten():
                await contain.tighten(deps, action)
            case Remake():
                await contain.remake(deps, action)
            case SyncBranch(session=s, tip=tip):
                await self.branches.run(deps, s, tip)
            case Rename(session=s, backend_id=bid, old=old, name=name):
                await deps.backend_for(s).rename(bid, name)
                await deps.event(s, "renamed", {"from": old, "to": name})
            case Stop(session=s, backend_id=bid, then=then):
                await deps.backend_for(s).stop(bid)
                await deps.mark(s, then, bid)
            case Mark(session=s, phase=phase, backend_id=bid, reset_attempts=reset,
                      reason=reason, desired=desired):
                if phase is Phase.FAILED:
                    self.metrics.failures.inc()
                await deps.mark(s, phase, bid, reason=reason,
                                **_mark_fields(s, reset=reset, desired=desired))

    async def _delete(self, a: Delete) -> None:
        deps, s = self.deps, a.session
        if s.phase is not Phase.DELETING:
            s = await deps.update(s, phase=Phase.DELETING)
        if self._deleting.due(s.id, "container"):  # said once, not at each pass that fails
            await deps.progress(s, "container", "removing the container")
        for bid in a.backend_ids:
            await deps.backend_for(s).remove(bid)
        # The branch comes in once, before what holds it goes: the volume of a pod, the
        # workspace of a container.
        if pods.on_kubernetes(s):
            await deps.progress(s, "volume", f"removing the volume {s.container_name} (branch "
                                f"{s.branch} is kept on the remote and in your repository)")
            await sync.last_sync(deps, s)
            await deps.backend_for(s).forget(s.container_name)
            await deps.progress(s, "worktree", "removing the workspace")
        else:
            await deps.progress(s, "worktree",
                                f"removing the workspace (branch {s.branch} is kept)")
            await sync.last_sync(deps, s)
        settings = deps.settings
        holders = {Path(e.worktree_path).parent for e in s.extra_repos}
        for folder in (Path(s.worktree_path), *holders, settings.uploads_dir / s.id,
                       settings.homes_dir / s.id):
            await trio.to_thread.run_sync(safefs.remove_tree, folder)
        await self.store.run(self.store.sync.delete_session, s.id)
        self._deleting.forget(s.id)
        self.branches.forget(s.id)
        self.remote_tips.forget(s.id)
