"""The listening shell: accept clients, answer CONNECT, terminate TLS, loop over requests.

Theory of operation. :func:`serve` binds one port on each listening address (127.0.0.1 and
the bridge gateway; port 0 in tests, reported through ``task_status``) and gives every
accepted client its own task in one connections nursery. A client's first request is
either a CONNECT, answered after :func:`proxy.policy.decide_connect` (407/403, or, at the
session's pace of new tunnels, 200 and a TLS handshake with a leaf certificate for the
target from ``certs.py``), or a plain
``http://`` request. Requests are then read one by one (keep-alive) and each is handed to
:func:`proxy.exchange.handle`; the session is looked up again for every request so its
access mode is live. Every head is checked byte for byte before h11 parses it
(``relay.client_request``, ``framing.py``): an ambiguous one, or a malformed one, gets 400,
an audit line and the connection is closed, so nothing after it on that connection is
read. A request inside a tunnel is checked against the tunnel's target (``heads.py``).

Shutdown (``ProxyState.stop``): listeners close, idle connections are cancelled at once,
requests in flight get ``shutdown_grace`` seconds, then everything left is cancelled; then
the usage ledger writes its last counts (``controls.py``, ``ledger.py``), which runs beside
the connections all along.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import h11
import trio

from appliance.audit import Decision
from appliance.errors import cannot_listen
from proxy.directory import SessionAuth, proven
from proxy.exchange import handle, request_id, respond
from proxy.heads import (
    BadRequest,
    Target,
    parse_absolute_target,
    parse_connect_target,
    parse_inner_target,
    parse_proxy_authorization,
)
from proxy.inject import header_value
from proxy.policy import Accept, Respond, audit_record, decide_connect
from proxy.refusals import audit_share, too_many_tunnels
from proxy.relay import (
    AmbiguousRequest,
    ClientGone,
    ClientProtocolError,
    client_event,
    client_request,
)
from proxy.screen import hold
from proxy.sides import HttpSide
from proxy.state import ProxyState
from proxy.tls import TlsStream

log = logging.getLogger(__name__)

#: How long the usage counts of a stopping proxy may take to reach the database.
FINAL_FLUSH_SECONDS = 10.0


def _bad_request(exc: ClientProtocolError) -> tuple[bytes, str]:
    """The raw 400 (h11 may be past answering) and the audit error for a refused head."""
    if isinstance(exc, AmbiguousRequest):
        text = (f"Refused: the request is ambiguous ({exc}). Frame a request with exactly "
                "one Content-Length or Transfer-Encoding: chunked, and CRLF line ends.\n")
        kind = "AMBIGUOUS_FRAMING"
    else:
        text, kind = "The proxy could not parse that request.\n", "MALFORMED_REQUEST"
    body = text.encode()
    head = (f"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nx-proxy-error-type: {kind}\r\n"
            "connection: close\r\n\r\n")
    return head.encode() + body, kind


@dataclass(frozen=True, slots=True, kw_only=True)
class Bound:
    port: int
    hosts: tuple[str, ...]


async def _bind(hosts: Sequence[str], port: int) -> tuple[list[trio.SocketListener], int]:
    listeners: list[trio.SocketListener] = []
    for host in hosts:
        try:
            found = await trio.open_tcp_listeners(port, host=host)
        except OSError as exc:
            if not listeners:
                raise cannot_listen(exc, f"{host}:{port}",
                                    "[proxy] port (CLAUDERON_PROXY_PORT)") from exc
            log.warning("cannot listen on %s:%d (%s); continuing without it", host, port, exc)
            continue
        listeners += found
        port = found[0].socket.getsockname()[1]
    return listeners, port


async def serve(
    state: ProxyState,
    *,
    hosts: Sequence[str] = ("127.0.0.1",),
    port: int = 0,
    task_status: trio.TaskStatus[Bound] = trio.TASK_STATUS_IGNORED,
) -> None:
    listeners, bound = await _bind(hosts, port)
    names = tuple(str(listener.socket.getsockname()[0]) for listener in listeners)
    log.info("proxy listening on port %d of %s", bound, ", ".join(names))
    try:
        async with trio.open_nursery() as background:
            await background.start(state.controls.run)
            await background.start(state.lasting.run)
            await background.start(state.summaries)
            try:
                async with trio.open_nursery() as connections:
                    async with trio.open_nursery() as accepting:
                        for listener in listeners:
                            accepting.start_soon(_accept, listener, connections, state)
                        task_status.started(Bound(port=bound, hosts=names))
                        await state.stopping.wait()
                        accepting.cancel_scope.cancel()
                    for listener in listeners:
                        await listener.aclose()
                    connections.cancel_scope.deadline = (
                        trio.current_time() + state.config.shutdown_grace
                    )
            finally:
                # Every connection has ended: the last counts go to the database.
                with trio.CancelScope(shield=True), trio.move_on_after(FINAL_FLUSH_SECONDS):
                    await state.controls.ledger.flush(final=True)
                background.cancel_scope.cancel()
    finally:
        state.pool.close_all()
        for listener in listeners:
            listener.socket.close()
    log.info("proxy stopped")


async def _accept(
    listener: trio.SocketListener, nursery: trio.Nursery, state: ProxyState
) -> None:
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:  # EMFILE and friends: back off instead of spinning
            log.error("accept failed: %s", exc)
            await trio.sleep(0.1)
            continue
        nursery.start_soon(_client, state, stream)


async def _next_request(state: ProxyState, side: HttpSide) -> h11.Request | None:
    """The next request head, or None at EOF, on shutdown or after a long idle.

    One cancel scope bounds the whole head (``idle_timeout``) and is the one shutdown
    cancels: the reads under it take no scope of their own.
    """
    with trio.CancelScope(deadline=trio.current_time() + state.config.idle_timeout) as scope:
        state.idle_scopes.add(scope)
        try:
            event = await client_request(side, math.inf)
        except ClientProtocolError:
            raise
        except ClientGone:
            return None
        finally:
            state.idle_scopes.discard(scope)
        return event if isinstance(event, h11.Request) else None
    return None


def _audit(state: ProxyState, stream: trio.abc.Stream, *, session: str | None, method: str,
           host: str, target: str, status: int, decision: Decision,
           error: str | None = None) -> None:
    """The line of a request answered here; one no session proves is counted in the share
    of the address it came from (``stream``'s peer), so one agent's flood of them leaves
    the other containers' lines written."""
    key = session or state.unproven(_peer(stream))
    if state.over_share(key):  # past its share: counted a line a minute (``auditshare.py``)
        state.refused_share(key)
        return
    state.record(audit_record(
        request_id=request_id(), started=datetime.now(UTC), duration_s=0.0,
        session=session, method=method, host=host, target=target, status=status,
        bytes_in=0, bytes_out=0, credential=None, decision=decision, error=error,
    ), share=key)


def _peer(stream: trio.abc.Stream) -> str:
    """The address a client connection comes from ("-" when it has none)."""
    if isinstance(stream, trio.SocketStream):
        try:
            return str(stream.socket.getpeername()[0])
        except (OSError, IndexError, TypeError):
            return "-"
    return "-"


async def _client(state: ProxyState, stream: trio.SocketStream) -> None:
    client = HttpSide(stream, h11.SERVER)
    try:
        while not state.stopping.is_set():
            try:
                request = await _next_request(state, client)
            except ClientProtocolError as exc:
                log.info("refused a request from a client: %s", exc)
                answer, kind = _bad_request(exc)
                _audit(state, stream, session=None, method="-", host="-", target="-",
                       status=400, decision=Decision.ERROR, error=kind)
                with trio.move_on_after(5):
                    await stream.send_all(answer)
                return
            if request is None:
                return
            if not await _first_hop(state, client, request):
                return
            client.h11.start_next_cycle()
    except (ClientGone, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except Exception:  # one connection's bug ends that connection, never every session's
        log.exception("a client connection failed")
    finally:
        await client.aclose()


async def _first_hop(state: ProxyState, client: HttpSide, request: h11.Request) -> bool:
    """A request on the plain connection; True when the connection may carry another."""
    method = request.method.decode("ascii", "replace")
    patience = state.config.read_timeout
    try:
        if request.method == b"CONNECT":
            target = parse_connect_target(request.target)
        else:
            target = parse_absolute_target(request.target)
    except BadRequest as exc:
        _audit(state, client.stream, session=None, method=method, host="-", target="-",
               status=400, decision=Decision.ERROR, error="MALFORMED_REQUEST")
        await respond(client, 400, f"{exc}\n", patience, error_type="MALFORMED_REQUEST",
                      close=True)
        return False
    if request.method == b"CONNECT":
        # A CONNECT has no body; reading its end now lets a 407 keep the connection alive.
        end = await client_event(client, patience)
        if not isinstance(end, h11.EndOfMessage):
            return False
    presented = parse_proxy_authorization(header_value(request.headers, b"proxy-authorization"))
    session = await state.directory.lookup(presented.session_id) if presented else None
    verdict = decide_connect(target, presented, session, state.config)
    who = proven(presented, session)
    if (who is not None and session is not None and not session.owner
            and (isinstance(verdict, Respond) or request.method == b"CONNECT")
            and state.over_share(who)):  # a request relayed is refused by ``handle``
        # Its lines fill the disk: refused, counted a line a minute (``auditshare.py``).
        share = audit_share(session.name, state.config.audit_bytes_per_day)
        state.refused_share(who)
        await state.controls.note(session, "audit_share_spent",
                                  {"bytes_per_day": state.config.audit_bytes_per_day})
        await respond(client, share.status, share.body, patience,
                      error_type=share.error_type, headers=share.headers)
        return client.reusable()
    if isinstance(verdict, Respond):
        _audit(state, client.stream, session=who, method=method,
               host=target.host, target=target.path, status=verdict.status,
               decision=verdict.decision, error=verdict.error_type)
        await respond(client, verdict.status, verdict.body, patience,
                      error_type=verdict.error_type, headers=verdict.headers)
        return client.reusable()
    if request.method != b"CONNECT":
        return await handle(state, client, request, target, verdict.session)
    refused = await _tunnel_pace(state, client, verdict.session)
    if refused is not None:
        _audit(state, client.stream, session=verdict.session.session_id, method=method,
               host=target.host, target=target.path, status=refused.status,
               decision=refused.decision, error=refused.error_type)
        await respond(client, refused.status, refused.body, patience,
                      error_type=refused.error_type, headers=refused.headers, close=True)
        return False
    await _tunnel(state, client, target, verdict)
    return False


async def _tunnel_pace(state: ProxyState, client: HttpSide, session: SessionAuth
                       ) -> Respond | None:
    """A new tunnel at the session's pace of them (``ProxyConfig.tunnel_pace``): at once,
    held until it is on time, or refused when that is too far. The appliance's own identity
    is not paced."""
    if session.owner:
        return None
    pace = state.config.tunnel_pace
    admission = state.pacer.take((session.session_id, "CONNECT"), trio.current_time(), pace,
                                 state.config.pace_hold)
    if admission.refused:
        return too_many_tunnels(session.name, pace, admission.retry_after)
    await hold(client, admission.wait, "its tunnel")
    return None


async def _tunnel(state: ProxyState, client: HttpSide, target: Target, accepted: Accept) -> None:
    patience = state.config.read_timeout
    await client.send(h11.Response(status_code=200, headers=[], reason=b"Connection established"),
                      patience)
    prefix = client.h11.trailing_data[0]
    context = state.certs.context_for(target.host)
    if not isinstance(client.stream, trio.SocketStream):
        raise TypeError("a CONNECT arrives on a plain socket")
    tls = TlsStream(client.stream, context, server_side=True, initial=prefix)
    try:
        with trio.fail_after(state.config.connect_timeout):
            await tls.do_handshake()
    except (trio.BrokenResourceError, trio.TooSlowError) as exc:
        log.info("TLS with the client for %s failed (does it trust the proxy CA?): %s",
                 target.host, exc.__cause__ or exc)
        return
    try:
        await _inner_requests(state, HttpSide(tls, h11.SERVER), target, accepted)
    finally:
        with trio.move_on_after(1):
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await tls.aclose()


async def _inner_requests(
    state: ProxyState, inner: HttpSide, target: Target, accepted: Accept
) -> None:
    """The requests inside an intercepted tunnel, one by one, until either side stops."""
    patience = state.config.read_timeout
    session_id = accepted.session.session_id
    while not state.stopping.is_set():
        try:
            request = await _next_request(state, inner)
        except ClientProtocolError as exc:
            log.info("refused a request inside the tunnel to %s: %s", target.host, exc,
                     extra={"session": session_id})
            answer, kind = _bad_request(exc)
            _audit(state, inner.stream, session=session_id, method="-", host=target.host,
                   target="-", status=400, decision=Decision.ERROR, error=kind)
            with trio.move_on_after(5):
                await inner.stream.send_all(answer)
            return
        if request is None:
            return
        method = request.method.decode("ascii", "replace")
        try:
            inner_target = parse_inner_target(request.target, target)
        except BadRequest as exc:
            _audit(state, inner.stream, session=session_id, method=method, host=target.host,
                   target="-", status=400, decision=Decision.ERROR, error="MALFORMED_REQUEST")
            await respond(inner, 400, f"{exc}\n", patience, error_type="MALFORMED_REQUEST",
                          close=True)
            return
        session: SessionAuth | None = await state.directory.lookup(session_id)
        if session is None:  # deleted while its tunnel was open
            _audit(state, inner.stream, session=session_id, method=method, host=target.host,
                   target=inner_target.path, status=407, decision=Decision.REJECTED)
            await respond(inner, 407, "This session no longer exists.\n", patience)
            return
        if not await handle(state, inner, request, inner_target, session, tunnel=target):
            return
        inner.h11.start_next_cycle()
