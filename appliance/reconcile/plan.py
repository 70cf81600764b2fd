"""The reconcile plan: desired sessions + observed workloads -> actions (pure).

Theory of operation
-------------------
The reconciler is level-triggered (kopf's habit): every pass reads *all* sessions from the
database and *all* workloads of this instance from the backend (by label), and this
function decides what to do, knowing nothing of what happened before. Running the same
pass twice yields the same actions, so a reconciler killed at any point and restarted
converges without losing or duplicating work.

Rules, per session (``desired`` x what is observed):

* ``deleted``                     -> Delete (workloads, worktree, uploads, row).
* no workload, wants compute      -> Create (first time) or Recreate (it vanished behind our
  back: recorded, rate-limited by back-off, and given up after ``max_attempts``).
* stopped workload, wants running -> Start; but a *running* session whose workload stopped
  on its own (the agent exited) is marked stopped, not restarted in a loop.
* running workload, wants stopped or archived -> Stop.
* ``completed`` (a print-mode agent answered and exited) -> Stop, then Mark completed; with
  no workload, Mark completed. Nothing is ever created for it: a completed session keeps
  no compute, and a vanished container is not "recreated".
* phase lagging what is observed  -> Mark (write the observed phase back).
* failed sessions keep no compute -> their leftover workloads are removed.
* workloads no session owns       -> RemoveOrphan.
* a Docker container not named as the session's id says (one made before that rule, named
  after the session: the engine's DNS tells its neighbours that name) -> Rename, once the
  session has nothing else to do; nothing else about it changes.
* a workspace folder is gone, the primary's or a further repository's (``missing``) ->
  RemoveWorkload; the next pass recreates the container and the workspaces, from the
  session branch.
* the workspace's session branch moved (``tips``) past what was last brought into the
  user's repository (``synced``)   -> SyncBranch, once the session has nothing else to do.
* a running workload confined from outside by less than this version's (``loose``: a pod's
  NetworkPolicy an older version wrote) -> Tighten, at once, whatever else it waits for;
* a running workload without this version's containment (``uncontained``: a pod or a Docker
  container an older version made) -> Remake (a pod on its volume, a container on its
  worktree and home), with back-off, and the session failed (its workload removed) once
  ``max_attempts`` remakes never came back contained (the engine or cluster changes it);
* a person asked for a recreate (``rebuild``) -> Recreate: its workloads go (and, fresh,
  its workspace and agent home, the branch brought in first), then the normal create.

Sessions with an action in flight, or waiting out a back-off, are left alone this pass.
Deletes and removals come before stops, and stops before creates, so freed resources are
freed first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from appliance.backends.base import Observed, RunState
from appliance.sessions import Desired, Phase, Session


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveOrphan:
    backend_id: str
    name: str
    kind: str = "docker"


@dataclass(frozen=True, slots=True, kw_only=True)
class Delete:
    session: Session
    backend_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveWorkload:
    """Remove a workload but keep the session (a failed session's leftovers, duplicates, a
    container whose workspace vanished: it is recreated with the workspace next pass)."""

    session: Session
    backend_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    session: Session
    backend_id: str
    then: Phase


@dataclass(frozen=True, slots=True, kw_only=True)
class Create:
    session: Session
    start: bool
    recreate: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    session: Session
    backend_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Mark:
    session: Session
    phase: Phase
    backend_id: str | None
    reset_attempts: bool = False
    reason: str | None = None
    #: Also record a new desired state: the world changed it (the agent exited).
    desired: Desired | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncBranch:
    """Bring the workspace's branch (at ``tip``) into the user's repository."""

    session: Session
    tip: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Recreate:
    """A person's recreate (``session.rebuild`` says which): remove the workloads, then
    create the session again the normal way."""

    session: Session
    backend_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rename:
    """Give the session's container the engine name it is made with now
    (:attr:`~appliance.sessions.Session.workload_name`)."""

    session: Session
    backend_id: str
    old: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Tighten:
    """Replace what confines the running workload from outside by this version's."""

    session: Session
    backend_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Remake:
    """Make the running workload again, as this version makes it (its work is kept)."""

    session: Session
    backend_id: str
    reason: str


Action = (RemoveOrphan | Delete | RemoveWorkload | Stop | Create | Start | Mark | SyncBranch
          | Recreate | Rename | Tighten | Remake)

