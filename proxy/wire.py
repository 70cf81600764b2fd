"""A thin trio adapter around h11: one side of an HTTP/1.1 conversation.

:class:`HttpSide` pairs a trio stream with an ``h11.Connection`` and adds the timeouts every
network wait needs; the server (``server.py``) holds one for the client and the upstream
pool (``upstream.py``) one per upstream connection. Writes can be queued and flushed
together (:meth:`HttpSide.queue`, :meth:`HttpSide.flush`), so a response head, a small
body and its end leave in one TLS record and one system call; ``relay.py`` flushes before
it waits for more input, so nothing queued is ever held back while the proxy waits.
"""

from __future__ import annotations

import h11
import trio

READ_SIZE = 256 * 1024
MAX_HEAD = 64 * 1024
#: Queued bytes beyond this are flushed at once (bounds memory per connection).
FLUSH_AT = 256 * 1024


class HttpSide:
    """One end of an HTTP/1.1 exchange: a stream and its h11 state machine."""

    __slots__ = ("_queued", "_size", "h11", "stream")

    def __init__(self, stream: trio.abc.Stream, role: type[h11.CLIENT] | type[h11.SERVER]) -> None:
        self.stream = stream
        self.h11 = h11.Connection(role, max_incomplete_event_size=MAX_HEAD)
        self._queued: list[bytes] = []
        self._size = 0

    def poll(self) -> object:
        """The next event already buffered, or ``h11.NEED_DATA``; never waits."""
        return self.h11.next_event()

    async def fill(self, patience: float) -> None:
        """Read once from the stream into h11; ``trio.TooSlowError`` after ``patience``."""
        # A bare cancel scope: ``trio.fail_after`` costs a generator per call on this path.
        with trio.CancelScope(deadline=trio.current_time() + patience) as scope:
            data = await self.stream.receive_some(READ_SIZE)
        if scope.cancelled_caught:
            raise trio.TooSlowError
        self.h11.receive_data(bytes(data))  # no copy: receive_some gives bytes here

    async def next_event(self, patience: float) -> object:
        """The next h11 event; raises ``trio.TooSlowError`` after ``patience`` of silence."""
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            await self.fill(patience)

    def queue(self, event: h11.Event) -> bool:
        """Encode ``event`` for the next flush; True when enough is queued to flush now."""
        data = self.h11.send(event)
        if data:
            self._queued.append(data)
            self._size += len(data)
        return self._size >= FLUSH_AT

    @property
    def queued(self) -> bool:
        return bool(self._queued)

    async def flush(self, patience: float) -> None:
        if not self._queued:
            return
        queued, self._queued, self._size = self._queued, [], 0
        data = queued[0] if len(queued) == 1 else b"".join(queued)
        with trio.CancelScope(deadline=trio.current_time() + patience) as scope:
            await self.stream.send_all(data)
        if scope.cancelled_caught:
            raise trio.TooSlowError

    async def send(self, event: h11.Event, patience: float) -> None:
        self.queue(event)
        await self.flush(patience)

    def reusable(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)
