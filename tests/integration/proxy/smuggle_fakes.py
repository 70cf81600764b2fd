"""Upstreams a smuggler hopes for, and a raw tunnel to talk to the proxy byte by byte.

:class:`ClFramingUpstream` is an HTTPS server that frames requests by ``Content-Length``
only and never reads ``Transfer-Encoding`` -- the kind of back end request smuggling
turns against a front end that reads ``Transfer-Encoding``. It answers every request with
JSON naming the connection it came on and echoing the request *body* (a paste service,
say); it never echoes headers, so a real credential can reach a client only if some
other request's bytes became a body. A body shorter than its ``Content-Length`` is
answered with what arrived by five seconds of silence (lenient, as the smuggled echo needs).
``/both-framings`` answers with ``Transfer-Encoding`` and ``Content-Length`` together.

:class:`CgiFramingUpstream` reads header names as CGI does (an underscore for a dash), so
``Transfer_Encoding: chunked`` frames a body for it where the proxy reads none.

:class:`StallingRefuser` answers 413 to an upload from its head alone and then neither
reads nor closes: only the proxy can end that exchange.

:class:`RawTunnel` is a CONNECT tunnel carrying whatever bytes a test writes, with h11
reading the answers.
"""

from __future__ import annotations

import json
import select
from dataclasses import dataclass

import trio
import trustme
from proxy_fakes import EarlyRefuser, Listener, Tunnel


@dataclass
class RawSeen:
    conn: int
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


class ClFramingUpstream(Listener):
    def __init__(self, ca: trustme.CA) -> None:
        super().__init__(ca)
        self.seen: list[RawSeen] = []
        self.connections = 0
        #: Every byte received, per connection (what "reached the upstream").
        self.received: dict[int, bytes] = {}

    async def _read(self, stream: trio.abc.Stream, cid: int, quiet: float = 30) -> bytes:
        with trio.move_on_after(quiet):
            data = bytes(await stream.receive_some(65536))
            self.received[cid] = self.received.get(cid, b"") + data
            return data if data else b"EOF"
        return b""

    async def _connection(self, stream: trio.abc.Stream) -> None:
        cid = self.connections
        self.connections += 1
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = await self._read(stream, cid)
                if data in (b"", b"EOF"):
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
            headers = [(n.strip().lower(), v.strip())
                       for n, _, v in (line.partition(":") for line in lines[1:])]
            lengths = [v for n, v in headers if n == "content-length"]
            length = int(lengths[0]) if lengths and lengths[0].isdigit() else 0
            while len(buf) < length:
                data = await self._read(stream, cid, quiet=5.0)
                if data in (b"", b"EOF"):
                    break
                buf += data
            body, buf = buf[:length], buf[length:]
            self.seen.append(RawSeen(conn=cid, method=method, target=target,
                                     headers=headers, body=body))
            await stream.send_all(self._answer(cid, target, body))

    @staticmethod
    def _answer(cid: int, target: str, body: bytes) -> bytes:
        if target == "/both-framings":
            return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                    b"5\r\nhello\r\n0\r\n\r\n")
        text = json.dumps({"conn": cid, "target": target,
                           "body": body.decode("latin-1")}).encode()
        return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(text), text))


def peer_gone(stream: trio.SSLStream[trio.SocketStream]) -> bool:
    """Whether the peer closed the connection, without reading a byte of what it sent."""
    poller = select.poll()
    poller.register(stream.transport_stream.socket.fileno(),
                    select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(0))


class StallingRefuser(EarlyRefuser):
    """The early 413, then neither reading nor closing: only the proxy can let go."""

    CLOSE = b""

    def __init__(self, ca: trustme.CA) -> None:
        super().__init__(ca)
        #: Set once the proxy closed a connection this server never read to the end.
        self.released = trio.Event()

    async def after(self, stream: trio.abc.Stream) -> None:
        assert isinstance(stream, trio.SSLStream)
        with trio.move_on_after(3600):  # bounded, whatever happens
            while not peer_gone(stream):
                await trio.sleep(0.05)
            self.released.set()


class RawTunnel(Tunnel):
    """A CONNECT tunnel through the proxy that writes raw bytes (and reads with h11)."""

    async def send(self, raw: bytes) -> None:
        await self.tls.send_all(raw)

    async def closed(self) -> bool:
        """Whether the proxy closed the tunnel (reads until it does or data arrives)."""
        try:
            data = await self.tls.receive_some(65536)
        except trio.BrokenResourceError:
            return True
        return data == b""


class CgiFramingUpstream(Listener):
    """An HTTPS back end that reads header names as CGI does (``Transfer_Encoding`` and
    ``Transfer-Encoding`` are both ``HTTP_TRANSFER_ENCODING``) and frames a request by
    ``Transfer-Encoding: chunked`` over ``Content-Length``, as RFC 9112 says. Every request
    it parses is kept in ``seen`` with its ``Authorization``; each gets a small JSON answer.
    ``bodiless``: methods whose body it does not read (a server that never expects one: the
    body is the next request's beginning).
    """

    def __init__(self, ca: trustme.CA, bodiless: frozenset[str] = frozenset()) -> None:
        super().__init__(ca)
        self.seen: list[RawSeen] = []
        self.bodiless = bodiless

    async def _connection(self, stream: trio.abc.Stream) -> None:
        buf = b""

        async def more() -> bool:
            nonlocal buf
            data = bytes(await stream.receive_some(65536))
            buf += data
            return bool(data)

        while True:
            while b"\r\n\r\n" not in buf:
                if not await more():
                    return
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
            headers = [(n.strip().lower().replace("_", "-"), v.strip())
                       for n, _, v in (line.partition(":") for line in lines[1:])]
            names = dict(headers)
            body = b""
            if names.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    while b"\r\n" not in buf:
                        if not await more():
                            return
                    size_line, buf = buf.split(b"\r\n", 1)
                    size = int(size_line.split(b";")[0], 16)
                    while len(buf) < size + 2:
                        if not await more():
                            return
                    body, buf = body + buf[:size], buf[size + 2:]
                    if size == 0:
                        break
            else:
                length = 0 if method in self.bodiless else int(
                    names.get("content-length", "0") or "0")
                while len(buf) < length:
                    if not await more():
                        return
                body, buf = buf[:length], buf[length:]
            self.seen.append(RawSeen(conn=0, method=method, target=target, headers=headers,
                                     body=body))
            text = json.dumps({"target": target}).encode()
            await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                  b"content-length: %d\r\n\r\n%s" % (len(text), text))