_ORDER: dict[type, int] = {
    RemoveOrphan: 0, Delete: 0, RemoveWorkload: 0, Tighten: 0, Stop: 1, Create: 2, Start: 2,
    Recreate: 2, Remake: 2,
    Mark: 3, SyncBranch: 4, Rename: 4,
}
#: Phases in which a session has a workspace: the reconciler reads it (its branch tip,
#: whether its folders stand) when nothing is in flight for it, brings its branch in and
#: remakes a workload whose folder is gone; ``GET /api/reconcile`` reads the same. One set,
#: so a phase whose folders are read is also one whose missing folder is acted on.
SETTLED_PHASES = frozenset({Phase.RUNNING, Phase.STOPPED, Phase.ARCHIVED, Phase.COMPLETED})


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSettings:
    max_attempts: int
    stable_seconds: float


def _plan_one(
    s: Session, workloads: list[Observed], now: datetime, cfg: PlanSettings
) -> list[Action]:
    ids = tuple(w.backend_id for w in workloads)
    if s.desired is Desired.DELETED:
        return [Delete(session=s, backend_ids=ids)]
    if s.phase is Phase.DELETING:
        return []
    if s.rebuild is not None and s.phase is not Phase.CREATING:
        return [Recreate(session=s, backend_ids=ids)]
    # More than one workload for a session: keep the running (or first) one.
    keep = next((w for w in workloads if w.state is RunState.RUNNING),
                workloads[0] if workloads else None)
    actions: list[Action] = [
        RemoveWorkload(session=s, backend_id=w.backend_id) for w in workloads if w is not keep
    ]
    if s.phase is Phase.FAILED:
        if keep is not None:
            actions.append(RemoveWorkload(session=s, backend_id=keep.backend_id))
        return actions
    if keep is not None and keep.state is RunState.DEAD:
        return actions
    if keep is not None and keep.state is RunState.RUNNING and keep.loose:
        return [*actions, Tighten(session=s, backend_id=keep.backend_id, reason=keep.loose)]
    if s.retry_at is not None and s.retry_at > now:
        return actions
    if keep is not None and keep.state is RunState.RUNNING and keep.uncontained \
            and s.desired is Desired.RUNNING and s.phase is Phase.RUNNING:
        return actions + _remade(s, keep, cfg)

    # A completed session never runs again as itself: only archive or delete move it on.
    if s.desired is Desired.COMPLETED or (s.phase is Phase.COMPLETED
                                          and s.desired is not Desired.ARCHIVED):
        return actions + _complete(s, keep)
    if keep is None:
        return actions + _without_workload(s, cfg)
    return actions + (_toward_desired(s, keep, now, cfg) or _renamed(s, keep))


def _remade(s: Session, keep: Observed, cfg: PlanSettings) -> list[Action]:
    """A workload without this version's containment: made again, until the attempts run
    out (each remake counts one: an engine or cluster that changes it back is not remade in
    a loop, and the session fails, its workload removed, rather than run as it is)."""
    if s.attempts >= cfg.max_attempts:
        return [Mark(session=s, phase=Phase.FAILED, backend_id=keep.backend_id, reason=(
            f"gave up after {s.attempts} attempts: the workload keeps running without this "
            f"version's containment ({keep.uncontained}); something changes it (a "
            "cluster's admission webhook, an engine's plugin or default?); fix that, then "
            "retry the session"))]
    return [Remake(session=s, backend_id=keep.backend_id, reason=keep.uncontained)]


def _renamed(s: Session, keep: Observed) -> list[Action]:
    """A Docker container named otherwise than the session's id says: renamed (the engine's
    DNS then answers the new name alone)."""
    if keep.kind != "docker" or keep.name == s.workload_name:
        return []
    return [Rename(session=s, backend_id=keep.backend_id, old=keep.name,
                   name=s.workload_name)]


def _complete(s: Session, keep: Observed | None) -> list[Action]:
    """A completed session: its container stopped, its phase recorded."""
    if keep is not None and keep.state is RunState.RUNNING:
        return [Stop(session=s, backend_id=keep.backend_id, then=Phase.COMPLETED)]
    if s.phase is not Phase.COMPLETED:
        return [Mark(session=s, phase=Phase.COMPLETED,
                     backend_id=keep.backend_id if keep else None)]
    return []


