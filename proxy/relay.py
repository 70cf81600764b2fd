"""Moving HTTP/1.1 events and raw bytes between the client and the upstream.

``exchange.py`` decides what to send; the helpers here do the sending and receiving, and
turn what can go wrong on each side into one exception per side (:class:`ClientGone` for
the client, :class:`~proxy.upstream.UpstreamError` for the upstream). :func:`relay_body`
moves a message body as it arrives: each read takes whatever the socket holds (up to
256 KiB of plaintext), and writes are queued and flushed only before the next wait for
input, so a small answer leaves in one write while a stream (SSE) is never held back.
:func:`pipe` relays raw bytes both ways after a WebSocket upgrade until either side closes
or both have been silent for the idle timeout.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import h11
import trio

from appliance.audit import Decision
from proxy.framing import Ambiguous, clean_trailers, head_defect, head_end
from proxy.scrub import Scrubber
from proxy.sides import MAX_HEAD, READ_SIZE, HttpSide, PeerHungUp
from proxy.upstream import ErrorType, UpstreamError
from proxy.wsframes import FrameScrubber, Unreadable

#: How long the end of a piped chunk that may begin a credential waits for the rest.
HOLD_BACK = 0.05
#: Body events relayed between two passes of the scheduler.
EVENTS_PER_TURN = 256
_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
_READ_ERRORS = (h11.RemoteProtocolError, trio.TooSlowError, *_BROKEN)
_WRITE_ERRORS = (trio.TooSlowError, h11.LocalProtocolError, *_BROKEN)
#: What h11 quotes of a line it refuses (``illegal header line: bytearray(b'...')``): a line
#: of the answer, which may set a cookie of the person's (``answer_cookies.py``).
_QUOTED = re.compile(r": (?:bytearray\()?b['\"].*", re.S)


class ClientGone(Exception):
    """The client went away, stalled or broke the protocol: nothing more can be sent."""


class ClientProtocolError(ClientGone):
    """The client sent something h11 refuses: answer 400 if still possible."""


class AmbiguousRequest(ClientProtocolError):
    """The client sent a head two parsers could read differently (``framing.py``)."""


def _client_read_error(exc: BaseException) -> ClientGone:
    if isinstance(exc, h11.RemoteProtocolError):
        return ClientProtocolError(str(exc))
    if isinstance(exc, trio.TooSlowError):
        return ClientGone("client stalled")
    return ClientGone("client connection lost")


def _client_write_error(exc: BaseException) -> ClientGone:
    if isinstance(exc, trio.TooSlowError):
        return ClientGone("client stopped reading")
    return ClientGone("client connection lost")


def _upstream_read_error(exc: BaseException, patience: float) -> UpstreamError:
    if isinstance(exc, h11.RemoteProtocolError):
        return UpstreamError(f"upstream broke HTTP/1.1: {_QUOTED.sub('', str(exc))}",
                             ErrorType.UPSTREAM_PROTOCOL_ERROR)
    if isinstance(exc, trio.TooSlowError):
        return UpstreamError(f"upstream silent for {patience:g}s", ErrorType.UPSTREAM_TIMEOUT,
                             status=504)
    return UpstreamError("upstream connection lost", ErrorType.UPSTREAM_PROTOCOL_ERROR)


def _upstream_write_error(exc: BaseException) -> UpstreamError:
    if isinstance(exc, trio.TooSlowError):
        return UpstreamError("upstream stopped reading", ErrorType.UPSTREAM_TIMEOUT, status=504)
    return UpstreamError("upstream connection lost while sending",
                         ErrorType.UPSTREAM_PROTOCOL_ERROR)


async def client_event(client: HttpSide, patience: float) -> object:
    try:
        return await client.next_event(patience)
    except _READ_ERRORS as exc:
        raise _client_read_error(exc) from exc


async def client_request(client: HttpSide, patience: float) -> object:
    """The client's next request head, its raw bytes checked before h11 parses them.

    The head is read into h11's buffer whole (up to ``MAX_HEAD``, beyond which h11 refuses
    it) and :func:`proxy.framing.head_defect` reads those exact bytes; h11 then parses the
    same bytes, so what was checked is what is used.
    """
    conn = client.h11
    while conn.their_state is h11.IDLE:
        buffered, closed = conn.trailing_data
        end = head_end(buffered)
        if end >= 0:
            defect = head_defect(buffered[:end])
            if defect is not None:
                raise AmbiguousRequest(defect) from Ambiguous(defect)
            break
        if closed or len(buffered) > MAX_HEAD:
            break
        try:
            await client.fill(patience)
        except _READ_ERRORS as exc:
            raise _client_read_error(exc) from exc
    return await client_event(client, patience)


async def client_send(client: HttpSide, event: h11.Event, patience: float) -> None:
    try:
        await client.send(event, patience)
    except _WRITE_ERRORS as exc:
        raise _client_write_error(exc) from exc


async def upstream_event(
    conn: HttpSide, patience: float, *, watch: HttpSide | None = None
) -> object:
    """The upstream's next event; with ``watch`` (the client), ClientGone if it hangs up."""
    try:
        event = await conn.next_event(patience, watch=watch)
    except PeerHungUp as exc:
        raise ClientGone("client hung up while its answer was awaited") from exc
    except _READ_ERRORS as exc:
        raise _upstream_read_error(exc, patience) from exc
    if isinstance(event, h11.ConnectionClosed):
        raise UpstreamError("upstream closed the connection before answering",
                            ErrorType.UPSTREAM_PROTOCOL_ERROR)
    return event


