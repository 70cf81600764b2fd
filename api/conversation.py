"""The agent's conversation over HTTP: read it (incrementally) and send it a message.

``GET /api/sessions/{id}/transcript?after=<cursor>`` reads the agent's own log from the
session's agent home, wherever its workspace reader finds it (Claude's transcript JSONL;
Codex's rollout files, in order) and returns typed messages after ``cursor`` plus the cursor
to pass next time. The cursor is a byte offset into the agent's log files taken in order;
only complete lines are consumed, so polling never returns a message twice or half. The
agent writes those files: they are read through :mod:`appliance.agents.reader` (never
following a symlink, bounded per answer; a log the agent turned into a symlink or FIFO is a
409). ``POST .../message`` types the text into the agent's terminal (tmux ``send-keys``) and
presses Enter, and keeps what it sent: a user message of the transcript is ``from_person``
only when it is one of those (:mod:`appliance.sent`); any other user message the agent, or
someone at the session's terminal, wrote.

Neighbours: :mod:`appliance.agents.logs` (the pure parsers), ``api/console.py``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import trio
from quart import Blueprint, request

from api.body import json_body
from api.context import current
from api.openapi import MESSAGE, RouteDoc, documented, err, ok
from appliance import sentstore, verbs
from appliance.agents import reader
from appliance.agents.boot import (
    SHELL_READING,
    cursor_line_argv,
    reading_argv,
    send_enter_argv,
    send_text_argv,
)
from appliance.agents.logs import Kind
from appliance.backends.base import Backend, ExecResult
from appliance.errors import BackendError, Conflict, InvalidInput
from appliance.quoted import quote
from appliance.sessions import Agent, AgentStatus, Desired, Phase, Session
from appliance.verbs import Verb

MAX_MESSAGE = 64 * 1024
CURSOR = re.compile(r"[0-9]{1,18}")
#: How long a message waits for the agent to read input (a fresh session boots first).
READY_SECONDS = 120.0
READY_POLL_SECONDS = 0.2
SETTLE_SECONDS = 0.5
#: Typed text shows on the agent's input line within this long (else Enter goes anyway).
SHOWN_SECONDS = 10.0
#: After Enter, the text leaves the input line within this long (else Enter again).
SENT_SECONDS = 2.0
ENTER_TRIES = 5
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
    # many run at once, so many polls of a hostile log cannot add up to the API's memory,
    # and one session holds one of them at most.
    found = ctx.reader_for(session, absent="no home")
    async with ctx.read_turn(session):
        page = await trio.to_thread.run_sync(reader.read_transcript, found.home, session,
                                             cursor)
    mine = await ctx.store.run(sentstore.from_person, ctx.store.sync, session.id,
                               [(m.pos, m.start, m.text) for m in page.messages
                                if m.kind is Kind.USER])
    return {"agent": str(session.agent), "cursor": str(page.cursor),
            "messages": [replace(m, from_person=m.pos in mine).to_json()
                         for m in page.messages]}


async def press_enter(backend: Backend, backend_id: str, text: str) -> ExecResult:
    """Enter, once the agent shows the typed text on its cursor's line, and again until the
    text has left it (sent). A starting agent can draw typed keys late, or take them as a
    paste and drop the Enter that follows: each step is watched, each wait bounded."""
    tail = text.strip().splitlines()[-1][-24:] if text.strip() else ""

    async def on_cursor_line() -> bool:
        line = await backend.exec(backend_id, cursor_line_argv())
        return bool(tail) and tail in line.stdout.decode(errors="replace")

    with trio.move_on_after(SHOWN_SECONDS):
        while not await on_cursor_line():  # noqa: ASYNC110 - a screen has no event
            await trio.sleep(READY_POLL_SECONDS)
    pressed = ExecResult(exit_code=0)
    for _ in range(ENTER_TRIES):
        await trio.sleep(ENTER_PAUSE_SECONDS)
        pressed = await backend.exec(backend_id, send_enter_argv())
        if pressed.exit_code != 0:
            break
        with trio.move_on_after(SENT_SECONDS):
            while await on_cursor_line():  # noqa: ASYNC110 - a screen has no event
                await trio.sleep(READY_POLL_SECONDS)
            break
    return pressed


async def until_reading(session: Session) -> Session:
    """The session once its agent reads its terminal: a message sent right after a create
    waits (bounded) for the container to run and the agent to take input, instead of
    being typed into a terminal nobody reads yet."""
    ctx = current()
    with trio.move_on_after(READY_SECONDS) as waiting:
        cursor = ctx.hub.latest
        while session.phase is Phase.CREATING and session.desired is Desired.RUNNING:
            await ctx.hub.wait_beyond(cursor)  # the reconciler wrote something
            cursor = ctx.hub.latest
            session = await ctx.resolve(session.id)
        verbs.check(Verb.MESSAGE, session)
        assert session.backend_id is not None
        if not ctx.settings.start_agents:
            return session
        backend = ctx.backend_for(session)
        # The terminal's mode has no event to wait on: it is looked at, a few times a second.
        while (looked := await backend.exec(session.backend_id, reading_argv())).exit_code:
            if looked.exit_code == SHELL_READING:
                # Typed into that shell, a message for the agent would run as commands.
                raise Conflict(
                    f"{session.name}'s agent is not running: it exited and its terminal is "
                    f"a shell now. Restart it (`clauderon restart-agent {session.name}`), or "
                    f"type into the shell yourself (`clauderon attach {session.name}`)")
            await trio.sleep(READY_POLL_SECONDS)
        await trio.sleep(SETTLE_SECONDS)  # it reads keys; let it draw its input first
        return session
    assert waiting.cancelled_caught
    raise Conflict(f"{session.name}'s agent did not start reading input within "
                   f"{READY_SECONDS:.0f}s (it is {session.phase}); see its terminal "
                   f"(`clauderon attach {session.name}`) and try again")


@blueprint.post("/api/sessions/<ref>/message")
@documented(RouteDoc(
    summary="Type a message into the agent's terminal and press Enter (waits, bounded, for "
            "a session still starting to read input)",
    body={"type": "object", "required": ["text"], "additionalProperties": False,
          "properties": {"text": {"type": "string", "maxLength": MAX_MESSAGE}}},
    responses={"202": ok({"type": "object"}, "Sent"), "409": err("Not running")}))
async def message(ref: str) -> tuple[dict[str, Any], int]:
    ctx = current()
    text = (await json_body(known=("text",))).get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text must be a non-empty string", field="text")
    if len(text) > MAX_MESSAGE:
        raise InvalidInput(f"text is longer than {MAX_MESSAGE} characters", field="text")
    session = await until_reading(await ctx.resolve(ref))
    assert session.backend_id is not None  # the rule needs a workload
    # Kept before it is typed (the agent may write it down before this answers), with where
    # the agent's logs end now: a line of the same words written before is not this one.
    async with ctx.read_turn(session):
        end = await trio.to_thread.run_sync(
            reader.logs_end, ctx.reader_for(session, absent="no home").home, session)
    await ctx.store.run(sentstore.record, ctx.store.sync, session.id, text, floor=end)
    backend = ctx.backend_for(session)
    with trio.fail_after(30):
        typed = await backend.exec(session.backend_id, send_text_argv(text))
        if typed.exit_code == 0:
            typed = await press_enter(backend, session.backend_id, text)
    if typed.exit_code != 0:
        said = quote("the container", typed.stderr.strip() or typed.stdout)
        raise BackendError(f"the agent's terminal did not take the message: {said}",
                           retryable=False)
    if session.agent is Agent.CODEX:
        # Codex reports only the end of a turn; the start of one is this message.
        await ctx.write(lambda: ctx.store.sync.update_session(
            session.id, event="hook", detail={"hook": "message"},
            agent_status=AgentStatus.WORKING))
    return {"sent": True}, 202
