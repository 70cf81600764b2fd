"""Usage and budget routes: what each session costs, and how much it may spend.

Handlers only parse, call the core and answer: rows come from
:mod:`appliance.controlstore` (the proxy writes them), the sums, prices and budget
judgements from :mod:`appliance.reports`, the JSON from :mod:`appliance.wire`. A budget set
here is read by the proxy within about a second (``proxy/controls.py``): raising a spent
one lets the session's agent go on without a restart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from quart import Blueprint, request

from api.body import json_body
from api.context import current
from api.openapi import RouteDoc, documented, err, ok
from appliance import controlstore, reports
from appliance.budgets import GLOBAL, Budget, parse_budget
from appliance.errors import InvalidInput

blueprint = Blueprint("usage", __name__)

USAGE = {"$ref": "#/components/schemas/Usage"}
BUDGET = {"$ref": "#/components/schemas/Budget"}
STATE = {"$ref": "#/components/schemas/BudgetState"}
MAX_DAYS = 366

SESSION_USAGE = {"type": "object", "required": ["session_id", "total", "rows", "budget"],
                 "properties": {"session_id": {"type": "string"}, "total": USAGE,
                                "rows": {"type": "array", "items": USAGE},
                                "budget": STATE}}
DAYS = {"type": "object", "required": ["days", "total", "sessions"], "properties": {
    "days": {"type": "array", "items": {
        "type": "object", "required": ["day", "total", "sessions"],
        "properties": {"day": {"type": "string"}, "total": USAGE,
                       "sessions": {"type": "array", "items": USAGE}}}},
    "total": USAGE,
    "sessions": {"type": "object", "additionalProperties": USAGE,
                 "description": "Each session's total over the days, by id"}}}
BUDGETS = {"type": "object", "required": ["global", "sessions", "defaults"], "properties": {
    "global": STATE,
    "sessions": {"type": "array", "items": STATE},
    "defaults": {"type": "object", "properties": {"session": BUDGET, "global": BUDGET}}}}


def _since() -> str | None:
    """The first day asked for (None: every day)."""
    raw = request.args.get("days", "30")
    if not raw.isdigit() or not 0 <= int(raw) <= MAX_DAYS:
        raise InvalidInput(f"days must be a whole number from 0 (every day) to {MAX_DAYS}",
                           field="days")
    if int(raw) == 0:
        return None
    return (datetime.now(UTC) - timedelta(days=int(raw) - 1)).date().isoformat()


async def _spent() -> dict[str, Any]:
    ctx = current()
    rows = await ctx.store.run(controlstore.totals_by_session_model, ctx.store.sync)
    return controlstore.spent_by_scope(rows, ctx.settings.prices, controlstore.today())


async def _state(scope: str) -> dict[str, Any]:
    """The budget in force for ``scope`` and what it has spent."""
    ctx = current()
    set_budgets = await ctx.store.run(controlstore.budgets, ctx.store.sync)
    return reports.budget_json(reports.budget_state(scope, set_budgets, ctx.settings.budgets,
                                                    await _spent()))


@blueprint.get("/api/usage")
@documented(RouteDoc(summary="Usage per day (newest first) and per session, with cost",
                     query=(("days", "how many days back, today included (default 30; "
                                     "0: every day)"),),
                     responses={"200": ok(DAYS), "400": err("Bad days")}))
async def usage() -> dict[str, Any]:
    ctx = current()
    since = _since()
    rows = await ctx.store.run(lambda: controlstore.usage_rows(ctx.store.sync, since=since))
    prices = ctx.settings.prices
    return {"days": reports.by_day(rows, prices),
            "total": reports.line_json(reports.summed(rows, prices)),
            "sessions": reports.per_session(rows, prices)}


@blueprint.get("/api/sessions/<ref>/usage")
@documented(RouteDoc(summary="One session's usage per day and model, its total and budget",
                     responses={"200": ok(SESSION_USAGE), "404": err("No such session")}))
async def session_usage(ref: str) -> dict[str, Any]:
    ctx = current()
    session = await ctx.resolve(ref)
    rows = await ctx.store.run(
        lambda: controlstore.usage_rows(ctx.store.sync, session_id=session.id))
    prices = ctx.settings.prices
    return {"session_id": session.id,
            "total": reports.line_json(reports.summed(rows, prices, session_id=session.id,
                                                      session_name=session.name)),
            "rows": reports.rows_json(rows, prices), "budget": await _state(session.id)}


@blueprint.get("/api/budgets")
@documented(RouteDoc(summary="The budget in force for all sessions and for each session",
                     responses={"200": ok(BUDGETS)}))
async def list_budgets() -> dict[str, Any]:
    ctx = current()
    set_budgets = await ctx.store.run(controlstore.budgets, ctx.store.sync)
    spent = await _spent()
    sessions = await ctx.store.run(ctx.store.sync.list_sessions)
    defaults = ctx.settings.budgets
    return {
        "global": reports.budget_json(reports.budget_state(GLOBAL, set_budgets, defaults,
                                                           spent)),
        "sessions": [reports.budget_json(reports.budget_state(s.id, set_budgets, defaults,
                                                              spent)) for s in sessions],
        "defaults": {"session": defaults.session.to_json(),
                     "global": defaults.all_sessions.to_json()},
    }


async def _set(scope: str, name: str) -> dict[str, Any]:
    budget = parse_budget(await json_body(), "budget", from_config=False)
    return await _budget(scope, name, budget)


async def _budget(scope: str, name: str, budget: Budget | None) -> dict[str, Any]:
    """Set the budget of ``scope`` (None: clear it) and answer its state."""
    ctx = current()
    await ctx.write(controlstore.set_budget, ctx.store.sync, scope, budget, name=name)
    return await _state(scope)


def _set_doc(summary: str) -> RouteDoc:
    return RouteDoc(summary=summary,
                    body={**BUDGET, "description": "Every limit; a missing or null one is none"},
                    responses={"200": ok(STATE), "400": err("A negative, non-numeric or "
                                                            "unknown limit")})


@blueprint.put("/api/budgets/global")
@documented(_set_doc("Set the budget of all sessions together (replaces [budgets.global])"))
async def set_global_budget() -> dict[str, Any]:
    return await _set(GLOBAL, "")


@blueprint.delete("/api/budgets/global")
@documented(RouteDoc(summary="Back to [budgets.global] of config.toml",
                     responses={"200": ok(STATE)}))
async def clear_global_budget() -> dict[str, Any]:
    return await _budget(GLOBAL, "", None)


@blueprint.put("/api/sessions/<ref>/budget")
@documented(_set_doc("Set a session's budget (replaces [budgets.session] for it); applies "
                     "to its next model request"))
async def set_session_budget(ref: str) -> dict[str, Any]:
    session = await current().resolve(ref)
    return await _set(session.id, session.name)


@blueprint.delete("/api/sessions/<ref>/budget")
@documented(RouteDoc(summary="Back to [budgets.session] of config.toml for this session",
                     responses={"200": ok(STATE), "404": err("No such session")}))
async def clear_session_budget(ref: str) -> dict[str, Any]:
    session = await current().resolve(ref)
    return await _budget(session.id, session.name, None)

