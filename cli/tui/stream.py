"""``/ws/events`` over the Unix socket: a small WebSocket client on wsproto and asyncio.

httpx speaks no WebSocket, and the socket is a Unix one, so the handshake and framing come
from wsproto (the sans-IO WebSocket library) and the bytes from
``asyncio.open_unix_connection``. :func:`messages` yields each JSON message
(``{"type": "connected", "latest": N}`` first, then ``{"type": "event", ...}``) and raises
:class:`ServiceUnavailable` when the API goes away, refuses, or stops answering pings; the
caller (:class:`cli.tui.app.ClauderonApp`) reconnects with ``?after=<last id>``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from appliance.errors import ServiceUnavailable

CONNECT_SECONDS = 5.0
#: Silence longer than this gets a ping; a second silent spell means the API is stuck.
IDLE_SECONDS = 15.0


async def messages(socket_path: Path, after: int | None = None) -> AsyncIterator[dict[str, Any]]:
    target = "/ws/events" + (f"?after={after}" if after is not None else "")
    try:
        async with asyncio.timeout(CONNECT_SECONDS):
            reader, writer = await asyncio.open_unix_connection(str(socket_path))
    except (OSError, TimeoutError) as exc:
        raise ServiceUnavailable(f"cannot reach the event stream on {socket_path}") from exc
    ws = WSConnection(ConnectionType.CLIENT)
    try:
        writer.write(ws.send(Request(host="clauderon", target=target)))
        text: list[str] = []
        pinged = False
        while True:
            try:
                async with asyncio.timeout(IDLE_SECONDS):
                    chunk = await reader.read(65536)
            except TimeoutError:
                if pinged:
                    raise ServiceUnavailable("the event stream stopped answering") from None
                writer.write(ws.send(Ping(payload=b"tui")))
                pinged = True
                continue
            pinged = False
            if not chunk:
                raise ServiceUnavailable("the API closed the event stream")
            ws.receive_data(chunk)
            for event in ws.events():
                if isinstance(event, RejectConnection):
                    raise ServiceUnavailable(f"the API refused the event stream "
                                             f"({event.status_code})")
                if isinstance(event, CloseConnection):
                    writer.write(ws.send(event.response()))
                    raise ServiceUnavailable("the API closed the event stream")
                if isinstance(event, Ping):
                    writer.write(ws.send(event.response()))
                elif isinstance(event, TextMessage):
                    text.append(event.data)
                    if event.message_finished:
                        message = json.loads("".join(text))
                        text.clear()
                        if isinstance(message, dict):
                            yield message
                elif isinstance(event, AcceptConnection):
                    continue
    except OSError as exc:
        raise ServiceUnavailable("the event stream broke off") from exc
    finally:
        writer.close()