async def client_flush(client: HttpSide, patience: float) -> None:
    try:
        await client.flush(patience)
    except _WRITE_ERRORS as exc:
        raise _client_write_error(exc) from exc


async def upstream_flush(conn: HttpSide, patience: float) -> None:
    try:
        await conn.flush(patience)
    except _WRITE_ERRORS as exc:
        raise _upstream_write_error(exc) from exc


async def upstream_send(conn: HttpSide, event: h11.Event, patience: float) -> None:
    try:
        await conn.send(event, patience)
    except _WRITE_ERRORS as exc:
        raise _upstream_write_error(exc) from exc


@dataclass(slots=True, kw_only=True)
class Meter:
    """What one request's audit line will say, filled in as the exchange goes."""

    decision: Decision
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    error: str | None = None
    note: str | None = None
    credential: str | None = None
    #: Frees what the request holds while it runs (a model-call slot, ``controls.py``).
    release: Callable[[], None] | None = None
    #: Writes the opening line of an exchange that stays open, and returns its id (the
    #: exchange's ``stream``, which its end line carries too).
    opening: Callable[[], str] | None = None
    stream: str | None = None
    #: The upload and the answer while they move: the bytes so far, for an opening line.
    sending: Tally | None = None
    receiving: Tally | None = None

    def open(self) -> None:
        """Write the exchange's opening line, once: it stays open (a pipe, a stream of
        events) or has outlasted ``long_after`` (``lasting.py``)."""
        if self.stream is None and self.opening is not None:
            self.stream = self.opening()

    def so_far(self) -> tuple[int, int]:
        """Bytes in and out so far, those of a body still moving included."""
        return (self.bytes_in + (self.sending.moved if self.sending else 0),
                self.bytes_out + (self.receiving.moved if self.receiving else 0))


class Tally:
    """Bytes moved so far, readable even when the relay was cancelled half-way."""

    __slots__ = ("moved",)

    def __init__(self) -> None:
        self.moved = 0


def end_for(event: h11.EndOfMessage, dst: HttpSide) -> h11.EndOfMessage:
    """The end of a message for ``dst``, with the trailers it can carry.

    Trailers arrive only on a chunked body, and the proxy frames a chunked body chunked
    again, except towards an HTTP/1.0 client, which cannot take trailers at all.
    """
    if not event.headers:
        return _END
    if dst.h11.our_role is h11.SERVER and dst.h11.their_http_version != b"1.1":
        return _END
    kept = clean_trailers(event.headers)
    return h11.EndOfMessage(headers=kept) if kept else _END


_END = h11.EndOfMessage()


def _show(observe: Callable[[bytes], None] | None, seen: list[bytes]) -> None:
    if observe is not None:
        for data in seen:
            observe(data)
        seen.clear()


