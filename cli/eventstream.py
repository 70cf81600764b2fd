"""``/ws/events`` as the clients read it, without I/O: handshake, frames, silence, resuming.

The event stream is a WebSocket on the same Unix socket as the REST calls. httpx sends the
upgrade request (so it shares the client's transport, socket path and errors), and what
follows the ``101`` is framed here with wsproto, the sans-IO WebSocket library: the I/O
faces in :mod:`cli.client` read bytes, hand them to :class:`Frames`, write back what it
says (pongs, the close reply, a ping after a silence) and pass on the messages.

Messages are the API's JSON objects, ``{"type": "connected", "latest": N}`` first, then
``{"type": "event", "event": {...}}`` per event. A follower that loses the stream gets one
``{"type": "lost", "error": "..."}`` from its client and, after the pause :class:`Resume`
says, a new connection that resumes after the last event it saw, so no event is missed or
repeated across a restart of the API.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Ping, TextMessage

from appliance.errors import ClauderonError, ServiceUnavailable

Message = dict[str, Any]

#: Silence longer than this gets a ping; a second silent spell means the API is stuck.
IDLE_SECONDS = 15.0
#: The API's messages are a session's JSON at most; anything this big is not one.
MAX_MESSAGE = 4 * 1024 * 1024
FIRST_PAUSE = 0.5
MAX_PAUSE = 5.0
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def handshake() -> tuple[str, dict[str, str]]:
    """A fresh key and the upgrade request's headers (RFC 6455, section 4.1)."""
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    return key, {"Connection": "Upgrade", "Upgrade": "websocket",
                 "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}


def check_accept(key: str, headers: Mapping[str, str]) -> None:
    """Refuse an upgrade that does not answer our key (not a WebSocket server)."""
    expected = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()  # noqa: S324 (the protocol's hash)
    if headers.get("sec-websocket-accept") != expected:
        raise ServiceUnavailable("the API answered the event stream's upgrade wrongly")


def lost(error: ClauderonError) -> Message:
    return {"type": "lost", "error": error.message}


class Frames:
    """One upgraded connection's frames: bytes in, the bytes to send back and messages out."""

    def __init__(self) -> None:
        self._ws = Connection(ConnectionType.CLIENT)
        self._text: list[str] = []
        self._size = 0
        self._pinged = False

    def receive(self, data: bytes) -> tuple[bytes, list[Message]]:
        """Take what the API sent; empty ``data`` is the end of the stream."""
        if not data:
            raise ServiceUnavailable("the API closed the event stream")
        self._pinged = False
        self._ws.receive_data(data)
        reply = b""
        out: list[Message] = []
        for event in self._ws.events():
            if isinstance(event, Ping):
                reply += self._ws.send(event.response())
            elif isinstance(event, CloseConnection):
                raise ServiceUnavailable("the API closed the event stream"
                                         + (f": {event.reason}" if event.reason else ""))
            elif isinstance(event, TextMessage):
                self._size += len(event.data)
                if self._size > MAX_MESSAGE:
                    raise ServiceUnavailable("the event stream sent a message too large to be "
                                             "an event")
                self._text.append(event.data)
                if event.message_finished:
                    text, self._text, self._size = "".join(self._text), [], 0
                    message = json.loads(text)
                    if isinstance(message, dict):
                        out.append(message)
        return reply, out

    def silent(self) -> bytes:
        """Nothing arrived for :data:`IDLE_SECONDS`: a ping to send, or, when the last ping
        got nothing back either, the error that ends this connection."""
        if self._pinged:
            raise ServiceUnavailable("the event stream stopped answering")
        self._pinged = True
        return self._ws.send(Ping(payload=b"clauderon"))


class Resume:
    """Where a follower reconnects from, and how long it waits first (doubling to
    :data:`MAX_PAUSE`, back to :data:`FIRST_PAUSE` once connected)."""

    def __init__(self, after: int | None = None) -> None:
        self.after = after
        self.pause = FIRST_PAUSE

    def see(self, message: Message) -> None:
        if message.get("type") == "connected":
            self.pause = FIRST_PAUSE
            if self.after is None:
                # From now on: what "now" was for the API is where a reconnect resumes.
                self.after = int(message.get("latest") or 0)
        elif message.get("type") == "event":
            self.after = int(message["event"]["id"])

    def wait(self) -> float:
        """The pause before the next connection."""
        pause, self.pause = self.pause, min(self.pause * 2, MAX_PAUSE)
        return pause
