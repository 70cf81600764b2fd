"""``/ws/events``: every event of the journal, live, resumable from a cursor.

Each viewer reads the rows after its own cursor and then waits on the hub
(:class:`api.events.EventHub`), so a slow viewer never holds the others back.
"""

from __future__ import annotations

import json

from quart import Blueprint, websocket

from api.body import int_param
from api.context import current
from api.openapi import RouteDoc, documented

blueprint = Blueprint("events", __name__)


@blueprint.websocket("/ws/events")
@documented(RouteDoc(summary="WebSocket: session events; ?after=<event id> resumes",
                     query=(("after", "resume after this event id"),),
                     responses={"101": {"description": "Switching protocols"}}))
async def ws_events() -> None:
    ctx = current()
    raw = websocket.args.get("after")
    # Without a cursor: from now on, as the database says (the hub may lag a poll).
    cursor = int_param(raw, "after", default=0) if raw is not None else await ctx.store.run(
        ctx.store.sync.last_event_id)
    await websocket.accept()
    # ``after``: the cursor this stream starts from (resume from it, not from ``latest``,
    # which may lag the database a poll behind).
    await websocket.send(json.dumps({"type": "connected", "latest": ctx.hub.latest,
                                     "after": cursor}))
    while True:
        events = await ctx.store.run(ctx.store.sync.events_after, cursor)
        for event in events:
            await websocket.send(json.dumps({"type": "event", "event": event.to_json()}))
            cursor = event.id
        if not events:
            await ctx.hub.wait_beyond(cursor)
