"""Failure translation and raw byte piping for the exchange shell.

``exchange.py`` moves h11 events between the client and the upstream; the helpers here
turn what can go wrong on each side into one exception per side (:class:`ClientGone` for
the client, :class:`~proxy.upstream.UpstreamError` for the upstream), and :func:`pipe`
relays raw bytes both ways after a WebSocket upgrade until either side closes or both
have been silent for the idle timeout.
"""

from __future__ import annotations

import h11
import trio

from proxy.upstream import ErrorType, UpstreamError
from proxy.wire import READ_SIZE, HttpSide

_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class ClientGone(Exception):
    """The client went away, stalled or broke the protocol: nothing more can be sent."""


class ClientProtocolError(ClientGone):
    """The client sent something h11 refuses: answer 400 if still possible."""


async def client_event(client: HttpSide, patience: float) -> object:
    try:
        return await client.next_event(patience)
    except h11.RemoteProtocolError as exc:
        raise ClientProtocolError(str(exc)) from exc
    except trio.TooSlowError as exc:
        raise ClientGone("client stalled") from exc
    except _BROKEN as exc:
        raise ClientGone("client connection lost") from exc


async def client_send(client: HttpSide, event: h11.Event, patience: float) -> None:
    try:
        await client.send(event, patience)
    except trio.TooSlowError as exc:
        raise ClientGone("client stopped reading") from exc
    except (*_BROKEN, h11.LocalProtocolError) as exc:
        raise ClientGone("client connection lost") from exc


async def upstream_event(conn: HttpSide, patience: float) -> object:
    try:
        event = await conn.next_event(patience)
    except h11.RemoteProtocolError as exc:
        raise UpstreamError(f"upstream broke HTTP/1.1: {exc}",
                            ErrorType.UPSTREAM_PROTOCOL_ERROR) from exc
    except trio.TooSlowError as exc:
        raise UpstreamError(f"upstream silent for {patience:g}s", ErrorType.UPSTREAM_TIMEOUT,
                            status=504) from exc
    except _BROKEN as exc:
        raise UpstreamError("upstream connection lost", ErrorType.UPSTREAM_PROTOCOL_ERROR) from exc
    if isinstance(event, h11.ConnectionClosed):
        raise UpstreamError("upstream closed the connection before answering",
                            ErrorType.UPSTREAM_PROTOCOL_ERROR)
    return event


async def upstream_send(conn: HttpSide, event: h11.Event, patience: float) -> None:
    try:
        await conn.send(event, patience)
    except trio.TooSlowError as exc:
        raise UpstreamError("upstream stopped reading", ErrorType.UPSTREAM_TIMEOUT,
                            status=504) from exc
    except (*_BROKEN, h11.LocalProtocolError) as exc:
        raise UpstreamError("upstream connection lost while sending",
                            ErrorType.UPSTREAM_PROTOCOL_ERROR) from exc


async def pipe(
    client: HttpSide, upstream: HttpSide, idle_timeout: float
) -> tuple[int, int]:
    """Relay raw bytes both ways (after a 101); returns (bytes from client, to client)."""
    counts = [0, 0]
    pending_up = client.h11.trailing_data[0]
    pending_down = upstream.h11.trailing_data[0]

    async with trio.open_nursery() as nursery:
        scope = nursery.cancel_scope
        scope.deadline = trio.current_time() + idle_timeout

        async def one(src: trio.abc.Stream, dst: trio.abc.Stream, first: bytes, i: int) -> None:
            try:
                data = first
                while True:
                    if data:
                        counts[i] += len(data)
                        await dst.send_all(data)
                    data = bytes(await src.receive_some(READ_SIZE))
                    if not data:
                        break
                    scope.deadline = trio.current_time() + idle_timeout
            except _BROKEN:
                pass
            scope.cancel()

        nursery.start_soon(one, client.stream, upstream.stream, pending_up, 0)
        nursery.start_soon(one, upstream.stream, client.stream, pending_down, 1)
    return counts[0], counts[1]
