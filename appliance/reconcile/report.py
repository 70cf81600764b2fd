"""What is out of sync, in words (pure): the reconcile plan, read as a report.

``clauderon reconcile``, the TUI's reconcile view and ``GET /api/reconcile`` show what the
reconciler would do now and why — computed by the same :func:`~appliance.reconcile.plan.plan`
the reconciler runs, so the report and the reconciler cannot disagree — plus the sessions
that failed (state, not drift: they wait for a person).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, assert_never

from appliance.backends.base import Observed
from appliance.reconcile import plan as actions
from appliance.sessions import Phase, Session


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    session: str | None
    problem: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"session": self.session, "problem": self.problem, "detail": self.detail}


def describe(action: actions.Action) -> Problem | None:
    """The action in words; None for work that is not drift (a create, delete or a person's
    recreate under way)."""
    match action:
        case actions.RemoveOrphan(name=name):
            return Problem(session=None, problem="orphan_container",
                           detail=f"{name} belongs to no session; it is removed")
        case actions.Create(session=s, recreate=True):
            return Problem(session=s.name, problem="container_missing",
                           detail=f"{s.workload_name} is gone; the reconciler recreates it")
        case actions.Create() | actions.Delete() | actions.Recreate():
            return None
        case actions.RemoveWorkload(session=s, reason=reason) if reason:
            return Problem(session=s.name, problem="worktree_missing", detail=reason)
        case actions.RemoveWorkload(session=s, backend_id=bid):
            return Problem(session=s.name, problem="extra_container",
                           detail=f"container {bid[:12]} is not the session's; it is removed")
        case actions.Start(session=s):
            return Problem(session=s.name, problem="container_stopped",
                           detail=f"{s.workload_name} is stopped; it is started")
        case actions.Stop(session=s, then=then):
            return Problem(session=s.name, problem="container_running",
                           detail=f"{s.workload_name} runs but the session is {then}")
        case actions.Mark(session=s, phase=phase, reason=reason):
            return Problem(session=s.name, problem="phase_behind",
                           detail=reason or f"recorded as {s.phase}, observed {phase}")
        case actions.Rename(session=s, old=old, name=name):
            return Problem(session=s.name, problem="container_named_by_name",
                           detail=f"{old} is named after the session; it is renamed {name}")
        case actions.Tighten(session=s, reason=reason):
            return Problem(session=s.name, problem="policy_outdated", detail=reason)
        case actions.Remake(session=s, reason=reason):
            return Problem(session=s.name, problem="workload_outdated", detail=reason)
        case actions.SyncBranch(session=s, tip=tip):
            return Problem(session=s.name, problem="branch_behind",
                           detail=f"{s.branch} moved to {tip[:12]}; it is brought in")
    assert_never(action)


def report(sessions: Sequence[Session], observed: Sequence[Observed], *, now: datetime,
           cfg: actions.PlanSettings, missing: Collection[str] = ()) -> list[Problem]:
    """Failed sessions, then every action the reconciler would take now, in words."""
    failed = [Problem(session=s.name, problem="failed", detail=s.status_reason or "")
              for s in sessions if s.phase is Phase.FAILED]
    drift = (describe(a) for a in actions.plan(sessions, observed, now=now, cfg=cfg,
                                               missing=missing))
    return failed + [p for p in drift if p is not None]
