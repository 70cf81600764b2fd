"""Sending one request upstream: its head, its body, and an eye on an early answer.

Theory of operation. ``exchange.py`` hands over the head the proxy framed itself
(``framing.py``). :func:`send_request` takes a connection from the session's pool, sends
the head and relays the body from the client, and returns the first answer event. A
request without a body, or with a small one that arrived with its head, is sent in one
write. While a body is uploaded, a watcher task reads the upstream side: an upstream may
answer before the body is done (a 413 from the head alone) and then stop reading, and a
proxy that only writes would sit blocked until the read timeout. A final answer of 400 or
more that arrives mid-upload stops the upload at once; the exchange then relays that
answer with ``connection: close``, closes the upstream connection and, for a moment, reads
and drops what the client still sends (:func:`linger`), so the client reads the answer
instead of a reset. An upload the upstream cuts short (it closed, or stopped reading) is
also given :data:`EARLY_ANSWER_WAIT` seconds to show its answer.
"""

from __future__ import annotations

import math

import h11
import trio

from proxy.framing import has_body
from proxy.heads import Target
from proxy.inject import Headers
from proxy.relay import (
    ClientGone,
    Tally,
    client_event,
    end_for,
    relay_body,
    upstream_event,
    upstream_flush,
)
from proxy.sides import HttpSide
from proxy.state import ProxyState
from proxy.upstream import UpstreamConn, UpstreamError

#: How long an upstream that stopped taking an upload gets to show its answer (a 413, say),
#: and how long the rest of that upload is then read and dropped before the client's close.
EARLY_ANSWER_WAIT = 2.0
LINGER_BYTES = 64 * 1024 * 1024
#: A body this small that came with its head is sent with it, without an upload watcher
#: (it fits the socket's send buffer: the write cannot block on an upstream that stopped
#: reading to answer early).
WHOLE_BODY = 16 * 1024
#: Body events handled between two passes of the scheduler (see :func:`read_prefix`).
EVENTS_PER_TURN = 256


def _final(event: object, upgrade: bool) -> bool:
    return not isinstance(event, h11.InformationalResponse) or (
        upgrade and event.status_code == 101)


async def _upload(client: HttpSide, conn: UpstreamConn, patience: float, tally: Tally,
                  upgrade: bool) -> object | None:
    """Relay the body while watching for an answer; the answer if one came early.

    Failures are carried out of the nursery by hand (a nursery would wrap them in a group).
    """
    answer: list[object] = []
    failure: list[Exception] = []
    async with trio.open_nursery() as nursery:
        uploading = trio.CancelScope()

        async def watch() -> None:
            try:
                event = await upstream_event(conn, math.inf)
                while not _final(event, upgrade):
                    event = await upstream_event(conn, math.inf)
            except UpstreamError:
                return  # the upload (or the read after it) reports what went wrong
            answer.append(event)
            if isinstance(event, h11.Response) and event.status_code >= 400:
                uploading.cancel()

        nursery.start_soon(watch)
        with uploading:
            try:
                await relay_body(client, conn, patience, from_client=True, tally=tally)
            except (UpstreamError, ClientGone) as exc:
                failure.append(exc)
        if failure and not answer and isinstance(failure[0], UpstreamError):
            nursery.cancel_scope.deadline = trio.current_time() + EARLY_ANSWER_WAIT
        else:
            nursery.cancel_scope.cancel()
    if answer and not (failure and isinstance(failure[0], ClientGone)):
        return answer[0]
    if failure:
        raise failure[0]
    return None


async def read_prefix(client: HttpSide, limit: int, patience: float) -> list[h11.Event]:
    """The first ``limit`` bytes (or all) of the client's body, read before anything is sent
    (so a honeytoken in them can still stop the request): Data events, then the end when
    the body was shorter."""
    # The agent chooses the chunking: a body of one-byte chunks is one h11 event (about a
    # hundred bytes of Python objects and microseconds of parsing) per byte. The chunks are
    # kept as one bytes object, and the loop is handed back every EVENTS_PER_TURN events,
    # so one request's framing neither multiplies its memory nor holds every session's.
    body = bytearray()
    end: h11.EndOfMessage | None = None
    events = 0
    while len(body) < limit:
        event = await client_event(client, patience)
        events += 1
        if events % EVENTS_PER_TURN == 0:
            await trio.lowlevel.checkpoint()
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            end = event
            break
        else:
            raise ClientGone("client closed mid-request")
    out: list[h11.Event] = [h11.Data(data=bytes(body))] if body else []
    return [*out, end] if end is not None else out


def _arrived_whole(client: HttpSide, framing: Headers) -> bool:
    """Whether a small body of a known length has arrived whole with its head: sending it
    cannot wait on the client, so no watcher for an early answer is needed."""
    if not framing or framing[0][0] != b"content-length":
        return False
    length = int(framing[0][1])
    return length <= WHOLE_BODY and len(client.h11.trailing_data[0]) >= length


async def send_request(
    state: ProxyState, client: HttpSide, *, head: h11.Request, target: Target,
    session: str, credential: str | None, framing: Headers, tally: Tally, upgrade: bool,
    prefix: list[h11.Event] | None = None,
) -> tuple[UpstreamConn, object]:
    """Send the request, return the connection and the first non-100 answer event.

    A pooled connection the upstream closed meanwhile fails before any answer; for a
    request without a body (whose bytes were not consumed yet) one fresh retry is safe.
    Once the whole request has gone, a client that hangs up while the answer is awaited
    ends the wait (``watch=``, see ``wire.py``). ``prefix``: body events already read from
    the client (:func:`read_prefix`), sent first.
    """
    patience = state.config.read_timeout
    body = has_body(framing)
    for attempt in (0, 1):
        conn, reused = await state.pool.acquire(target, session=session, credential=credential)
        try:
            conn.queue(head)
            for part in prefix or ():  # an end read ahead loses its forbidden trailers too
                conn.queue(end_for(part, conn) if isinstance(part, h11.EndOfMessage) else part)
            if prefix and isinstance(prefix[-1], h11.EndOfMessage):
                await upstream_flush(conn, patience)
            elif client.h11.their_state in (h11.DONE, h11.MUST_CLOSE):  # a retry: its end read
                conn.queue(h11.EndOfMessage())
                await upstream_flush(conn, patience)
            elif not body or _arrived_whole(client, framing):
                # The request's end is already in h11's buffer (no body, or a small one that
                # came with the head): one write for all, and nothing to watch meanwhile.
                await relay_body(client, conn, patience, from_client=True, tally=tally)
            else:
                early = await _upload(client, conn, patience, tally, upgrade)
                if early is not None:
                    return conn, early
            while True:
                event = await upstream_event(conn, patience, watch=client)
                if _final(event, upgrade):
                    return conn, event
        except UpstreamError:
            await conn.aclose()
            if not (reused and not body and attempt == 0):
                raise
        except BaseException:
            await conn.aclose()
            raise
    raise AssertionError("unreachable")


async def linger(client: HttpSide) -> None:
    """Read and drop what is left of an upload the upstream refused early, for a moment.

    Closing a socket with unread input makes the kernel send a reset, which can destroy
    the answer before the client reads it.
    """
    with trio.move_on_after(EARLY_ANSWER_WAIT):
        left = LINGER_BYTES
        while left > 0:
            try:
                data = await client.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return
            if not data:
                return
            left -= len(data)
