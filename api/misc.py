"""Routes that are not about one session: health, recent repos, reconcile report, hooks,
the OpenAPI document, and the ``/ws/events`` stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio
from quart import request, websocket
from quart_trio import QuartTrio

from api.body import int_param, json_body
from api.context import ApiContext
from api.guard import caller_of
from api.openapi import RouteDoc, document, documented, err, ok
from appliance import workspaces
from appliance.errors import BackendUnavailable, InvalidInput, NotFound, Unauthorized
from appliance.sessions import AgentStatus, Phase
from appliance.tokens import token_matches

VERSION = "0.1.0"

#: Claude Code hook events -> agent status (DESIGN.md, Hooks).
HOOK_STATUS: dict[str, AgentStatus] = {
    "UserPromptSubmit": AgentStatus.WORKING,
    "PreToolUse": AgentStatus.WORKING,
    "PostToolUse": AgentStatus.WORKING,
    "PermissionRequest": AgentStatus.WAITING_APPROVAL,
    "Stop": AgentStatus.WAITING_INPUT,
    "Notification": AgentStatus.IDLE,
    "IdlePrompt": AgentStatus.IDLE,
}


def register(app: QuartTrio, ctx: ApiContext) -> None:
    store = ctx.store

    @app.get("/api/health")
    @documented(RouteDoc(method="GET", path="/api/health",
                         summary="Health of the API, the database and the container "
                                 "engine (only status and version before sign-in)",
                         responses={"200": ok({"type": "object"}),
                                    "503": ok({"type": "object"}, "The engine is unreachable")}))
    async def health() -> tuple[dict[str, Any], int]:
        docker: dict[str, Any] = {"url": ctx.backend.url, "reachable": True}
        try:
            with trio.fail_after(5):
                await ctx.backend.ping()
        except (BackendUnavailable, trio.TooSlowError) as exc:
            docker.update(reachable=False, error=getattr(exc, "message", "timed out"))
        status = "ok" if docker["reachable"] else "degraded"
        if caller_of(request.scope) is None:
            # Open to anyone on the network: whether it is up, and nothing about the host.
            return {"status": status, "version": VERSION}, 200 if docker["reachable"] else 503
        sessions = await store.run(store.sync.list_sessions)
        body = {
            "status": status,
            "version": VERSION,
            "docker": docker,
            "database": {"path": str(ctx.settings.db_path),
                         "schema_version": await store.run(store.sync.schema_version)},
            "sessions": {"total": len(sessions),
                         "failed": sum(s.phase is Phase.FAILED for s in sessions)},
            "latest_event": ctx.hub.latest,
        }
        return body, 200 if docker["reachable"] else 503

    @app.get("/api/recent-repos")
    @documented(RouteDoc(method="GET", path="/api/recent-repos",
                         summary="Repositories used recently (most recent first)",
                         responses={"200": ok({"type": "object"})}))
    async def recent_repos() -> dict[str, Any]:
        rows = await store.run(store.sync.recent_repos)
        alive = await trio.to_thread.run_sync(
            lambda: [r for r in rows if Path(r["repo_path"]).is_dir()])
        return {"repos": alive}

    @app.get("/api/reconcile")
    @documented(RouteDoc(method="GET", path="/api/reconcile",
                         summary="What is out of sync between sessions, containers and worktrees",
                         responses={"200": ok({"type": "object"}), "503": err("Engine down")}))
    async def reconcile_report() -> dict[str, Any]:
        sessions = await store.run(store.sync.list_sessions)
        observed = await ctx.backend.list_workloads()
        by_session = {w.session_id: w for w in observed}
        known = {s.id for s in sessions}
        problems: list[dict[str, Any]] = []
        for s in sessions:
            w = by_session.get(s.id)
            if s.phase is Phase.FAILED:
                problems.append({"session": s.name, "problem": "failed",
                                 "detail": s.status_reason or ""})
            if s.phase in (Phase.RUNNING, Phase.STOPPED) and w is None:
                problems.append({"session": s.name, "problem": "container_missing",
                                 "detail": f"{s.container_name} is gone; the reconciler "
                                 "recreates it"})
            if s.phase in (Phase.RUNNING, Phase.STOPPED, Phase.ARCHIVED) and not \
                    workspaces.is_workspace(Path(s.worktree_path)):
                problems.append({"session": s.name, "problem": "worktree_missing",
                                 "detail": s.worktree_path})
            if w is not None and s.phase is Phase.RUNNING and w.state != "running":
                problems.append({"session": s.name, "problem": "container_stopped",
                                 "detail": w.detail})
        for w in observed:
            if w.session_id not in known:
                problems.append({"session": None, "problem": "orphan_container",
                                 "detail": w.name})
        return {"in_sync": not problems, "problems": problems}

    @app.post("/api/hooks")
    @documented(RouteDoc(
        method="POST", path="/api/hooks",
        summary="Agent hook events (per-session hook token as Bearer)",
        body={"type": "object", "required": ["session_id", "event"]},
        responses={"204": {"description": "Recorded"}, "401": err("Bad token")}))
    async def hooks() -> tuple[str, int]:
        auth = request.headers.get("Authorization", "")
        body = await json_body()
        sid = body.get("session_id")
        if not isinstance(sid, str) or not sid or len(sid) > 100:
            raise InvalidInput("session_id must be the session's id", field="session_id")
        session = await store.run(store.sync.get_session, sid) if sid else None
        token = auth.removeprefix("Bearer ").strip()
        if session is None or not token or not token_matches(token, session.hook_token_hash):
            raise Unauthorized("unknown session or wrong hook token")
        event = body.get("event")
        name = event.get("type") if isinstance(event, dict) else event
        status = HOOK_STATUS.get(str(name))
        if status is None:
            raise InvalidInput(f"unknown hook event {name!r}", field="event")
        await store.run(lambda: store.sync.update_session(
            session.id, event="hook", detail={"hook": str(name)}, agent_status=status))
        ctx.hub.poke()
        return "", 204

    @app.get("/api/openapi.json")
    @documented(RouteDoc(method="GET", path="/api/openapi.json",
                         summary="This document", responses={"200": ok({"type": "object"})}))
    async def openapi() -> dict[str, Any]:
        return document(VERSION)

    @app.websocket("/ws/events")
    @documented(RouteDoc(method="GET", path="/ws/events",
                         summary="WebSocket: session events; ?after=<event id> resumes",
                         query=(("after", "resume after this event id"),),
                         responses={"101": {"description": "Switching protocols"}}))
    async def ws_events() -> None:
        raw = websocket.args.get("after")
        # Without a cursor: from now on, as the database says (the hub may lag a poll).
        cursor = int_param(raw, "after", default=0) if raw is not None else await store.run(
            store.sync.last_event_id)
        await websocket.accept()
        await websocket.send(json.dumps({"type": "connected", "latest": ctx.hub.latest}))
        while True:
            events = await store.run(store.sync.events_after, cursor)
            for event in events:
                await websocket.send(json.dumps({"type": "event", "event": event.to_json()}))
                cursor = event.id
            if not events:
                await ctx.hub.wait_beyond(cursor)

    @app.errorhandler(404)
    async def not_found(_exc: Exception) -> tuple[dict[str, Any], int]:
        return NotFound(f"no route {request.method} {request.path}").to_json(), 404
