"""Thin trio adapters around h11: one side of an HTTP/1.1 conversation, and a replay stream.

:class:`HttpSide` pairs a trio stream with an ``h11.Connection`` and adds the timeouts every
network wait needs; the server (``server.py``) holds one for the client and the upstream
pool (``upstream.py``) one per upstream connection. :class:`PrefixedStream` hands back bytes
h11 had already read past a CONNECT (a pipelined TLS ClientHello) before reading the socket.
"""

from __future__ import annotations

import h11
import trio

READ_SIZE = 65536
MAX_HEAD = 64 * 1024


class PrefixedStream(trio.abc.Stream):
    def __init__(self, prefix: bytes, inner: trio.abc.Stream) -> None:
        self._prefix = prefix
        self._inner = inner

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            return data
        return bytes(await self._inner.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._inner.aclose()


class HttpSide:
    """One end of an HTTP/1.1 exchange: a stream and its h11 state machine."""

    def __init__(self, stream: trio.abc.Stream, role: type[h11.CLIENT] | type[h11.SERVER]) -> None:
        self.stream = stream
        self.h11 = h11.Connection(role, max_incomplete_event_size=MAX_HEAD)

    async def next_event(self, patience: float) -> object:
        """The next h11 event; raises ``trio.TooSlowError`` after ``patience`` of silence."""
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            with trio.fail_after(patience):
                data = await self.stream.receive_some(READ_SIZE)
            self.h11.receive_data(bytes(data))

    async def send(self, event: h11.Event, patience: float) -> None:
        data = self.h11.send(event)
        if data:
            with trio.fail_after(patience):
                await self.stream.send_all(data)

    def reusable(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)
