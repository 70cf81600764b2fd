"""The agent's conversation over HTTP: read it (incrementally) and send it a message.

``GET /api/sessions/{id}/transcript?after=<cursor>`` reads the agent's own log from the
session's agent home on the host (Claude's transcript JSONL; Codex's rollout files, in
order) and returns typed messages after ``cursor`` plus the cursor to pass next time. The
cursor is a byte offset into the agent's log files taken in order; only complete lines are
consumed, so polling never returns a message twice or half. ``POST .../message`` types the
text into the agent's terminal (tmux ``send-keys``) and presses Enter.

Neighbours: :mod:`appliance.agents.transcript` (the pure parsers), ``api/console.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import trio
from quart import request
from quart_trio import QuartTrio

from api.body import int_param, json_body
from api.context import ApiContext
from api.openapi import RouteDoc, documented, err, ok
from appliance.agents import claude
from appliance.agents.boot import send_enter_argv, send_text_argv
from appliance.agents.transcript import Message, parse_lines
from appliance.contract import workdir_for
from appliance.errors import BackendError, Conflict, InvalidInput
from appliance.sessions import Agent, AgentStatus, Phase, Session

MAX_READ = 4 * 1024 * 1024
MAX_MESSAGE = 64 * 1024
#: Typed text and its Enter as separate keystrokes: a TUI would take them together as paste.
ENTER_PAUSE_SECONDS = 0.15

MESSAGE = {"type": "object", "required": ["kind", "text"], "properties": {
    "kind": {"type": "string", "enum": ["user", "assistant", "tool_call", "tool_result"]},
    "text": {"type": "string"},
    "ts": {"type": ["string", "null"]},
    "tool": {"type": ["string", "null"]},
    "tool_id": {"type": ["string", "null"]},
    "input": {},
    "is_error": {"type": "boolean"},
}}


def log_files(session: Session, homes: Path) -> list[Path]:
    home = homes / session.id
    if session.agent is Agent.CLAUDE:
        path = Path(claude.transcript_path(home=str(home), workdir=workdir_for(session),
                                           session_id=session.id))
        return [path] if path.is_file() else []
    return sorted(home.glob(".codex/sessions/*/*/*/rollout-*.jsonl"))


def read_after(agent: Agent, paths: list[Path], cursor: int) -> tuple[list[Message], int]:
    """Messages after ``cursor`` in the concatenation of ``paths``, and the next cursor."""
    out: list[Message] = []
    base = 0
    budget = MAX_READ
    for path in paths:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if cursor >= base + size:
                base += size
                continue
            start = max(cursor - base, 0)
            f.seek(start)
            data = f.read(min(budget, size - start))
        messages, used = parse_lines(agent, data)
        out += messages
        cursor = base + start + used
        budget -= used
        if start + used < size or budget <= 0:
            break  # a line still being written, or enough for one answer
        base += size
    return out, cursor


def register(app: QuartTrio, ctx: ApiContext) -> None:
    store = ctx.store

    @app.get("/api/sessions/<ref>/transcript")
    @documented(RouteDoc(
        method="GET", path="/api/sessions/<ref>/transcript",
        summary="The agent's conversation as typed messages, after a cursor",
        query=(("after", "the cursor of the previous answer (default: from the start)"),),
        responses={"200": ok({"type": "object", "properties": {
            "agent": {"type": "string"},
            "messages": {"type": "array", "items": MESSAGE},
            "cursor": {"type": "string", "description": "pass as ?after= next time"}}}),
            "404": err("No such session")}))
    async def transcript(ref: str) -> dict[str, Any]:
        session = await store.run(store.sync.resolve, ref)
        after = int_param(request.args.get("after"), "after", default=0)
        paths = await trio.to_thread.run_sync(log_files, session, ctx.settings.homes_dir)
        messages, cursor = await trio.to_thread.run_sync(read_after, session.agent, paths,
                                                         after)
        return {"agent": str(session.agent), "messages": [m.to_json() for m in messages],
                "cursor": str(cursor)}

    @app.post("/api/sessions/<ref>/message")
    @documented(RouteDoc(
        method="POST", path="/api/sessions/<ref>/message",
        summary="Type a message into the agent's terminal and press Enter",
        body={"type": "object", "required": ["text"],
              "properties": {"text": {"type": "string", "maxLength": MAX_MESSAGE}}},
        responses={"202": ok({"type": "object"}, "Sent"), "409": err("Not running")}))
    async def message(ref: str) -> tuple[dict[str, Any], int]:
        body = await json_body()
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("text must be a non-empty string", field="text")
        if len(text) > MAX_MESSAGE:
            raise InvalidInput(f"text is longer than {MAX_MESSAGE} characters", field="text")
        session = await store.run(store.sync.resolve, ref)
        if session.phase is not Phase.RUNNING or not session.backend_id:
            raise Conflict(f"{session.name} is {session.phase}; start it to send a message")
        with trio.fail_after(30):
            typed = await ctx.backend.exec(session.backend_id, send_text_argv(text))
            if typed.exit_code == 0:
                await trio.sleep(ENTER_PAUSE_SECONDS)
                typed = await ctx.backend.exec(session.backend_id, send_enter_argv())
        if typed.exit_code != 0:
            said = (typed.stderr or typed.stdout).decode(errors="replace").strip()
            raise BackendError(f"the agent's terminal did not take the message: {said}",
                               retryable=False)
        if session.agent is Agent.CODEX:
            # Codex reports only the end of a turn; the start of one is this message.
            await store.run(lambda: store.sync.update_session(
                session.id, event="hook", detail={"hook": "message"},
                agent_status=AgentStatus.WORKING))
            ctx.hub.poke()
        return {"sent": True}, 202
