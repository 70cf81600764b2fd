"""Egress routes: each session's mode and lists, the global list, held requests, alerts.

The proxy enforces (``proxy/controls.py``); these routes only write what it reads, through
the database: a session's mode (a field of the session, so every UI sees it), list entries
(:mod:`appliance.egressstore`), and a person's decision on a request held in ``ask`` mode,
which the holding proxy picks up within a fraction of a second. Clearing a session's
honeytoken alert is here too: it is the same story (what the agent tried to reach).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from api.body import choice, json_body
from api.context import current
from api.openapi import RouteDoc, documented, err, ok, one_session
from api.session_routes import act, one
from appliance import egressstore, wire_controls
from appliance.egress import (
    EgressDefaults,
    EgressMode,
    Verdict,
    config_entries,
    host_pattern,
    mode_of,
    parse_mode,
)
from appliance.errors import NotFound
from appliance.store import Store
from appliance.verbs import Verb
from appliance.wire_fields import render

blueprint = Blueprint("egress", __name__)

ENTRY = {"$ref": "#/components/schemas/EgressEntry"}
ASK = {"$ref": "#/components/schemas/EgressAsk"}
MODES = [m.value for m in EgressMode]
VIEW = {"type": "object", "required": ["mode", "entries", "shared", "pending"], "properties": {
    "mode": {"type": "string", "enum": MODES, "description": "The mode in force"},
    "own_mode": {"type": ["string", "null"], "enum": [*MODES, None],
                 "description": "The session's own mode (null: the default)"},
    "ask_timeout_seconds": {"type": "number"},
    "entries": {"type": "array", "items": ENTRY, "description": "The session's own list"},
    "shared": {"type": "array", "items": ENTRY, "description": "The global list"},
    "pending": {"type": "array", "items": ASK}}}
GLOBAL_VIEW = {"type": "object", "required": ["mode", "entries", "pending"], "properties": {
    "mode": {"type": "string", "enum": MODES, "description": "The default mode"},
    "ask_timeout_seconds": {"type": "number"},
    "entries": {"type": "array", "items": ENTRY},
    "pending": {"type": "array", "items": ASK}}}
HOST_BODY = {"type": "object", "required": ["host"], "additionalProperties": False,
             "properties": {"host": {"type": "string"},
                            "verdict": {"type": "string", "enum": ["allow", "deny"]}}}


def _entries(store: Store, scope: str) -> list[dict[str, Any]]:
    return [render(wire_controls.EGRESS_ENTRY, e) for e in egressstore.listed(store, scope)]


def _shared(store: Store, defaults: EgressDefaults) -> list[dict[str, Any]]:
    configured = [render(wire_controls.EGRESS_ENTRY, egressstore.Listed(
        scope="*", host=e.host, verdict=e.verdict, source="config", created_at=""))
        for e in config_entries(defaults)]
    return [*configured, *_entries(store, "*")]


def _asks(store: Store, session_id: str | None) -> list[dict[str, Any]]:
    asks = egressstore.pending_asks(store, session_id)
    return [render(wire_controls.EGRESS_ASK, a) for a in asks]


@blueprint.get("/api/sessions/<ref>/egress")
@documented(RouteDoc(summary="A session's egress mode, lists and held requests",
                     responses={"200": ok(VIEW), "404": err("No such session")}))
async def session_egress(ref: str) -> dict[str, Any]:
    ctx = current()
    s = await ctx.resolve(ref)
    store, defaults = ctx.store.sync, ctx.settings.egress

    def read() -> dict[str, Any]:
        return {"mode": str(mode_of(s.egress_mode, defaults)), "own_mode": s.egress_mode,
                "ask_timeout_seconds": defaults.ask_seconds, "entries": _entries(store, s.id),
                "shared": _shared(store, defaults), "pending": _asks(store, s.id)}

    return await ctx.store.run(read)


@blueprint.post("/api/sessions/<ref>/egress/mode")
@documented(RouteDoc(
    summary="Set a session's egress mode (null: the default); applies to its next request",
    body={"type": "object", "required": ["mode"], "additionalProperties": False,
          "properties": {"mode": {"type": ["string", "null"], "enum": [*MODES, None]}}},
    responses={"200": one_session(), "400": err("Bad mode"), "409": err("Being deleted")}))
async def set_mode(ref: str) -> tuple[dict[str, Any], int]:
    raw = (await json_body()).get("mode")
    mode = None if raw is None else str(parse_mode(raw, "mode"))
    return one(await act(ref, Verb.ACCESS_MODE, event="egress_mode", egress_mode=mode))


def _host_body(body: dict[str, Any]) -> tuple[str, Verdict]:
    return host_pattern(body.get("host"), "host"), choice(body, "verdict", Verdict, "allow")


@blueprint.put("/api/sessions/<ref>/egress/hosts")
@documented(RouteDoc(summary="Allow or deny a host (or *.domain) for a session",
                     body=HOST_BODY, responses={"200": ok(VIEW), "400": err("Bad host")}))
async def put_session_host(ref: str) -> dict[str, Any]:
    ctx = current()
    host, verdict = _host_body(await json_body())
    s = await ctx.resolve(ref)
    await ctx.write(egressstore.put_host, ctx.store.sync, s.id, host, verdict)
    return await session_egress(ref)


@blueprint.delete("/api/sessions/<ref>/egress/hosts/<host>")
@documented(RouteDoc(summary="Take a host off a session's list",
                     responses={"200": ok(VIEW), "404": err("Not listed")}))
async def delete_session_host(ref: str, host: str) -> dict[str, Any]:
    ctx = current()
    s = await ctx.resolve(ref)
    await ctx.write(egressstore.remove_host, ctx.store.sync, s.id, host.lower())
    return await session_egress(ref)


@blueprint.get("/api/egress")
@documented(RouteDoc(summary="The default mode, the global list and every held request",
                     responses={"200": ok(GLOBAL_VIEW)}))
async def global_egress() -> dict[str, Any]:
    ctx = current()
    store, defaults = ctx.store.sync, ctx.settings.egress

    def read() -> dict[str, Any]:
        return {"mode": str(defaults.mode), "ask_timeout_seconds": defaults.ask_seconds,
                "entries": _shared(store, defaults), "pending": _asks(store, None)}

    return await ctx.store.run(read)


@blueprint.put("/api/egress/hosts")
@documented(RouteDoc(summary="Allow or deny a host for every session (the global list)",
                     body=HOST_BODY, responses={"200": ok(GLOBAL_VIEW),
                                                "400": err("Bad host")}))
async def put_global_host() -> dict[str, Any]:
    ctx = current()
    host, verdict = _host_body(await json_body())
    await ctx.write(egressstore.put_host, ctx.store.sync, "*", host, verdict)
    return await global_egress()


@blueprint.delete("/api/egress/hosts/<host>")
@documented(RouteDoc(summary="Take a host off the global list (config.toml's stay)",
                     responses={"200": ok(GLOBAL_VIEW), "404": err("Not listed")}))
async def delete_global_host(host: str) -> dict[str, Any]:
    ctx = current()
    await ctx.write(egressstore.remove_host, ctx.store.sync, "*", host.lower())
    return await global_egress()


@blueprint.post("/api/egress/pending/<ref>")
@documented(RouteDoc(
    summary="Allow or deny a held request (the host goes on the session's list)",
    body={"type": "object", "required": ["decision"], "additionalProperties": False,
          "properties": {"decision": {"type": "string", "enum": ["allow", "deny"]}}},
    responses={"200": ok(ASK), "404": err("No such request"),
               "409": err("Already decided or expired")}))
async def decide(ref: str) -> dict[str, Any]:
    ctx = current()
    verdict = choice(await json_body(), "decision", Verdict)
    if not ref.isdigit():
        raise NotFound(f"no pending request with id {ref[:20]!r}")
    ask = await ctx.write(egressstore.decide_ask, ctx.store.sync, int(ref), verdict)
    return render(wire_controls.EGRESS_ASK, ask)


@blueprint.post("/api/sessions/<ref>/alert/clear")
@documented(RouteDoc(summary="Clear a session's alert: a honeytoken, a credential misused (the "
                             "audit log keeps it)",
                     responses={"200": one_session(), "404": err("No such session")}))
async def clear_alert(ref: str) -> tuple[dict[str, Any], int]:
    ctx = current()
    s = await ctx.resolve(ref)
    return one(await ctx.write(ctx.store.sync.update_session, s.id, event="alert_cleared",
                               alert=None))
