"""Fake upstreams on loopback for the proxy tests: real TLS (trustme), real HTTP/1.1 (h11).

:class:`FakeUpstream` stands in for api.anthropic.com, api.github.com and friends: it
records every request it receives (so tests can check which headers arrived) and answers
by path: ``/sse`` holds an event stream open until the test acknowledges the first event,
``/big`` streams a large body, ``/trailers`` answers chunked with trailers (and records
the request's), ``/echo-head``, ``/echo-range``, ``/echo-split``, ``/ws-echo``,
``/echo-broken``, ``/echo-encoded`` and ``/echo-encoded-more`` send the request's
``Authorization`` back (in a header, as the body or the range of it asked for, a byte at a
time in the body and a trailer, over an upgraded connection, in a head no parser takes,
re-encoded as error pages quote it, and as forms, double escapes, hex and base64 spell it),
``/ws-fragments``, ``/ws-slow`` and ``/ws-deflate``
send it back in a WebSocket message (split over two frames round a ping; one frame in two
writes half a second apart; compressed), ``/ws``
upgrades and echoes what it reads, upper-cased, a text frame a read, ``/ws-close``
upgrades, closes and hangs up, ``/oauth/token`` answers a token refresh, a GET of a path
in :attr:`FakeUpstream.github` answers what GitHub would, ``/silent-stream`` (one event) and
``/silent-head`` (nothing at all) then wait, silent, for the proxy to hang up, ``/trickle``
sends the first part of its answer and the rest once the test acknowledges it.
:class:`EarlyRefuser` answers 413 to an upload after its head and hangs up without reading
the body.
:class:`GitServer` serves real repositories with ``git http-backend`` (CGI) and accepts
only the Basic credential the proxy is meant to inject.
"""

from __future__ import annotations

import base64
import html
import json
import ssl
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.entities import html5
from pathlib import Path
from typing import Self
from urllib.parse import quote, quote_plus

import h11
import trio
import trustme

from tests.support.fake_github import git_backend


@dataclass
class Seen:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "::1", "localhost").configure_cert(ctx)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def read_head(stream: trio.abc.Stream, size: int = 65536) -> bytes:
    """Bytes up to the end of a head (``size`` at a time); b"" if the peer hung up first."""
    head = b""
    while b"\r\n\r\n" not in head:
        data = await stream.receive_some(size)
        if not data:
            return b""
        head += data
    return head


async def chunks(count: int, byte: bytes = b"z") -> AsyncIterator[bytes]:
    """An upload of ``count`` 64 KiB chunks, of unknown length (sent chunked)."""
    for _ in range(count):
        yield byte * 65536


