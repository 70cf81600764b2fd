"""``/ws/console/{id}``: the agent's terminal over a WebSocket, for any number of viewers.

Each viewer gets its own tmux client attached to the session's one tmux session (the agent
runs there, started by the reconciler), through a TTY exec in the container. tmux keeps the
screen: a viewer who joins late is drawn the current screen on attach, every viewer sees
the same terminal, and a viewer leaving only ends its own client: the agent never notices.
The window follows the size of the viewer who last typed or resized (tmux's
``window-size latest``).

Frames (JSON text):

* server -> client: ``{"type": "output", "data": <base64 bytes>}``; ``{"type": "exit"}``
  when the terminal ends (then the socket closes);
* client -> server: ``{"type": "input", "data": <base64 bytes>}``,
  ``{"type": "resize", "rows": R, "cols": C}``; a binary frame is taken as raw input.

``?rows=&cols=`` set the first size (default 24 x 80). Neighbours: ``api/transcript.py``
(the same conversation as messages), :mod:`appliance.agents.boot` (``attach_argv``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

import trio
from quart import Blueprint, websocket

from api.context import current
from api.openapi import RouteDoc, documented
from appliance import verbs
from appliance.agents.boot import attach_argv
from appliance.backends.base import Terminal
from appliance.errors import InvalidInput
from appliance.verbs import Verb

log = logging.getLogger(__name__)

MAX_FRAME = 1024 * 1024
MIN_SIZE, MAX_SIZE = 2, 1000


def _size(raw: Any, default: int) -> int:
    try:
        value = int(raw) if raw is not None else default
    except (TypeError, ValueError):
        raise InvalidInput("rows and cols must be integers") from None
    return max(MIN_SIZE, min(MAX_SIZE, value))


async def _pump_output(terminal: Terminal, cancel: trio.CancelScope) -> None:
    while True:
        data = await terminal.receive()
        if not data:
            break
        await websocket.send(json.dumps(
            {"type": "output", "data": base64.b64encode(data).decode()}))
    await websocket.send(json.dumps({"type": "exit"}))
    cancel.cancel()


async def _pump_input(terminal: Terminal) -> None:
    while True:
        frame = await websocket.receive()
        if isinstance(frame, bytes):
            await terminal.send(frame[:MAX_FRAME])
            continue
        try:
            msg = json.loads(frame)
            if msg.get("type") == "input":
                await terminal.send(base64.b64decode(msg.get("data", ""), validate=True))
            elif msg.get("type") == "resize":
                await terminal.resize(_size(msg.get("rows"), 24), _size(msg.get("cols"), 80))
        except (ValueError, AttributeError, binascii.Error, InvalidInput) as exc:
            log.info("console: ignored a bad frame (%s)", exc)


blueprint = Blueprint("console", __name__)


@blueprint.websocket("/ws/console/<ref>")
@documented(RouteDoc(
    summary="WebSocket: the agent's terminal. Server frames {type: output, data: base64} and "
            "{type: exit}; client frames {type: input, data: base64}, {type: resize, rows, "
            "cols}, or binary raw input. Any number of viewers; a late joiner gets the "
            "current screen",
    query=(("rows", "initial rows (default 24)"), ("cols", "initial columns (default 80)")),
    responses={"101": {"description": "Switching protocols"}}))
async def console(ref: str) -> None:
    ctx = current()
    session = await ctx.resolve(ref)
    verbs.check(Verb.CONSOLE, session)
    assert session.backend_id is not None  # the rule needs a workload
    rows = _size(websocket.args.get("rows"), 24)
    cols = _size(websocket.args.get("cols"), 80)
    terminal = await ctx.backend_for(session).open_terminal(
        session.backend_id, attach_argv(), rows=rows, cols=cols)
    try:
        await websocket.accept()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump_output, terminal, nursery.cancel_scope)
            await _pump_input(terminal)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await terminal.aclose()