async def relay_body(src: HttpSide, dst: HttpSide, patience: float, *, from_client: bool,
                     tally: Tally | None = None,
                     observe: Callable[[bytes], None] | None = None,
                     scrub: Scrubber | None = None) -> int:
    """Move one message body from ``src`` to ``dst`` up to its end; returns its size.

    Whatever ``dst`` has queued (a response head, say) goes out with the first body bytes,
    or on its own just before the relay waits for ``src``. While an answer is relayed, a
    client that hangs up ends it (``watch``, see ``wire.py``) even if the upstream is silent.
    The body is re-encoded by h11 for ``dst``'s framing; trailers go along (``end_for``).
    ``observe`` (the meter; it must not raise) sees each chunk once sent to ``dst``, so
    reading it never delays the bytes; ``scrub`` masks the credential in what goes there.
    """
    watch = None if from_client else dst
    moved = 0
    events = 0  # since the last wait: a body of tiny chunks is one event per byte
    seen: list[bytes] = []  # chunks sent but not yet shown to ``observe``
    while True:
        try:
            event = src.poll()
            if event is h11.NEED_DATA:
                if dst.queued:
                    await _flush(dst, patience, from_client=from_client)
                if seen:
                    _show(observe, seen)
                await src.fill(patience, watch=watch)
                events = 0
                continue
            events += 1
            if events % EVENTS_PER_TURN == 0:  # what was read at once is not one turn
                await trio.lowlevel.checkpoint()
        except PeerHungUp as exc:
            raise ClientGone("client hung up mid-answer") from exc
        except _READ_ERRORS as exc:
            raise (_client_read_error(exc) if from_client
                   else _upstream_read_error(exc, patience)) from exc
        try:
            if type(event) is h11.Data:
                moved += len(event.data)
                if tally is not None:
                    tally.moved = moved
                if observe is not None:
                    seen.append(event.data)
                if scrub is not None:
                    event = h11.Data(data=scrub.feed(event.data))
                if event.data and dst.queue(event):
                    await dst.flush(patience)
                    _show(observe, seen)
            elif type(event) is h11.EndOfMessage:
                _queue_end(event, dst, scrub)
                await dst.flush(patience)
                _show(observe, seen)
                return moved
            elif from_client:
                raise ClientGone("client closed mid-request")
            else:
                raise UpstreamError("upstream closed the connection mid-answer",
                                    ErrorType.UPSTREAM_PROTOCOL_ERROR)
        except _WRITE_ERRORS as exc:
            raise _write_error(exc, from_client=from_client) from exc


def _write_error(exc: BaseException, *, from_client: bool) -> Exception:
    return _upstream_write_error(exc) if from_client else _client_write_error(exc)


async def _flush(dst: HttpSide, patience: float, *, from_client: bool) -> None:
    try:
        await dst.flush(patience)
    except _WRITE_ERRORS as exc:
        raise _write_error(exc, from_client=from_client) from exc


def _queue_end(event: h11.EndOfMessage, dst: HttpSide, scrub: Scrubber | None) -> None:
    """The body's end for ``dst``: what the scrubber held back, then the trailers (masked)."""
    if scrub is not None:
        if scrub.holding:
            dst.queue(h11.Data(data=scrub.finish()))
        if event.headers:
            event = h11.EndOfMessage(headers=scrub.head(list(event.headers)))
    dst.queue(end_for(event, dst))


async def pipe(
    client: HttpSide, upstream: HttpSide, idle_timeout: float,
    scrub: Scrubber | FrameScrubber | None = None,
) -> tuple[int, int]:
    """Relay raw bytes both ways (after a 101); returns (bytes from client, to client).

    The pair ends when either side closes (or fails), or when neither has sent a byte for
    ``idle_timeout``. ``scrub`` masks the credential in what goes to the client; the end it
    holds back goes on by itself after :data:`HOLD_BACK` with nothing more from upstream.
    What it cannot read (:class:`~proxy.wsframes.Unreadable`) ends the pair, an upstream
    protocol error.
    """
    counts = [0, 0]
    unreadable: list[Unreadable] = []
    pending_up = client.h11.trailing_data[0]
    pending_down = upstream.h11.trailing_data[0]

    async with trio.open_nursery() as nursery:
        scope = nursery.cancel_scope
        scope.deadline = trio.current_time() + idle_timeout

        async def one(src: trio.abc.Stream, dst: trio.abc.Stream, first: bytes, i: int,
                      scrub: Scrubber | FrameScrubber | None) -> None:
            try:
                data = first
                while True:
                    if data:
                        counts[i] += len(data)
                        out = data if scrub is None else scrub.feed(data)
                        if out:
                            await dst.send_all(out)
                    if scrub is not None and scrub.holding:
                        with trio.move_on_after(HOLD_BACK) as wait:
                            data = bytes(await src.receive_some(READ_SIZE))
                        if data and not wait.cancelled_caught:
                            scope.deadline = trio.current_time() + idle_timeout
                            continue
                        await dst.send_all(scrub.finish())
                        if not wait.cancelled_caught:  # the upstream's end
                            break
                    data = bytes(await src.receive_some(READ_SIZE))
                    if not data:
                        break
                    scope.deadline = trio.current_time() + idle_timeout
            except _BROKEN:
                pass
            except Unreadable as exc:
                unreadable.append(exc)
            scope.cancel()

        nursery.start_soon(one, client.stream, upstream.stream, pending_up, 0, None)
        nursery.start_soon(one, upstream.stream, client.stream, pending_down, 1, scrub)
    if unreadable:
        raise UpstreamError(f"upgraded connection: {unreadable[0]}",
                            ErrorType.UPSTREAM_PROTOCOL_ERROR)
    return counts[0], counts[1]
