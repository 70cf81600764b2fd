"""A thin trio adapter around h11: one side of an HTTP/1.1 conversation.

:class:`HttpSide` pairs a trio stream with an ``h11.Connection`` and adds the timeouts every
network wait needs; the server (``server.py``) holds one for the client and the upstream
pool (``upstream.py``) one per upstream connection. Writes can be queued and flushed
together (:meth:`HttpSide.queue`, :meth:`HttpSide.flush`), so a response head, a small
body and its end leave in one TLS record and one system call; ``relay.py`` flushes before
it waits for more input, so nothing queued is ever held back while the proxy waits. A
flush writes to the socket directly and awaits only what the kernel did not take at once:
most writes cost one system call and no pass of the scheduler.

Hang-ups. An HTTP/1.1 client sends nothing between the end of its request and the end of
the answer, so the proxy reads from it only when its next request is due. A client that
hangs up meanwhile (an agent interrupted mid-stream) would go unnoticed until the upstream
sends more -- for a silent stream or a slow answer, not before the read timeout -- and its
task, both sockets and both TLS states would stay that long. So a wait on the upstream
that is given ``watch=client`` wakes every :data:`HANGUP_CHECK` seconds of silence and
asks the kernel whether the client has hung up (``POLLRDHUP``: its FIN arrived, even
behind unread bytes such as a TLS close_notify), raising :class:`PeerHungUp` if so. That
costs nothing while data flows, and reads nothing from the client (a receive cut short
loses nothing: ``tls.py`` keeps what it had decrypted for the next one). nginx ends a
proxied request the same way when its client goes (``proxy_ignore_client_abort off``).
"""

from __future__ import annotations

import math
import select

import h11
import trio

from proxy.tls import TlsStream, write_now

READ_SIZE = 256 * 1024
MAX_HEAD = 64 * 1024
#: Queued bytes beyond this are flushed at once (bounds memory per connection).
FLUSH_AT = 256 * 1024
#: Seconds of upstream silence between two checks that the client is still there.
HANGUP_CHECK = 1.0
_HANGUP_EVENTS = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR


class PeerHungUp(Exception):
    """The watched side hung up while the proxy waited on the other one."""


def hung_up(stream: trio.abc.Stream) -> bool:
    """Whether the peer of ``stream`` has closed or reset it; never waits, reads nothing."""
    inner = stream.transport if isinstance(stream, TlsStream) else stream
    if not isinstance(inner, trio.SocketStream):
        return False
    fd = inner.socket.fileno()
    if fd < 0:  # closed on our side already
        return True
    poller = select.poll()
    poller.register(fd, _HANGUP_EVENTS)
    return bool(poller.poll(0))


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

    async def fill(self, patience: float, *, watch: HttpSide | None = None) -> None:
        """Read once from the stream into h11; ``trio.TooSlowError`` after ``patience``.

        With ``watch``, :class:`PeerHungUp` as soon as a check finds that side gone.
        """
        if patience == math.inf and watch is None:  # the caller's own scope bounds the wait
            data = await self.stream.receive_some(READ_SIZE)
            self.h11.receive_data(bytes(data))
            return
        now = trio.current_time()
        deadline = now + patience
        # A bare cancel scope: ``trio.fail_after`` costs a generator per call on this path.
        step = deadline if watch is None else min(deadline, now + HANGUP_CHECK)
        while True:
            with trio.CancelScope(deadline=step) as scope:
                data = await self.stream.receive_some(READ_SIZE)
            if not scope.cancelled_caught:
                break
            if step >= deadline:
                raise trio.TooSlowError
            if watch is not None and hung_up(watch.stream):
                raise PeerHungUp
            step = min(deadline, trio.current_time() + HANGUP_CHECK)
        self.h11.receive_data(bytes(data))  # no copy: receive_some gives bytes here

    async def next_event(self, patience: float, *, watch: HttpSide | None = None) -> object:
        """The next h11 event; raises ``trio.TooSlowError`` after ``patience`` of silence."""
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            await self.fill(patience, watch=watch)

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
        # What the socket takes at once goes without a wait or a pass of the scheduler (the
        # usual case), so the audit line that follows an answer's last write is written
        # before any other task runs; only the rest is awaited, under the deadline.
        stream = self.stream
        rest: memoryview | None
        if type(stream) is TlsStream:
            rest = stream.send_now(data)
        elif type(stream) is trio.SocketStream:
            sent = write_now(stream, data)
            rest = None if sent == len(data) else memoryview(data)[sent:]
        else:
            rest = memoryview(data)
        if rest is None:
            return
        with trio.CancelScope(deadline=trio.current_time() + patience) as scope:
            if type(stream) is TlsStream:
                await stream.send_rest(rest)
            else:
                await stream.send_all(rest)
        if scope.cancelled_caught:
            raise trio.TooSlowError

    async def send(self, event: h11.Event, patience: float) -> None:
        self.queue(event)
        await self.flush(patience)

    def reusable(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)
