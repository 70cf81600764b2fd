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
    # The newest event as the database says now (the hub's may lag a poll): a page that
    # resumes replays up to it and judges its notes once there, so a stale one had it
    # judge a replayed wait as a live one.
    latest = await ctx.store.run(ctx.store.sync.last_event_id)
    # Without a cursor: from now on.
    cursor = int_param(raw, "after", default=0) if raw is not None else latest
    await websocket.accept()
    # ``after``: the cursor this stream starts from.
    await websocket.send(json.dumps({"type": "connected", "latest": latest, "after": cursor}))
    while True:
        events = await ctx.store.run(ctx.store.sync.events_after, cursor)
        for event in events:
            await websocket.send(json.dumps({"type": "event", "event": event.to_json()}))
            cursor = event.id
        if not events:
            await ctx.hub.wait_beyond(cursor)
