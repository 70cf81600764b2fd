"""One proxied request: decide, forward, stream the answer back, write the audit line.

Theory of operation. The server (``server.py``) reads a request head from the client and
calls :func:`handle`. The pure policy decides; a refusal is answered here. A forwarded
request gets an upstream connection from its session's pool, its head (with the credential
swapped in, and framing the proxy chose, see ``framing.py``) and then its body are sent
event by event as they arrive (``upload.py``), and the answer is relayed the same way,
framed afresh, trailers included, so SSE and chunked bodies reach the client as the
upstream produces them and large bodies never sit in memory. A 101 answer turns the pair
into a raw byte pipe. The Codex refresh (a small JSON exchange) is the one request
buffered whole, because its body is rewritten both ways (``codex.py``). Failures before
the answer's head reach the client become 502/504 with ``X-Proxy-Error-Type``; after it,
the client connection is closed. The return value tells the server whether the client
connection can carry another request.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import h11
import trio

from appliance.audit import Decision
from appliance.egress import Decision as EgressDecision
from appliance.egress import mode_of
from appliance.placeholders import Placeholder
from proxy import gitguard, refusals
from proxy.directory import SessionAuth
from proxy.framing import framed, has_body, request_framing, response_framing
from proxy.heads import Target, forwardable
from proxy.honeytoken import BODY_SCAN, Leak, leak_in_body, leak_in_head
from proxy.inject import Headers, header_value, without
from proxy.meter import UsageReader
from proxy.policy import Forward, Respond, audit_record, decide_request, is_model_host
from proxy.relay import (
    ClientGone,
    ClientProtocolError,
    Tally,
    client_event,
    client_flush,
    client_send,
    pipe,
    relay_body,
    upstream_event,
    upstream_send,
)
from proxy.rules import Style
from proxy.sides import HttpSide
from proxy.state import ProxyState
from proxy.token_refresh import MAX_REFRESH_BODY, capture_refresh_response, rewrite_refresh_request
from proxy.upload import linger, read_prefix, send_request
from proxy.upstream import ErrorType, UpstreamError, abort

log = logging.getLogger(__name__)

#: A GitHub API write is read this far to find the branch it names (file contents ride in it).
GITHUB_BODY_LIMIT = 8 * 1024 * 1024

MAX_REFRESH_ANSWER = 1024 * 1024


def request_id() -> str:
    """A fresh id for an audit line (unique enough to correlate, not a secret)."""
    return f"{random.getrandbits(64):016x}"


@dataclass(slots=True)
class _Meter:
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    error: str | None = None


async def respond(client: HttpSide, status: int, body: str, patience: float,
                  *, error_type: str | None = None, headers: Headers | None = None,
                  close: bool = False,
                  content_type: bytes = b"text/plain; charset=utf-8") -> None:
    data = body.encode()
    out = [(b"content-type", content_type),
           (b"content-length", str(len(data)).encode())]
    if error_type:
        out.append((b"x-proxy-error-type", error_type.encode()))
    out += headers or []
    if close or client.h11.their_state is not h11.DONE:
        out.append((b"connection", b"close"))
    try:
        client.queue(h11.Response(status_code=status, headers=out))
        client.queue(h11.Data(data=data))
        client.queue(h11.EndOfMessage())
    except h11.LocalProtocolError as exc:
        raise ClientGone("client connection cannot take an answer") from exc
    await client_flush(client, patience)


async def handle(
    state: ProxyState,
    client: HttpSide,
    request: h11.Request,
    target: Target,
    session: SessionAuth,
    *,
    tunnel: Target | None = None,
) -> bool:
    """Serve one request; True when the client connection may carry the next one.

    ``tunnel`` is the CONNECT target when the request came inside an intercepted tunnel.
    """
    config = state.config
    started, t0 = datetime.now(UTC), trio.current_time()
    method = request.method.decode("ascii", "replace")
    meter = _Meter()
    controls = state.controls
    verdict: Respond | Forward = decide_request(
        method=method, target=target, headers=list(request.headers), session=session,
        config=config, creds=state.creds, tunnel=tunnel)
    # The appliance's own identity has no placeholders to leak, and no egress list or budget.
    suspects = () if session.owner else controls.suspects(
        session.session_id, config.rules, target.host)
    note: str | None = None
    leak: Leak | None = leak_in_head(suspects, target.path, request.headers)
    decision = verdict.decision
    credential = None
    try:
        if leak is not None:
            verdict = refusals.honeytoken(session.name, target.host, leak)
            await controls.raise_alert(session, target.host, leak)
        elif isinstance(verdict, Forward) and not session.owner:
            verdict, note = await _gate(state, client, target, session, verdict)
        prefix: list[h11.Event] | None = None
        if isinstance(verdict, Forward):
            if client.h11.client_is_waiting_for_100_continue:
                await client_send(client, h11.InformationalResponse(status_code=100, headers=[]),
                                  config.read_timeout)
            prefix, refused = await _guard_remote(state, client, request, target, session)
            if refused is not None:
                verdict = refused
        if isinstance(verdict, Forward):
            prefix, leak = await _scan_body(state, client, request, target, verdict=verdict,
                                            suspects=suspects, prefix=prefix)
            if leak is not None:
                verdict = refusals.honeytoken(session.name, target.host, leak)
                await controls.raise_alert(session, target.host, leak)
        decision = verdict.decision
        if isinstance(verdict, Respond):
            note = verdict.note
            meter.status, meter.error = verdict.status, verdict.error_type
            await respond(client, verdict.status, verdict.body, config.read_timeout,
                          error_type=verdict.error_type, headers=verdict.headers,
                          close=verdict.close, content_type=verdict.content_type)
            if verdict.close:
                return False
        else:
            credential = verdict.credential
            refresh = verdict.rule is not None and verdict.rule.style is Style.CODEX_REFRESH
            try:
                if refresh and verdict.credential:
                    await _refresh(state, client, request=request, target=target,
                                   verdict=verdict, meter=meter, session=session.session_id)
                else:
                    await _forward(state, client, request=request, target=target,
                                   verdict=verdict, meter=meter, session=session,
                                   prefix=prefix)
            except UpstreamError as exc:
                decision, meter.error = Decision.ERROR, str(exc.error_type)
                if exc.error_type is ErrorType.DESTINATION_FORBIDDEN:
                    decision = Decision.DENIED
                log.info("upstream %s: %s", target.host, exc.message,
                         extra={"session": session.session_id})
                if client.h11.our_state is not h11.SEND_RESPONSE:
                    return False
                meter.status = exc.status
                await respond(client, exc.status, f"{exc.message}\n", config.read_timeout,
                              error_type=str(exc.error_type))
    except ClientProtocolError as exc:
        meter.error, decision = "CLIENT_PROTOCOL_ERROR", Decision.ERROR
        log.info("client broke HTTP/1.1 mid-request: %s", exc)
        return False
    except ClientGone as exc:
        meter.error = meter.error or "CLIENT_GONE"
        log.debug("client gone: %s", exc)
        return False
    finally:
        state.record(audit_record(
            request_id=request_id(), started=started,
            duration_s=trio.current_time() - t0, session=session.session_id, method=method,
            host=target.host, target=target.path, status=meter.status,
            bytes_in=meter.bytes_in, bytes_out=meter.bytes_out, credential=credential,
            decision=decision, error=meter.error, note=note,
        ))
    return client.reusable()


async def _gate(state: ProxyState, client: HttpSide, target: Target, session: SessionAuth,
                verdict: Forward) -> tuple[Respond | Forward, str | None]:
    """The session's egress policy and budgets (``controls.py``) for a forwarded request;
    the verdict and what to note in the audit line."""
    controls = state.controls
    model = is_model_host(state.config, target.host)
    egress = controls.egress(session, target.host, model_host=model)
    mode = str(mode_of(session.egress_mode, controls.settings.egress))
    note = None
    if egress is EgressDecision.DENY:
        return refusals.egress_denied(session.name, mode, target.host,
                                      why="denied by its egress lists"), None
    if egress is EgressDecision.ASK:
        answer = await controls.hold(session, target.host, client.stream)
        if answer == "gone":
            raise ClientGone("client hung up while its request was held")
        if answer != "allow":
            refused = ("nobody allowed it in time" if answer == "expired"
                       else "a person denied it")
            return refusals.egress_denied(session.name, mode, target.host, why=refused), None
        note = "egress ask: allowed by a person"
    elif egress is EgressDecision.LEARN:
        controls.learn(session, target.host)
        note = "egress learn: a new host"
    if verdict.meter is not None and controls.active:
        why = controls.budget_refusal(session)
        if why is not None:
            await controls.note_budget(session, why)
            return refusals.budget_exceeded(verdict.meter, session.name, why), None
        if session.budget_exceeded:
            await controls.note_budget(session, None)
    return verdict, note


async def _guard_remote(state: ProxyState, client: HttpSide, request: h11.Request,
                        target: Target, session: SessionAuth
                        ) -> tuple[list[h11.Event] | None, Respond | None]:
    """A push or a GitHub API write moves only the session's own branch (``gitguard``; the
    appliance's own identity: session branches and their pull requests): the part of the
    body that says which refs is read before anything goes upstream."""
    method = request.method.decode("ascii", "replace")
    push = gitguard.is_push(method, target.path)
    api = target.host == gitguard.GITHUB_API and method not in ("GET", "HEAD", "OPTIONS")
    if not (push or api):
        return None, None
    prefix: list[h11.Event] = []
    if has_body(request_framing(request.headers)):
        if header_value(request.headers, b"content-encoding") not in (None, b"identity"):
            return None, refusals.remote_refused(session.name, target.host,
                                                 "an encoded body cannot be checked")
        limit = gitguard.MAX_COMMANDS if push else GITHUB_BODY_LIMIT
        prefix = await read_prefix(client, limit, state.config.read_timeout)
    body = b"".join(e.data for e in prefix if isinstance(e, h11.Data))
    complete = not prefix or isinstance(prefix[-1], h11.EndOfMessage)
    checked = body if complete else None
    if push and session.owner:
        why = gitguard.owner_push_refusal(body, complete=complete)
    elif push:
        why = gitguard.push_refusal(session.name, body, complete=complete)
    elif session.owner:
        why = gitguard.owner_api_refusal(method, target.path, checked)
    else:
        why = gitguard.api_refusal(session.name, method, target.path, checked)
    if why is None:
        return prefix or None, None
    if session.owner:
        return prefix or None, refusals.owner_refused(target.host, why)
    return prefix or None, refusals.remote_refused(session.name, target.host, why)


async def _scan_body(state: ProxyState, client: HttpSide, request: h11.Request,
                     target: Target, *, verdict: Forward, suspects: tuple[Placeholder, ...],
                     prefix: list[h11.Event] | None = None,
                     ) -> tuple[list[h11.Event] | None, Leak | None]:
    """The body's first bytes, read and searched for foreign placeholders before anything
    goes upstream (not for the model hosts, nor encoded bodies: ``honeytoken.py``). A body
    already read (``prefix``) is searched as it is."""
    if not suspects or verdict.upgrade or is_model_host(state.config, target.host):
        return prefix, None
    if not has_body(request_framing(request.headers)):
        return prefix, None
    if header_value(request.headers, b"content-encoding") not in (None, b"identity"):
        return prefix, None
    if prefix is None:
        prefix = await read_prefix(client, BODY_SCAN, state.config.read_timeout)
    body = b"".join(e.data for e in prefix if isinstance(e, h11.Data))
    return prefix, leak_in_body(suspects, body)


async def _forward(state: ProxyState, client: HttpSide, *, request: h11.Request, target: Target,
                   verdict: Forward, meter: _Meter, session: SessionAuth,
                   prefix: list[h11.Event] | None) -> None:
    patience = state.config.read_timeout
    framing = request_framing(request.headers)
    head = h11.Request(method=request.method, target=target.path.encode(),
                       headers=framed(verdict.headers, framing))
    tally = Tally()
    try:
        conn, event = await send_request(
            state, client, head=head, target=target, session=session.session_id,
            credential=verdict.credential, framing=framing, tally=tally,
            upgrade=verdict.upgrade, prefix=prefix)
    finally:
        meter.bytes_in += tally.moved + sum(
            len(e.data) for e in prefix or () if isinstance(e, h11.Data))
    try:
        if isinstance(event, h11.InformationalResponse):  # 101: the pair becomes a pipe
            meter.status = 101
            await client_send(client, h11.InformationalResponse(
                status_code=101, headers=forwardable(list(event.headers), upgrade=True),
                reason=event.reason), patience)
            up, down = await pipe(client, conn, patience)
            meter.bytes_in += up
            meter.bytes_out += down
            await conn.aclose()
            return
        if not isinstance(event, h11.Response):
            raise UpstreamError("unexpected answer", ErrorType.UPSTREAM_PROTOCOL_ERROR)
        meter.status = event.status_code
        answer_framing, clean = response_framing(event.headers)
        out = framed(forwardable(list(event.headers), upgrade=False), answer_framing)
        # Answered before the upload ended (not MUST_CLOSE: a "connection: close" request ended).
        early = client.h11.their_state is h11.SEND_BODY
        if early:
            out.append((b"connection", b"close"))
        try:
            client.queue(h11.Response(status_code=event.status_code, reason=event.reason,
                                      headers=out))
        except h11.LocalProtocolError as exc:
            raise UpstreamError(f"unusable answer head: {exc}",
                                ErrorType.UPSTREAM_PROTOCOL_ERROR) from exc
        reader = None
        if verdict.meter is not None and 200 <= event.status_code < 300 \
                and state.controls.active:
            encoding = header_value(event.headers, b"content-encoding")
            reader = UsageReader(verdict.meter,
                                 content_type=header_value(event.headers, b"content-type"),
                                 encoded=encoding not in (None, b"identity"))
        try:
            meter.bytes_out += await relay_body(conn, client, patience, from_client=False,
                                                observe=reader.feed if reader else None)
        finally:
            if reader is not None:
                reading = reader.finish()
                state.controls.ledger.add(session.session_id, session.name, reading.model,
                                          reading.usage, complete=reading.complete)
        if early:  # the upstream refused the rest of the upload: reset, and let the client go
            abort(conn)
            await linger(client)
            return
        if not clean:
            await conn.aclose()
            return
    except UpstreamError as exc:
        await conn.aclose()
        if client.h11.our_state is not h11.SEND_RESPONSE:
            meter.error = str(exc.error_type)
            raise ClientGone(exc.message) from exc
        raise
    except BaseException:
        await conn.aclose()
        raise
    state.pool.release(conn)


async def _read_all(side: HttpSide, limit: int, patience: float, *, upstream: bool) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await (upstream_event if upstream else client_event)(side, patience)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > limit:
                raise UpstreamError("token refresh message too large",
                                    ErrorType.UPSTREAM_PROTOCOL_ERROR)
            chunks.append(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        else:
            raise ClientGone("connection closed mid-message")


async def _refresh(state: ProxyState, client: HttpSide, *, request: h11.Request, target: Target,
                   verdict: Forward, meter: _Meter, session: str) -> None:
    """The Codex token refresh: real refresh token in, real new tokens kept, dummies out."""
    patience = state.config.read_timeout
    real = state.creds.get("codex_refresh_token")
    body = await _read_all(client, MAX_REFRESH_BODY, patience, upstream=False)
    meter.bytes_in = len(body)
    ctype = (header_value(request.headers, b"content-type") or b"").decode("latin-1")
    rewritten = rewrite_refresh_request(body, ctype, real.value if real else "")
    headers = without(verdict.headers, b"content-length", b"transfer-encoding",
                      b"accept-encoding", b"expect")
    headers += [(b"content-length", str(len(rewritten.body)).encode()),
                (b"accept-encoding", b"identity")]
    conn, _ = await state.pool.acquire(target, session=session, credential=verdict.credential)
    try:
        await upstream_send(conn, h11.Request(method=request.method,
                                              target=target.path.encode(), headers=headers),
                            patience)
        await upstream_send(conn, h11.Data(data=rewritten.body), patience)
        await upstream_send(conn, h11.EndOfMessage(), patience)
        event = await upstream_event(conn, patience)
        while isinstance(event, h11.InformationalResponse):
            event = await upstream_event(conn, patience)
        if not isinstance(event, h11.Response):
            raise UpstreamError("unexpected answer", ErrorType.UPSTREAM_PROTOCOL_ERROR)
        answer = await _read_all(conn, MAX_REFRESH_ANSWER, patience, upstream=True)
    except BaseException:
        await conn.aclose()
        raise
    if response_framing(event.headers)[1]:
        state.pool.release(conn)
    else:
        await conn.aclose()
    encoded = header_value(event.headers, b"content-encoding") not in (None, b"identity")
    if event.status_code == 200 and encoded:
        # An encoded answer cannot be rewritten; passing it on would hand over real tokens.
        raise UpstreamError("token refresh answer arrived encoded",
                            ErrorType.UPSTREAM_PROTOCOL_ERROR)
    if event.status_code == 200:
        captured = capture_refresh_response(answer, rewritten.placeholder)
        answer = captured.body
        if captured.tokens:
            state.keep_refreshed(captured.tokens)
            if state.token_sink is not None:
                sink = state.token_sink
                try:
                    await trio.to_thread.run_sync(lambda: sink(dict(captured.tokens)))
                except Exception:
                    log.exception("cannot write refreshed Codex tokens back")
    meter.status, meter.bytes_out = event.status_code, len(answer)
    out = without(forwardable(list(event.headers), upgrade=False),
                  b"content-length", b"transfer-encoding")
    out.append((b"content-length", str(len(answer)).encode()))
    await client_send(client, h11.Response(status_code=event.status_code, headers=out,
                                           reason=event.reason), patience)
    await client_send(client, h11.Data(data=answer), patience)
    await client_send(client, h11.EndOfMessage(), patience)
