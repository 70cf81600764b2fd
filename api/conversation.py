"""The agent's conversation over HTTP: read it (incrementally) and send it a message.

``GET /api/sessions/{id}/transcript?after=<cursor>`` reads the agent's own log from the
session's agent home on the host (Claude's transcript JSONL; Codex's rollout files, in
order) and returns typed messages after ``cursor`` plus the cursor to pass next time. The
cursor is a byte offset into the agent's log files taken in order; only complete lines are
consumed, so polling never returns a message twice or half. The agent writes those files:
they are read through :mod:`appliance.agents.reader` (never following a symlink, bounded
per answer; a log the agent turned into a symlink or FIFO is a 409). ``POST .../message``
types the text into the agent's terminal (tmux ``send-keys``) and presses Enter.

Neighbours: :mod:`appliance.agents.logs` (the pure parsers), ``api/console.py``.
"""

from __future__ import annotations

import re
from typing import Any

import trio
from quart import Blueprint, request

from api.body import json_body
from api.context import current
from api.openapi import MESSAGE, RouteDoc, documented, err, ok
from appliance import trees, verbs
from appliance.agents import reader
from appliance.agents.boot import send_enter_argv, send_text_argv
from appliance.errors import BackendError, InvalidInput
from appliance.sessions import Agent, AgentStatus
from appliance.verbs import Verb

MAX_MESSAGE = 64 * 1024
CURSOR = re.compile(r"[0-9]{1,18}")
#: Typed text and its Enter as separate keystrokes: a TUI would take them together as paste.
ENTER_PAUSE_SECONDS = 0.15


def parse_cursor(raw: str) -> int:
    if not CURSOR.fullmatch(raw):
        raise InvalidInput("after must be a cursor from an earlier answer (decimal digits)",
                           field="after")
    return int(raw)


blueprint = Blueprint("transcript", __name__)

PAGE = {"type": "object", "required": ["agent", "messages", "cursor"], "properties": {
    "agent": {"type": "string"},
    "messages": {"type": "array", "items": MESSAGE},
    "cursor": {"type": "string", "description": "pass as ?after= next time"}}}


@blueprint.get("/api/sessions/<ref>/transcript")
@documented(RouteDoc(
    summary="The agent's conversation as typed messages, after a cursor",
    query=(("after", "the cursor of the previous answer (default: from the start)"),),
    responses={"200": ok(PAGE), "400": err("The cursor is not one an answer gave"),
               "404": err("No such session"),
               "409": err("The agent made its log something that is not read: a symlink, a "
                          "FIFO, too many files")}))
async def transcript(ref: str) -> dict[str, Any]:
    ctx = current()
    session = await ctx.resolve(ref)
    cursor = parse_cursor(request.args.get("after", "0") or "0")
    # Each read is bounded (reader.MAX_READ, MAX_SKIP, MAX_ENTRIES); the limiter bounds how
    # many run at once, so many polls of a hostile log cannot add up to the API's memory.
    page = await trio.to_thread.run_sync(
        reader.read_transcript, trees.home_dir(ctx.settings, session), session, cursor,
        limiter=ctx.readers)
    return {"agent": str(session.agent), "messages": [m.to_json() for m in page.messages],
            "cursor": str(page.cursor)}


@blueprint.post("/api/sessions/<ref>/message")
@documented(RouteDoc(
    summary="Type a message into the agent's terminal and press Enter",
    body={"type": "object", "required": ["text"], "additionalProperties": False,
          "properties": {"text": {"type": "string", "maxLength": MAX_MESSAGE}}},
    responses={"202": ok({"type": "object"}, "Sent"), "409": err("Not running")}))
async def message(ref: str) -> tuple[dict[str, Any], int]:
    ctx = current()
    body = await json_body()
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text must be a non-empty string", field="text")
    if len(text) > MAX_MESSAGE:
        raise InvalidInput(f"text is longer than {MAX_MESSAGE} characters", field="text")
    session = await ctx.resolve(ref)
    verbs.check(Verb.MESSAGE, session)
    assert session.backend_id is not None  # the rule needs a workload
    backend = ctx.backend_for(session)
    with trio.fail_after(30):
        typed = await backend.exec(session.backend_id, send_text_argv(text))
        if typed.exit_code == 0:
            await trio.sleep(ENTER_PAUSE_SECONDS)
            typed = await backend.exec(session.backend_id, send_enter_argv())
    if typed.exit_code != 0:
        said = (typed.stderr or typed.stdout).decode(errors="replace").strip()
        raise BackendError(f"the agent's terminal did not take the message: {said}",
                           retryable=False)
    if session.agent is Agent.CODEX:
        # Codex reports only the end of a turn; the start of one is this message.
        await ctx.store.run(lambda: ctx.store.sync.update_session(
            session.id, event="hook", detail={"hook": "message"},
            agent_status=AgentStatus.WORKING))
        ctx.hub.poke()
    return {"sent": True}, 202