def _without_workload(s: Session, cfg: PlanSettings) -> list[Action]:
    """No container: an archived session is marked so, any other (re)created until the
    attempts run out."""
    if s.desired is Desired.ARCHIVED:
        return [] if s.phase is Phase.ARCHIVED else [
            Mark(session=s, phase=Phase.ARCHIVED, backend_id=None)]
    recreate = s.phase is not Phase.CREATING
    if recreate and s.attempts >= cfg.max_attempts:
        return [Mark(session=s, phase=Phase.FAILED, backend_id=None, reason=(
            f"gave up after {s.attempts} attempts: the container keeps disappearing; "
            "retry or delete the session"))]
    return [Create(session=s, start=s.desired is Desired.RUNNING, recreate=recreate)]


#: The phase a stopped or archived session's container is brought to.
_PARKED = {Desired.STOPPED: Phase.STOPPED, Desired.ARCHIVED: Phase.ARCHIVED}


def _toward_desired(s: Session, keep: Observed, now: datetime,
                    cfg: PlanSettings) -> list[Action]:
    """A container: started, stopped or recorded as the session's desired state asks."""
    bid = keep.backend_id
    running = keep.state is RunState.RUNNING
    if s.desired is Desired.RUNNING:
        if not running:
            # Not the container the session ran in: one made for it that never started (a
            # remake or recreate cut short after the create), started now.
            if s.phase is not Phase.RUNNING or s.backend_id != bid:
                return [Start(session=s, backend_id=bid)]
            # It stopped on its own: the agent exited. Record it; `start` brings it back.
            return [Mark(session=s, phase=Phase.STOPPED, backend_id=bid,
                         desired=Desired.STOPPED,
                         reason=f"the container stopped ({keep.detail or 'exited'})")]
        stable = (
            s.attempts > 0 and s.retry_at is not None
            and now - s.retry_at > timedelta(seconds=cfg.stable_seconds)
        )
        if s.phase is not Phase.RUNNING or s.backend_id != bid or stable:
            return [Mark(session=s, phase=Phase.RUNNING, backend_id=bid,
                         reset_attempts=stable or s.phase is Phase.CREATING)]
        return []
    parked = _PARKED.get(s.desired)
    if parked is None:
        return []
    if running:
        return [Stop(session=s, backend_id=bid, then=parked)]
    return [] if s.phase is parked else [Mark(session=s, phase=parked, backend_id=bid)]

def plan(sessions: Sequence[Session], observed: Sequence[Observed], *, now: datetime,
         busy: Collection[str] = (), cfg: PlanSettings,
         tips: Mapping[str, str | None] | None = None, synced: Mapping[str, str] | None = None,
         missing: Collection[str] = ()) -> list[Action]:
    """Everything to do this pass, deletes first. ``busy``: session ids with work in flight;
    ``tips``: each workspace's branch commit as read now; ``synced``: the commit last brought
    into the user's repository (or given up on) per session; ``missing``: sessions whose
    workspace folder is gone."""
    by_session: dict[str, list[Observed]] = defaultdict(list)
    for w in observed:
        by_session[w.session_id].append(w)
    known = {s.id for s in sessions}
    actions: list[Action] = [
        RemoveOrphan(backend_id=w.backend_id, name=w.name, kind=w.kind)
        for sid, ws in by_session.items() if sid not in known and sid not in busy
        for w in ws
    ]
    tips = tips or {}
    synced = synced or {}
    for s in sessions:
        if s.id in busy:
            continue
        workloads = by_session.get(s.id, [])
        if s.id in missing and workloads and s.desired is not Desired.DELETED \
                and s.phase in SETTLED_PHASES:
            actions.extend(RemoveWorkload(
                session=s, backend_id=w.backend_id,
                reason="a workspace folder of it is gone; the container is recreated with it")
                for w in workloads)
            continue
        mine = _plan_one(s, workloads, now, cfg)
        tip = tips.get(s.id)
        if not mine and tip and s.phase in SETTLED_PHASES and s.desired is not Desired.DELETED \
                and synced.get(s.id) != tip:
            mine = [SyncBranch(session=s, tip=tip)]
        actions.extend(mine)
    return sorted(actions, key=lambda a: _ORDER[type(a)])
