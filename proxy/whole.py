"""A message read whole within a limit, and a request of the proxy's own answered whole.

The Codex token refresh (``refresh_relay.py``) reads both its messages whole to rewrite
them; the questions the proxy asks GitHub before a session's write to a pull request goes
on (``whose.py``) are sent and answered whole, on a connection of the session's own, with
the credential its write carries.
"""

from __future__ import annotations

import h11

from proxy.framing import response_framing
from proxy.heads import Target
from proxy.relay import ClientGone, client_event, upstream_event, upstream_send
from proxy.sides import HttpSide
from proxy.state import ProxyState
from proxy.upstream import ErrorType, UpstreamError


async def read_all(side: HttpSide, limit: int, patience: float, *, upstream: bool,
                   what: str) -> bytes:
    """The rest of ``side``'s message (``what`` names it when it is longer than ``limit``)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await (upstream_event if upstream else client_event)(side, patience)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > limit:
                raise UpstreamError(f"{what} too large", ErrorType.UPSTREAM_PROTOCOL_ERROR)
            chunks.append(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        else:
            raise ClientGone("connection closed mid-message")


async def exchange(state: ProxyState, target: Target, head: h11.Request, body: bytes, *,
                   session: str, credential: str | None, limit: int, what: str
                   ) -> tuple[h11.Response, bytes]:
    """``head`` and ``body`` sent to ``target``'s upstream, and its answer read whole (at
    most ``limit`` bytes of body); the connection goes back to the pool when it may."""
    patience = state.config.read_timeout
    conn, _ = await state.pool.acquire(target, session=session, credential=credential)
    try:
        await upstream_send(conn, head, patience)
        if body:
            await upstream_send(conn, h11.Data(data=body), patience)
        await upstream_send(conn, h11.EndOfMessage(), patience)
        event = await upstream_event(conn, patience)
        while isinstance(event, h11.InformationalResponse):
            event = await upstream_event(conn, patience)
        if not isinstance(event, h11.Response):
            raise UpstreamError("unexpected answer", ErrorType.UPSTREAM_PROTOCOL_ERROR)
        answer = await read_all(conn, limit, patience, upstream=True, what=what)
    except BaseException:
        await conn.aclose()
        raise
    if response_framing(event.headers)[1]:
        state.pool.release(conn)
    else:
        await conn.aclose()
    return event, answer
