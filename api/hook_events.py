"""``POST /api/hooks``: what the agents' hooks say, as their session's agent status.

The only route served on the hook listener, the one address a session container reaches
(``api.guard.hooks_only``). The caller is an agent, so every byte is hostile: a body over
4 KiB is refused unread, the rest goes through the strict JSON reader, the session id is
checked for shape, the hook token is compared in constant time, the session's events are
limited (a few a second is what a busy agent sends; :mod:`api.ratelimit`), and the event is
mapped by the core's table
(:func:`appliance.agents.hooks.hook_changes`) — anything else is a 4xx, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quart import Blueprint, request

from api.body import json_body
from api.context import current
from api.openapi import RouteDoc, documented, err
from api.ratelimit import HOOK_WINDOW_SECONDS, HOOKS_PER_SESSION
from appliance.agents.hooks import HOOK_STATUS, hook_changes
from appliance.errors import Conflict, InvalidInput, TooManyRequests, Unauthorized
from appliance.sessions import Session
from appliance.tokens import token_matches

blueprint = Blueprint("hooks", __name__)

BODY = {"type": "object", "required": ["session_id", "event"], "properties": {
    "session_id": {"type": "string"},
    "event": {"type": "object", "required": ["type"], "properties": {
        "type": {"type": "string", "enum": list(HOOK_STATUS)}}}}}


@blueprint.post("/api/hooks")
@documented(RouteDoc(summary="Agent hook events (per-session hook token as Bearer)", body=BODY,
                     responses={"204": {"description": "Recorded"}, "400": err("Bad event"),
                                "401": err("Bad token"),
                                "413": err("A body over 4 KiB (on the hook listener)"),
                                "429": err("Too many hook events from this session")}))
async def hooks() -> tuple[str, int]:
    ctx = current()
    auth = request.headers.get("Authorization", "")
    body = await json_body(known=("session_id", "event"))
    sid = body.get("session_id")
    if not isinstance(sid, str) or not sid or len(sid) > 100:
        raise InvalidInput("session_id must be the session's id", field="session_id")
    session = await ctx.store.run(ctx.store.sync.get_session, sid)
    token = auth.removeprefix("Bearer ").strip()
    if session is None or not token or not token_matches(token, session.hook_token_hash):
        raise Unauthorized("unknown session or wrong hook token")
    # Counted once the token is known good: no agent can use up another session's room.
    wait = ctx.hook_limiter.allow(session.id)
    if wait is not None:
        raise TooManyRequests(
            f"too many hook events from {session.name} (more than {HOOKS_PER_SESSION} in "
            f"{HOOK_WINDOW_SECONDS:g} s); not recorded; try again in {max(int(wait), 1)} s")
    event = body.get("event")
    name = event.get("type") if isinstance(event, dict) else event
    changes = hook_changes(name, session)
    ctx.metrics.hook(name)

    for _ in range(3):
        try:
            await ctx.write(ctx.store.sync.update_session, session.id, event="hook",
                            detail={"hook": str(name)}, expect=_deciding(name, changes),
                            **changes)
            break
        except Conflict:
            fresh = await ctx.store.run(ctx.store.sync.get_session, session.id)
            if fresh is None:
                return "", 204  # deleted meanwhile: nothing of it to change
            changes = hook_changes(name, fresh)
    if ctx.hook_trims(session.id):  # within its rate, an agent could still fill the disk
        await ctx.store.run(ctx.store.sync.trim_hooks, session.id,
                            ctx.settings.keep_hook_events)
    return "", 204


def _deciding(name: object, changes: dict[str, Any]) -> Callable[[Session], None]:
    """A hook's decision stands only on the row as the write's transaction reads it: a
    stop, archive or delete the person made since the hook read the session is never
    written over (the hook decides again on the row as it is)."""
    def check(current: Session) -> None:
        if hook_changes(name, current) != changes:
            raise Conflict("the session changed since the hook was read")
    return check
