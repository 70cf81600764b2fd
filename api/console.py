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

``?rows=&cols=`` set the first size (default 24 x 80).

A keystroke's echo is the console's whole point, so the route is served by plain ASGI
(:func:`lean`, wrapped around the Quart app's ``asgi_app``) rather than through Quart's
dispatch: each frame goes from Hypercorn's queue straight to the engine's exec stream, with
no per-connection queue task, request context or handler hop in between. It sits *behind*
the listener's layer (``api/guard.py``: sign-in, ``Host``, ``Origin``; ``trusted()`` on the
Unix socket), which wraps the whole app, so nothing the layer checks is skipped. The Quart
route below stays only as the route's entry in the OpenAPI document. Neighbours:
``api/console_frames.py`` (the frames, pure), :mod:`appliance.agents.boot` (``attach_argv``).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qs

import trio
from quart import Blueprint

from api.console_frames import exit_frame, output_frame, parse_frame, size
from api.context import ApiContext
from api.guard import ASGIApp, AsgiScope, Receive, Send, refuse
from api.openapi import RouteDoc, documented
from appliance import verbs
from appliance.agents.boot import attach_argv
from appliance.backends.base import Terminal
from appliance.errors import ClauderonError, NotFound
from appliance.verbs import Verb

log = logging.getLogger(__name__)

#: The route's path; ``ref`` is one segment, as Quart's ``<ref>`` would take it.
PATH = re.compile(r"/ws/console/([^/]+)")


async def _pump_output(terminal: Terminal, send: Send) -> None:
    while data := await terminal.receive():
        await send({"type": "websocket.send", "text": output_frame(data)})
    await send({"type": "websocket.send", "text": exit_frame()})
    await send({"type": "websocket.close", "code": 1000})


async def _pump_input(terminal: Terminal, receive: Receive) -> None:
    """Feed the viewer's frames to the terminal until the viewer leaves."""
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return  # websocket.disconnect
        frame = message.get("bytes")
        if frame is None:
            frame = message.get("text") or ""
        try:
            kind, value = parse_frame(frame)
        except ValueError as exc:
            log.info("console: ignored a bad frame (%s)", exc)
            continue
        if kind == "input":
            await terminal.send(value)
        elif kind == "resize":
            await terminal.resize(*value)


async def _open(ctx: ApiContext, ref: str, query: bytes) -> Terminal:
    """The checks and the exec, before any 101: a refusal here is an HTTP answer."""
    session = await ctx.resolve(ref)
    verbs.check(Verb.CONSOLE, session)
    assert session.backend_id is not None  # the rule needs a workload
    args = parse_qs(query.decode("latin-1"))
    rows = size(args.get("rows", [None])[-1], 24)
    cols = size(args.get("cols", [None])[-1], 80)
    return await ctx.backend_for(session).open_terminal(
        session.backend_id, attach_argv(), rows=rows, cols=cols)


async def serve_console(ctx: ApiContext, ref: str, scope: AsgiScope, receive: Receive,
                        send: Send) -> None:
    connect = await receive()
    if connect["type"] != "websocket.connect":
        return
    try:
        terminal = await _open(ctx, ref, scope.get("query_string", b""))
    except ClauderonError as exc:
        if exc.http_status >= 500:
            log.warning("%s %s", type(exc).__name__, exc.message)
        await refuse(scope, send, exc)
        return
    try:
        await send({"type": "websocket.accept"})
        async with trio.open_nursery() as nursery:
            async def output() -> None:
                await _pump_output(terminal, send)
                nursery.cancel_scope.cancel()

            nursery.start_soon(output)
            await _pump_input(terminal, receive)
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await terminal.aclose()


def lean(ctx: ApiContext, app: ASGIApp) -> ASGIApp:
    """``app`` with ``/ws/console/<ref>`` answered ahead of it (see the module's doc)."""

    async def wrapped(scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            found = PATH.fullmatch(str(scope.get("path", "")))
            if found is not None:
                await serve_console(ctx, found.group(1), scope, receive, send)
                return
        await app(scope, receive, send)

    return wrapped


blueprint = Blueprint("console", __name__)


@blueprint.websocket("/ws/console/<ref>")
@documented(RouteDoc(
    summary="WebSocket: the agent's terminal. Server frames {type: output, data: base64} and "
            "{type: exit}; client frames {type: input, data: base64}, {type: resize, rows, "
            "cols}, or binary raw input. Any number of viewers; a late joiner gets the "
            "current screen",
    query=(("rows", "initial rows (default 24)"), ("cols", "initial columns (default 80)")),
    responses={"101": {"description": "Switching protocols"}}))
async def console(ref: str) -> Any:
    # Never reached: lean() answers every /ws/console/<ref> before Quart routes it.
    raise NotFound(f"no console route for {ref!r}")
