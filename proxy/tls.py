"""A lean TLS stream over a trio socket: big reads, one write per send, no per-call locks.

``trio.SSLStream`` hands back one TLS record (at most 16 KiB) per ``receive_some`` and
guards every call with conflict detectors, which costs a relay several round trips through
the event loop per 64 KiB moved. :class:`TlsStream` drives an ``ssl.SSLObject`` over
memory BIOs itself: a receive reads what the socket has (up to :data:`RECV_SIZE`) and
decrypts every whole record in it at once, and a send encrypts the whole buffer into as
many records as it needs and writes them with one system call when the socket takes them
(:meth:`TlsStream.send_now`; only a rest is awaited); a receive reads the socket directly
and waits only when it is empty. The server (``server.py``, client side, after a CONNECT)
and the pool (``upstream.py``, upstream side) use it; both read and write from at most one
task each at a time, the rule the ``pipe`` of ``relay.py`` keeps too. Failures surface as
``trio.BrokenResourceError`` with the ``ssl`` error as ``__cause__``, the same contract as
``trio.SSLStream``. A peer that hangs up without a ``close_notify`` reads as a clean end
of stream (HTTPS-compatible).
"""

from __future__ import annotations

import contextlib
import errno
import os
import ssl

import trio

RECV_SIZE = 256 * 1024
READ_MAX = 256 * 1024
#: Reads in a row that found data at once, after which one yields to the scheduler anyway.
YIELD_EVERY = 8


def write_now(transport: trio.SocketStream, data: bytes) -> int:
    """How much of ``data`` the socket took at once (0: none, or an error that the awaited
    ``send_all`` of the rest then raises as trio would)."""
    fd = transport.socket.fileno()
    if fd < 0:
        return 0
    try:
        return os.write(fd, data)
    except OSError:  # BlockingIOError (full), or a broken connection: left to send_all
        return 0


class TlsStream(trio.abc.Stream):
    def __init__(
        self,
        transport: trio.SocketStream,
        context: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        initial: bytes = b"",
    ) -> None:
        self.transport = transport
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_side=server_side,
                                     server_hostname=server_hostname)
        if initial:
            self._in.write(initial)
        self._eof = False
        #: Decrypted bytes a cancelled receive could not return yet (the next one does).
        self._held: bytes | None = None
        self._sending = False
        #: Reads in a row that found data without waiting (see ``_fill``).
        self._streak = 0
        #: Set while a receive writes a key-update answer; a send waits for it.
        self._answering: trio.Event | None = None

    async def _flush(self) -> None:
        data = self._out.read()
        if data:
            await self.transport.send_all(data)

    async def _fill(self) -> bool:
        """Read from the socket into the TLS engine; False at the end of the stream.

        The socket is read directly and waited on only when it has nothing: trio's own
        receive adds a trip through the scheduler to every read that finds data. A read
        that never waits never yields either, so after :data:`YIELD_EVERY` such reads in a
        row the next one yields first (a relay whose two sides keep up must still let
        others run, and notice a cancellation). Nothing is ever read and then cancelled:
        the yield comes before the read, and the wait only when nothing was read.
        """
        if self._streak >= YIELD_EVERY:
            # Before the read: a cancellation here has consumed nothing.
            self._streak = 0
            await trio.lowlevel.checkpoint()
        while True:
            fd = self.transport.socket.fileno()
            if fd < 0:
                raise trio.ClosedResourceError("the socket was closed")
            try:
                data = os.read(fd, RECV_SIZE)
            except BlockingIOError:
                self._streak = 0
                await trio.lowlevel.wait_readable(fd)
                continue
            except OSError as exc:
                if exc.errno in (errno.EBADF, errno.ENOTSOCK):
                    raise trio.ClosedResourceError("the socket was closed") from exc
                raise trio.BrokenResourceError(f"socket error: {exc}") from exc
            break
        if not data:
            return False
        self._in.write(data)
        self._streak += 1
        return True

    async def do_handshake(self) -> None:
        while True:
            try:
                self._obj.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    raise trio.BrokenResourceError(
                        "peer closed during the TLS handshake") from None
                continue
            except ssl.SSLError as exc:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._flush()  # the alert tells the peer why
                raise trio.BrokenResourceError(f"TLS handshake failed: {exc}") from exc
            await self._flush()
            return

    def selected_alpn_protocol(self) -> str | None:
        return self._obj.selected_alpn_protocol()

    def _drain(self, limit: int) -> bytes | None:
        """Every whole record already received, decrypted; None when there is none."""
        chunks: list[bytes] = []
        size = 0
        try:
            while size < limit:
                # Nothing received and nothing decrypted left: a read could only raise
                # SSLWantReadError, which costs more than asking (twice per request).
                if not self._in.pending and not self._obj.pending():
                    break
                data = self._obj.read(limit - size)
                if not data:
                    self._eof = True
                    break
                chunks.append(data)
                size += len(data)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            self._eof = True
        except ssl.SSLError as exc:
            if not chunks:
                raise trio.BrokenResourceError(f"TLS error: {exc}") from exc
        if not chunks:
            return b"" if self._eof else None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        limit = max_bytes or READ_MAX
        while True:
            if self._held is not None:
                held, self._held = self._held, None
                return held
            if self._eof:
                return b""
            data = self._drain(limit)
            if self._out.pending and not self._sending:  # a key update or ticket answer
                self._answering = answering = trio.Event()
                self._held = data  # kept if this flush is cancelled (wire.py cuts waits short)
                try:
                    await self._flush()
                finally:
                    self._answering = None
                    answering.set()
                self._held = None
            if data is not None:
                return data
            if not await self._fill():
                self._eof = True  # no close_notify: treated as a clean end (HTTPS-compatible)
                return b""

    def send_now(self, data: bytes | bytearray | memoryview) -> memoryview | None:
        """Encrypt ``data`` and write what the socket takes at once, without waiting and
        without a trip through the event loop; what is left for :meth:`send_rest`, or
        None when everything went (the usual case: a kernel buffer has room).

        The relay yields at every read anyway; a send that need not wait saves one pass of
        the scheduler (and a cancel scope) per write.
        """
        try:
            self._obj.write(data)
        except ssl.SSLError as exc:
            raise trio.BrokenResourceError(f"TLS error: {exc}") from exc
        out = self._out.read()
        if self._sending or self._answering is not None:
            return memoryview(out)  # bytes of another send are under way: queue behind them
        sent = write_now(self.transport, out)
        return None if sent == len(out) else memoryview(out)[sent:]

    async def send_rest(self, rest: memoryview) -> None:
        """The part of a :meth:`send_now` the socket did not take at once."""
        self._sending = True
        try:
            if self._answering is not None:  # rare: a receive is writing a key-update answer
                await self._answering.wait()
            await self.transport.send_all(rest)
        finally:
            self._sending = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            await trio.lowlevel.checkpoint()
            return
        rest = self.send_now(data)
        if rest is not None:
            await self.send_rest(rest)

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Send a ``close_notify`` if that is quick, then close the socket."""
        try:
            with trio.move_on_after(0.5):
                with contextlib.suppress(ssl.SSLError, trio.BrokenResourceError,
                                         trio.ClosedResourceError, OSError):
                    with contextlib.suppress(ssl.SSLWantReadError):  # not waiting for theirs
                        self._obj.unwrap()
                    await self._flush()
        finally:
            await self.transport.aclose()