class Listener:
    """An HTTPS server on loopback, port 0; ``serve`` hands each connection to ``_connection``
    (and closes it after)."""

    https_compatible = False

    def __init__(self, ca: trustme.CA, host: str = "127.0.0.1") -> None:
        self.ctx = server_context(ca)
        self.host = host
        self.port = 0

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_ssl_over_tcp_listeners(
            0, self.ctx, host=self.host, https_compatible=self.https_compatible)
        self.port = listeners[0].transport_listener.socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._serve_one, listeners)

    async def _serve_one(self, stream: trio.abc.Stream) -> None:
        """One connection: a peer that drops it, speaks HTTP wrong, or keeps it idle for
        30 s (the proxy's pooled connection while a test's git works for longer), just
        ends it."""
        try:
            await self._connection(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError,
                trio.TooSlowError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def _connection(self, stream: trio.abc.Stream) -> None:
        raise NotImplementedError


class _Base(Listener):
    https_compatible = True

    def __init__(self, ca: trustme.CA, host: str = "127.0.0.1") -> None:
        super().__init__(ca, host)
        self.seen: list[Seen] = []
        #: Connections the proxy opened to this upstream (a kept one is counted once).
        self.connections = 0

    async def _connection(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        while True:
            request = await self._next(stream, conn)
            if not isinstance(request, h11.Request):
                return
            body = b""
            while True:
                event = await self._next(stream, conn)
                if isinstance(event, h11.Data):
                    body += event.data
                else:
                    break
            seen = Seen(
                method=request.method.decode(),
                target=request.target.decode(),
                headers=[(k.decode(), v.decode()) for k, v in request.headers],
                body=body,
                trailers=[(k.decode(), v.decode()) for k, v in event.headers]
                if isinstance(event, h11.EndOfMessage) else [],
            )
            self.seen.append(seen)
            if not await self.answer(stream, conn, seen):
                return
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
            else:
                return

    @staticmethod
    async def _next(stream: trio.abc.Stream, conn: h11.Connection) -> object:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            with trio.fail_after(30):
                conn.receive_data(await stream.receive_some(65536))

    @staticmethod
    async def send(stream: trio.abc.Stream, conn: h11.Connection, *events: h11.Event) -> None:
        for event in events:
            data = conn.send(event)
            if data:
                await stream.send_all(data)

    async def reply(self, stream: trio.abc.Stream, conn: h11.Connection, status: int,
                    body: bytes, ctype: str = "application/json",
                    extra: list[tuple[str, str]] | None = None) -> None:
        headers = [("content-type", ctype), ("content-length", str(len(body))), *(extra or [])]
        await self.send(stream, conn, h11.Response(status_code=status, headers=headers),
                        h11.Data(data=body), h11.EndOfMessage())

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        raise NotImplementedError


class FakeUpstream(_Base):
    """Any HTTPS API: echoes what it got, streams, upgrades, refreshes tokens."""

    def __init__(self, ca: trustme.CA, host: str = "127.0.0.1") -> None:
        super().__init__(ca, host)
        self.sse_ack = trio.Event()
        self.trickle_ack = trio.Event()
        #: Set when a ``/ws`` client's end of the pipe reached the upstream as an EOF.
        self.ws_closed = trio.Event()
        self.refresh_answer: dict[str, str] = {}
        #: Set when the proxy ended a ``/silent-*`` exchange by closing the connection.
        self.silent_closed = {"/silent-stream": trio.Event(), "/silent-head": trio.Event()}
        #: GitHub's answers to a GET, by path (a pull request, a comment; None: 404): what
        #: the proxy asks before a session's write to a pull request goes on.
        self.github: dict[str, object] = {}
        #: GitHub's answers about node ids, by id (None: names nothing): what the proxy asks
        #: (a GraphQL ``nodes`` question) before a session's GraphQL write.
        self.nodes: dict[str, object] = {}

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        # ``x-fake-path`` names the behaviour where the request's own path must be one the
        # proxy lets through (a GitHub write a session may make).
        path = (seen.header("x-fake-path") or [seen.target.split("?")[0]])[0]
        if path == "/sse":
            await self.send(stream, conn, h11.Response(
                status_code=200, headers=[("content-type", "text/event-stream")]))
            await self.send(stream, conn, h11.Data(data=b"event: first\ndata: 1\n\n"))
            # The stream stays open until the client proves it got the first event.
            with trio.fail_after(20):
                await self.sse_ack.wait()
            await self.send(stream, conn, h11.Data(data=b"event: second\ndata: 2\n\n"),
                            h11.EndOfMessage())
            return True
        if path == "/trickle":
            await self.send(stream, conn, h11.Response(
                status_code=200, headers=[("content-length", "12")]),
                h11.Data(data=b"first"))
            with trio.fail_after(20):  # the rest once the test saw what it looks for
                await self.trickle_ack.wait()
            await self.send(stream, conn, h11.Data(data=b"+second"), h11.EndOfMessage())
            return True
        if path in self.silent_closed:
            if path == "/silent-stream":
                await self.send(stream, conn, h11.Response(
                    status_code=200, headers=[("content-type", "text/event-stream")]))
                await self.send(stream, conn, h11.Data(data=b"event: first\ndata: 1\n\n"))
            with trio.fail_after(30):
                while await stream.receive_some(65536):
                    pass
            self.silent_closed[path].set()
            return False
        if path == "/big":
            size = int(seen.target.split("n=")[1])
            await self.send(stream, conn, h11.Response(
                status_code=200, headers=[("content-length", str(size))]))
            chunk = b"x" * 65536
            left = size
            while left:
                await self.send(stream, conn, h11.Data(data=chunk[: min(left, len(chunk))]))
                left -= min(left, len(chunk))
            await self.send(stream, conn, h11.EndOfMessage())
            return True
        if path in ("/ws", "/ws-close"):
            key = seen.header("upgrade")
            await self.send(stream, conn, h11.InformationalResponse(
                status_code=101, headers=[("connection", "upgrade"), ("upgrade", key[0])]))
            if path == "/ws-close":
                await stream.send_all(ws_frame(0x8, b"bye"))
                return False
            # After the 101 the bytes are ours: echo them back upper-cased, in a frame.
            while True:
                with trio.fail_after(20):
                    data = await stream.receive_some(65536)
                if not data:
                    self.ws_closed.set()
                    return False
                await stream.send_all(ws_frame(0x1, bytes(data).upper()))
        if path == "/trailers":
            await self.send(stream, conn, h11.Response(status_code=200, headers=[
                ("transfer-encoding", "chunked"), ("trailer", "x-checksum")]),
                h11.Data(data=b"streamed"), h11.EndOfMessage(headers=[
                    ("x-checksum", "sha256=abc"), ("content-length", "999")]))
            return True
        if path in ECHOES:
            await ECHOES[path](self, stream, conn, seen)
            return not path.startswith("/ws-") and path != "/echo-broken"
        if seen.method == "GET" and path in self.github:
            found = self.github[path]
            await self.reply(stream, conn, 404 if found is None else 200,
                             json.dumps(found or {"message": "Not Found"}).encode())
            return True
        if path == "/graphql" and b"nodes(ids:" in seen.body:
            ids = json.loads(seen.body)["variables"]["ids"]
            found = [self.nodes.get(i) for i in ids]
            errors = [{"type": "NOT_FOUND", "path": ["nodes", n]}
                      for n, node in enumerate(found) if node is None]
            await self.reply(stream, conn, 200, json.dumps(
                {"data": {"nodes": found}, **({"errors": errors} if errors else {})}).encode())
            return True
        if path == "/oauth/token":
            await self.reply(stream, conn, 200, json.dumps(self.refresh_answer).encode())
            return True
        body = json.dumps({
            "method": seen.method, "target": seen.target,
            "headers": seen.headers, "body_length": len(seen.body),
        }).encode()
        await self.reply(stream, conn, 200, body)
        return True


async def _echo_head(fake: _Base, stream: trio.abc.Stream, conn: h11.Connection,
                     seen: Seen) -> None:
    """The request's Authorization in a header and in the status line's reason."""
    auth = "".join(seen.header("authorization"))
    await fake.send(stream, conn, h11.Response(
        status_code=200, reason=f"OK for {auth}".encode(),
        headers=[("content-type", "text/plain"), ("content-length", "3"), ("x-echo", auth)]),
        h11.Data(data=b"ok\n"), h11.EndOfMessage())


async def _echo_range(fake: _Base, stream: trio.abc.Stream, conn: h11.Connection,
                      seen: Seen) -> None:
    """The request's Authorization as the body, or the part of it a ``Range`` asks for."""
    body = "".join(seen.header("authorization")).encode()
    if ranges := seen.header("range"):
        first, _, last = ranges[0].removeprefix("bytes=").partition("-")
        part = body[int(first): int(last) + 1]
        await fake.send(stream, conn, h11.Response(status_code=206, headers=[
            ("content-range", f"bytes {first}-{last}/{len(body)}"),
            ("content-length", str(len(part)))]), h11.Data(data=part), h11.EndOfMessage())
        return
    await fake.reply(stream, conn, 200, body, "text/plain")


async def _echo_split(fake: _Base, stream: trio.abc.Stream, conn: h11.Connection,
                      seen: Seen) -> None:
    """The request's Authorization in a chunked body, one byte a write, a pause between,
    and again in a trailer."""
    await fake.send(stream, conn, h11.Response(status_code=200, headers=[
        ("content-type", "application/json"), ("transfer-encoding", "chunked")]),
        h11.Data(data=b'{"seen": "'))
    auth = "".join(seen.header("authorization"))
    for byte in auth.encode():
        await fake.send(stream, conn, h11.Data(data=bytes([byte])))
        await trio.sleep(0.002)
    await fake.send(stream, conn, h11.Data(data=b'"}\n'),
                    h11.EndOfMessage(headers=[("x-echo-trailer", auth)]))


async def _ws_echo(fake: _Base, stream: trio.abc.Stream, conn: h11.Connection,
                   seen: Seen) -> None:
    """Upgrades, then reports the handshake's Authorization in a text frame of two writes."""
    await fake.send(stream, conn, h11.InformationalResponse(status_code=101, headers=[
        ("connection", "upgrade"), ("upgrade", seen.header("upgrade")[0])]))
    auth = "".join(seen.header("authorization")).encode()
    frame = ws_frame(0x1, b"handshake: " + auth + b"\n")
    await stream.send_all(frame[: len(frame) // 2])
    await trio.sleep(0.01)
    await stream.send_all(frame[len(frame) // 2:])
    with trio.fail_after(30):
        while await stream.receive_some(65536):
            pass


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """One unmasked WebSocket frame, as a server sends it."""
    size = len(payload)
    length = bytes([size]) if size < 126 else bytes([126]) + size.to_bytes(2, "big")
    return bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode]) + length + payload


async def _ws_fragments(fake: _Base, stream: trio.abc.Stream, conn: h11.Connection,
                        seen: Seen) -> None:
    """Upgrades, then reports the handshake's Authorization in one text message of two
    frames, a ping between them: no byte run of the wire holds it, the message does."""
    await fake.send(stream, conn, h11.InformationalResponse(status_code=101, headers=[
        ("connection", "upgrade"), ("upgrade", "websocket")]))
    auth = "".join(seen.header("authorization")).encode()
    half = len(auth) // 2
    await stream.send_all(ws_frame(0x1, b"handshake: " + auth[:half], fin=False)
                          + ws_frame(0x9, b"ping") + ws_frame(0x0, auth[half:] + b"\n"))
    with trio.fail_after(30):
        while await stream.receive_some(65536):
            pass


async def _ws_slow(fake: _Base, stream: trio.abc.Stream, conn: h11.Connection,
                   seen: Seen) -> None:
    """Upgrades, then reports the handshake's Authorization in one text frame whose second
    half comes a moment (longer than any short hold) after its first, as a busy network
    may deliver it."""
    await fake.send(stream, conn, h11.InformationalResponse(status_code=101, headers=[
        ("connection", "upgrade"), ("upgrade", "websocket")]))
    auth = "".join(seen.header("authorization")).encode()
    frame = ws_frame(0x1, b"handshake: " + auth + b"\n")
    cut = len(frame) - len(auth) // 2
    await stream.send_all(frame[:cut])
    await trio.sleep(0.5)
    await stream.send_all(frame[cut:])
    with trio.fail_after(30):
        while await stream.receive_some(65536):
            pass


async def _ws_deflate(fake: _Base, stream: trio.abc.Stream, conn: h11.Connection,
                      seen: Seen) -> None:
    """Upgrades naming permessage-deflate (which the agent's client offered, whatever
    went up), then reports the handshake's Authorization in a compressed message."""
    await fake.send(stream, conn, h11.InformationalResponse(status_code=101, headers=[
        ("connection", "upgrade"), ("upgrade", "websocket"),
        ("sec-websocket-extensions", "permessage-deflate")]))
    auth = "".join(seen.header("authorization")).encode()
    deflate = zlib.compressobj(wbits=-15)
    payload = deflate.compress(b"handshake: " + auth + b"\n") + deflate.flush(zlib.Z_SYNC_FLUSH)
    await stream.send_all(ws_frame(0x1, payload[:-4], rsv1=True))
    with trio.fail_after(30):
        while await stream.receive_some(65536):
            pass


def echo_forms(value: str) -> dict[str, str]:
    """``value`` as an upstream's error quotes what it got, re-encoded: in a JSON string
    (``\\/`` as PHP writes a slash, ``\\u002B`` as .NET writes a plus, every character as
    ``\\uXXXX``), URL-encoded (upper and lower hex, ``+`` for a space), HTML-escaped (by hex
    and decimal character references, by name, and by HTML5's names for every ASCII
    character that has one)."""
    def every(pattern: str) -> str:
        return "".join(c if c.isalnum() else pattern.format(ord(c)) for c in value)
    return {
        "json-slash": json.dumps(value)[1:-1].replace("/", "\\/"),
        "json-dotnet": "".join(f"\\u{ord(c):04X}" if c in "+<>&'=" else c
                               for c in json.dumps(value)[1:-1]),
        "json-every": "".join(f"\\u{ord(c):04x}" for c in value),
        "url": quote(value, safe=""),
        "url-lower": every("%{:02x}"),
        "url-plus": quote_plus(value),
        "html-hex": every("&#x{:X};"),
        "html-decimal": every("&#{};"),
        "html-named": html.escape(value),
        "html5-named": "".join(f"&{HTML5_NAME[c]};" if c in HTML5_NAME else c for c in value),
    }


#: A name HTML5 gives each ASCII character that has one (``&sol;``, ``&plus;``, ``&equals;``),
#: as PHP's ``htmlentities`` writes them in HTML5 mode.
HTML5_NAME = {char: name[:-1] for name, char in sorted(html5.items(), reverse=True)
              if name.endswith(";") and len(char) == 1 and ord(char) < 0x80}


async def _echo_encoded(fake: _Base, stream: trio.abc.Stream, conn: h11.Connection,
                        seen: Seen) -> None:
    """An HTML error page quoting the request's Authorization in every :func:`echo_forms`
    (a Basic one decoded to ``user:token`` too), one a line."""
    auth = "".join(seen.header("authorization"))
    quoted = [auth]
    if auth.startswith("Basic "):
        quoted.append(base64.b64decode(auth.removeprefix("Basic ")).decode())
    lines = [f"<p>{name}: {form}</p>\n" for value in quoted
             for name, form in echo_forms(value).items()]
    await fake.reply(stream, conn, 401, "".join(lines).encode(), "text/html")


async def _echo_broken(fake: _Base, stream: trio.abc.Stream, conn: h11.Connection,
                       seen: Seen) -> None:
    """A head no HTTP/1.1 parser takes, quoting the request's Authorization."""
    auth = "".join(seen.header("authorization")).encode()
    await stream.send_all(b"HTTP/1.1 200 OK\r\nno colon here " + auth + b"\r\n\r\n")


def echo_forms_more(value: str) -> dict[str, str]:
    """``value`` as an echo re-encodes it beyond :func:`echo_forms`: as a form writes or
    reads it (a space as ``+``; a ``+`` read as a space), escaped twice (a URL in a URL, a
    JSON string holding JSON as .NET and PHP write it, an HTML reference escaped again), a
    URL in a URL in a URL (escaped three times), in hex (either case) and in base64 (both
    alphabets, after none, one and two bytes of something else, with and without its
    padding)."""
    def every(pattern: str, text: str) -> str:
        return "".join(c if c.isalnum() else pattern.format(ord(c)) for c in text)
    dotnet = "".join(f"\\u{ord(c):04X}" if not c.isalnum() else c for c in value)
    php = json.dumps(value)[1:-1].replace("/", "\\/")
    forms = {
        "form-plus": quote_plus(value),
        "form-read": value.replace("+", " "),
        "url-twice": quote(quote(value, safe=""), safe=""),
        "url-thrice": quote(quote(quote(value, safe=""), safe=""), safe=""),
        "json-twice-dotnet": json.dumps(dotnet)[1:-1],
        "json-twice-php": json.dumps(php)[1:-1].replace("/", "\\/"),
        "html-twice": html.escape(every("&#x{:X};", value)),
        "hex": value.encode().hex(),
        "hex-upper": value.encode().hex().upper(),
    }
    for skip in range(3):
        data = b"{" * skip + value.encode()
        for alphabet, encode in (("std", base64.b64encode), ("url", base64.urlsafe_b64encode)):
            forms[f"base64-{alphabet}-{skip}"] = encode(data).decode()
            forms[f"base64-{alphabet}-{skip}-bare"] = encode(data).decode().rstrip("=")
    return forms


async def _echo_encoded_more(fake: _Base, stream: trio.abc.Stream, conn: h11.Connection,
                             seen: Seen) -> None:
    """A page quoting the request's Authorization in every :func:`echo_forms_more`, one a
    line, as the ``type`` the query names (``text/html`` when none)."""
    auth = "".join(seen.header("authorization"))
    ctype = seen.target.partition("type=")[2] or "text/html"
    lines = [f"<p>{name}: {form}</p>\n" for name, form in echo_forms_more(auth).items()]
    await fake.reply(stream, conn, 401, "".join(lines).encode(), ctype)


def echo_forms_folded(value: str) -> dict[str, bytes]:
    """``value`` as an echo folds it: its hex in mixed case, the value upper- and
    lower-cased, in UTF-16 (each byte after or before a NUL, with and without a byte-order
    mark), every character as an upper-case ``\\u00XX``, and its
    base64 wrapped as MIME (76 characters a line) and PEM (64) with ``\\n`` and
    ``\\r\\n``, and with its breaks escaped (:data:`WRAPPED_ESCAPED`), after each of 0
    to 59 bytes of something else."""
    raw = value.encode()
    forms = {
        "hex-mixed": "".join(c.upper() if i % 3 else c
                             for i, c in enumerate(raw.hex())).encode(),
        "upper": value.upper().encode(),
        "lower": value.lower().encode(),
        "utf-16-le": value.encode("utf-16-le"),
        "utf-16-be": value.encode("utf-16-be"),
        "utf-16-le-bom": b"\xff\xfe" + value.encode("utf-16-le"),
        "utf-16-be-bom": b"\xfe\xff" + value.encode("utf-16-be"),
        "json-every": "".join(f"\\u{ord(c):04X}" for c in value).encode(),
    }
    for width, eol in ((76, b"\r\n"), (76, b"\n"), (64, b"\n"), (64, b"\r\n")):
        for skip in range(60):
            data = base64.b64encode(b"{" * skip + raw)
            lines = [data[i:i + width] for i in range(0, len(data), width)]
            forms[f"base64-{width}-{eol!r}-{skip}"] = eol.join(lines)
    # Wrapped with its line breaks escaped or bent: in a JSON string as GitHub's contents
    # API returns a file (60 a line, a JSON ``\\n``), percent- and HTML-escaped, a CR
    # alone, each line indented after its break, an HTML line break as a page renders a
    # text's lines (``<br>``; PHP's ``nl2br`` writes ``<br />`` before each break).
    for name, width, eol in WRAPPED_ESCAPED:
        for skip in range(60):
            data = base64.b64encode(b"{" * skip + raw)
            lines = [data[i:i + width] for i in range(0, len(data), width)]
            joined = eol.join(lines)
            if name == "json-slashed":  # its ``/`` escaped too, as PHP's encoder writes it
                joined = joined.replace(b"/", b"\\/")
            forms[f"base64-{name}-{skip}"] = b'"' + joined + b'"'
    return forms


#: How :func:`echo_forms_folded` wraps base64 with its breaks escaped: a name, the width
#: and the break.
WRAPPED_ESCAPED = (("json", 60, b"\\n"), ("json-slashed", 60, b"\\n"),
                   ("json-crlf", 76, b"\\r\\n"), ("url", 76, b"%0A"),
                   ("html", 64, b"&#10;"), ("cr", 76, b"\r"), ("indented", 64, b"\n    "),
                   ("html-br", 76, b"<br>"), ("xhtml-br", 64, b"<br/>"),
                   ("nl2br", 76, b"<br />\n"))


#: What separates the forms of :func:`echo_forms_folded` in the answer that quotes them.
FOLDED_SEP = b"\n--\n"


async def _echo_encoded_folded(fake: _Base, stream: trio.abc.Stream, conn: h11.Connection,
                               seen: Seen) -> None:
    """A page quoting the request's Authorization in every :func:`echo_forms_folded`, in
    order, :data:`FOLDED_SEP` between them."""
    auth = "".join(seen.header("authorization"))
    body = FOLDED_SEP.join(echo_forms_folded(auth).values())
    await fake.reply(stream, conn, 401, body, "text/plain")


async def _echo_utf16(fake: _Base, stream: trio.abc.Stream, conn: h11.Connection,
                      seen: Seen) -> None:
    """A JSON answer in UTF-16 (the ``codec`` the query names, a byte-order mark before it
    when it names ``bom``) quoting the request's Authorization with every character escaped
    as ``\\uXXXX``, as a .NET service writes it with ``Encoding.Unicode``."""
    auth = "".join(seen.header("authorization"))
    query = seen.target.partition("?")[2]
    codec = query.partition("codec=")[2].partition("&")[0]
    mark = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}[codec] if "bom" in query else b""
    quoted = "".join(f"\\u{ord(c):04x}" for c in auth)
    body = mark + ('{"authorization": "' + quoted + '"}\n').encode(codec)
    await fake.reply(stream, conn, 401, body, "application/json; charset=utf-16")


#: Answers that carry the request's credential back (what ``scrub.py`` masks).
ECHOES = {"/echo-head": _echo_head, "/echo-range": _echo_range, "/echo-split": _echo_split,
          "/ws-echo": _ws_echo, "/echo-broken": _echo_broken, "/ws-fragments": _ws_fragments,
          "/ws-slow": _ws_slow, "/ws-deflate": _ws_deflate,
          "/echo-encoded": _echo_encoded, "/echo-encoded-more": _echo_encoded_more,
          "/echo-encoded-folded": _echo_encoded_folded, "/echo-utf16": _echo_utf16}


class GitServer(_Base):
    """Real repositories over smart HTTP (``git http-backend``), Basic auth required."""

    def __init__(self, ca: trustme.CA, root: Path, token: str) -> None:
        super().__init__(ca)
        self.root = root
        self.expected = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
        self.refused = 0

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        if seen.header("authorization") != [self.expected]:
            self.refused += 1
            await self.reply(stream, conn, 401, b"no\n", "text/plain",
                             [("www-authenticate", 'Basic realm="git"')])
            return True
        # The backend runs in a thread (bounded by its own timeout).
        status, body, headers = await trio.to_thread.run_sync(
            git_backend, self.root, seen.method, seen.target, seen.body,
            lambda name: (seen.header(name) or [None])[0])
        await self.send(stream, conn, h11.Response(status_code=status, headers=[
            *headers, ("content-length", str(len(body)))]), h11.Data(data=body), h11.EndOfMessage())
        return True


class EarlyRefuser(Listener):
    """An upstream that refuses an upload from its head alone: 413, then it hangs up.

    It never reads the body, so the proxy is still sending it when the answer arrives.
    """

    CLOSE = b"connection: close\r\n"

    def __init__(self, ca: trustme.CA) -> None:
        super().__init__(ca)
        self.refused = 0
        self.heads: list[bytes] = []

    async def _connection(self, stream: trio.abc.Stream) -> None:
        with trio.fail_after(30):
            head = await read_head(stream)
            if not head:
                return
            self.heads.append(head)
            body = b"upload too large\n"
            await stream.send_all(
                b"HTTP/1.1 413 Content Too Large\r\ncontent-type: text/plain\r\n"
                b"content-length: %d\r\n%s\r\n%s" % (len(body), self.CLOSE, body))
        self.refused += 1
        await self.after(stream)

    async def after(self, stream: trio.abc.Stream) -> None:
        """What it does once it answered: hang up."""


class Tunnel:
    """A raw CONNECT tunnel through the proxy, carrying HTTP/1.1 requests one by one."""

    def __init__(self, tls: trio.SSLStream[trio.SocketStream]) -> None:
        self.tls = tls
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int, auth: str, host: str, cafile: Path,
                   connect_port: int = 443) -> Self:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        basic = base64.b64encode(auth.encode()).decode()
        await stream.send_all(
            f"CONNECT {host}:{connect_port} HTTP/1.1\r\nHost: {host}:{connect_port}\r\n"
            f"Proxy-Authorization: Basic {basic}\r\n\r\n".encode())
        head = await read_head(stream, 1)  # byte by byte: TLS follows the head
        if not head.startswith(b"HTTP/1.1 200"):
            await stream.aclose()
            raise ConnectionError(head.decode(errors="replace"))
        ctx = ssl.create_default_context(cafile=str(cafile))
        return cls(trio.SSLStream(stream, ctx, server_hostname=host))

    async def request(self, method: str, path: str, host: str,
                      headers: list[tuple[str, str]] | None = None) -> tuple[int, bytes]:
        events = [h11.Request(method=method, target=path,
                              headers=[("host", host), *(headers or [])]), h11.EndOfMessage()]
        for event in events:
            data = self.conn.send(event)
            if data:
                await self.tls.send_all(data)
        status, _, body, _ = await self.answer()
        return status, body

    async def answer(self) -> tuple[int, dict[str, str], bytes, list[tuple[bytes, bytes]]]:
        """The next answer: status, headers, body, trailers."""
        # When the request's bytes were written raw, tell h11 a request went.
        if self.conn.our_state is h11.IDLE:
            self.conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
            self.conn.send(h11.EndOfMessage())
        status, headers, body = 0, {}, b""
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.tls.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                    self.conn.start_next_cycle()
                return status, headers, body, list(event.headers)
            elif isinstance(event, h11.InformationalResponse):
                continue
            else:
                raise ConnectionError(repr(event))

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.tls)


async def websocket_through(port: int, auth: str, cafile: Path, path: str,
                            extra: str = "") -> trio.SSLStream[trio.SocketStream]:
    """A WebSocket upgrade to api.openai.com through the proxy; the stream after the 101."""
    tls = (await Tunnel.open(port, auth, "api.openai.com", cafile)).tls
    await tls.send_all(
        f"GET {path} HTTP/1.1\r\nHost: api.openai.com\r\nConnection: Upgrade\r\n"
        f"Upgrade: websocket\r\n{extra}\r\n".encode())
    head = await read_head(tls, 1)  # byte by byte: what follows the head is the pipe's
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.decode(errors="replace"))
    return tls
