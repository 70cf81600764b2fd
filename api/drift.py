"""``GET /api/reconcile``: what is out of sync, as the reconcile plan itself says."""

from __future__ import annotations

from typing import Any

import trio
from quart import Blueprint

from api.context import current
from api.openapi import RouteDoc, documented, err, ok
from appliance import trees
from appliance.reconcile.plan import SETTLED_PHASES, PlanSettings
from appliance.reconcile.report import report
from appliance.sessions import utcnow

blueprint = Blueprint("reconcile", __name__)

REPORT = {"type": "object", "required": ["in_sync", "problems"], "properties": {
    "in_sync": {"type": "boolean"},
    "problems": {"type": "array", "items": {"type": "object", "properties": {
        "session": {"type": ["string", "null"]}, "problem": {"type": "string"},
        "detail": {"type": "string"}}}}}}


@blueprint.get("/api/reconcile")
@documented(RouteDoc(summary="What is out of sync between sessions, containers and "
                             "workspaces (what the reconciler would do now)",
                     responses={"200": ok(REPORT), "503": err("A backend is down")}))
async def reconcile_report() -> dict[str, Any]:
    ctx = current()
    sessions = await ctx.store.run(ctx.store.sync.list_sessions)
    observed = [w for b in ctx.backends.values() for w in await b.list_workloads()]

    def missing() -> set[str]:
        return {s.id for s in sessions if s.phase in SETTLED_PHASES and trees.workspace_gone(s)}

    cfg = PlanSettings(max_attempts=ctx.settings.max_attempts,
                       stable_seconds=ctx.settings.stable_seconds)
    problems = report(sessions, observed, now=utcnow(), cfg=cfg,
                      missing=await trio.to_thread.run_sync(missing))
    return {"in_sync": not problems, "problems": [p.to_json() for p in problems]}
