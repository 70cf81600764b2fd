"""One proxied request: decide, forward, stream the answer back, write the audit line.

Theory of operation. The server (``server.py``) reads a request head from the client and calls
:func:`handle`. The pure policy decides, the checks on what the request carries run
(``screen.py``); a refusal is answered here. A forwarded request gets an upstream connection from
its session's pool, its head (with the credential swapped in, and framing the proxy chose, see
``framing.py``) and then its body are sent event by event as they arrive (``upload.py``), and the
answer is relayed the same way, framed afresh, trailers included, so SSE and chunked bodies reach
the client as the upstream produces them and large bodies never sit in memory. A 101 answer turns
the pair into a raw byte pipe. The Codex refresh (a small JSON exchange) is the one request
buffered whole, because its body is rewritten both ways (``refresh_relay.py``). Failures before the
answer's head reach the client become 502/504 with ``X-Proxy-Error-Type``; after it, the client
connection is closed. The return value tells the server whether the client connection can carry
another request.
"""

from __future__ import annotations

import functools
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import h11
import trio

from appliance.audit import AuditRecord, Decision, Phase
from appliance.usage import Usage
from proxy import answer_cookies, creates, whose
from proxy.bodykind import coding, escapable
from proxy.directory import SessionAuth
from proxy.framing import framed, has_body, request_framing, response_framing
from proxy.heads import Target, forwardable
from proxy.inject import Headers, header_value
from proxy.meter import UsageReader
from proxy.policy import Forward, Respond, audit_record, decide_request
from proxy.refresh_relay import refresh
from proxy.relay import (
    ClientGone,
    ClientProtocolError,
    Meter,
    Tally,
    client_flush,
    client_send,
    pipe,
    relay_body,
)
from proxy.rules import Rule, Style
from proxy.screen import github_create, screen
from proxy.scrub import Scrubber, masked
from proxy.sides import HttpSide
from proxy.state import ProxyState
from proxy.upload import linger, send_request
from proxy.upstream import ErrorType, UpstreamConn, UpstreamError, abort
from proxy.wsframes import FrameScrubber

log = logging.getLogger(__name__)
#: Methods whose body has no meaning (RFC 9110): a server may read no body on them and take
#: the body for the next request on the connection, whose head (the injected credential in
#: it) would then finish a request the agent planted there. Such a request's upstream
#: connection carries nothing after it.
BODILESS = frozenset({b"GET", b"HEAD", b"DELETE", b"OPTIONS", b"TRACE"})


def request_id() -> str:
    """A fresh id for an audit line (unique enough to correlate, not a secret)."""
    return f"{random.getrandbits(64):016x}"


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


async def handle(state: ProxyState, client: HttpSide, request: h11.Request, target: Target,
                 session: SessionAuth, *, tunnel: Target | None = None) -> bool:
    """Serve one request (``tunnel``: the CONNECT target when it came inside an intercepted
    tunnel); True when the client connection may carry the next one."""
    config = state.config
    started, t0 = datetime.now(UTC), trio.current_time()
    method = request.method.decode("ascii", "replace")
    headers = list(request.headers)  # h11's own sequence is slow to walk: walked once here
    verdict: Respond | Forward = decide_request(
        method=method, target=target, headers=headers, session=session,
        config=config, creds=state.creds, tunnel=tunnel,
        chatgpt=state.controls.chatgpt(session.session_id))
    # Its lines of the day fill the disk: refused, counted a line a minute (auditshare.py).
    over = not session.owner and state.over_share(session.session_id)
    meter = Meter(decision=verdict.decision)
    said = _Said(started=started, t0=t0, session=session.session_id, method=method,
                 target=target)
    meter.opening = functools.partial(_opening, state, said, meter)
    state.lasting.begin(meter, t0 + config.long_after)
    try:
        verdict, prefix = await screen(state, client, request, target, headers=headers,
                                       session=session, verdict=verdict, meter=meter, over=over)
        meter.decision = verdict.decision
        if isinstance(verdict, Respond):
            meter.note = verdict.note
            meter.status, meter.error = verdict.status, verdict.error_type
            await respond(client, verdict.status, verdict.body, config.read_timeout,
                          error_type=verdict.error_type, headers=verdict.headers,
                          close=verdict.close, content_type=verdict.content_type)
            if client.h11.their_state is not h11.DONE:  # refused mid-upload: let it read why
                await linger(client)
                return False
            if verdict.close:
                return False
        elif not await _pass_on(state, client, request=request, headers=headers,
                                target=target, session=session, verdict=verdict, meter=meter,
                                prefix=prefix):
            return False
    except ClientProtocolError as exc:
        meter.error, meter.decision = "CLIENT_PROTOCOL_ERROR", Decision.ERROR
        log.info("client broke HTTP/1.1 mid-request: %s", exc,
                 extra={"session": session.session_id})
        return False
    except ClientGone as exc:
        meter.error = meter.error or "CLIENT_GONE"
        log.debug("client gone: %s", exc, extra={"session": session.session_id})
        return False
    finally:
        state.lasting.end(meter)
        if meter.release is not None:
            meter.release()
        state.record(said.line(meter, ident=request_id(), stream=meter.stream,
                               phase=None if meter.stream is None else Phase.END), counted=over)
    return client.reusable()


@dataclass(frozen=True, slots=True)
class _Said:
    """What each audit line of one exchange says of it, whatever the meter read."""

    started: datetime
    t0: float
    session: str | None
    method: str
    target: Target

    def line(self, meter: Meter, *, ident: str, phase: Phase | None,
             stream: str | None) -> AuditRecord:
        opening = phase is Phase.OPEN
        bytes_in, bytes_out = meter.so_far() if opening else (meter.bytes_in, meter.bytes_out)
        return audit_record(
            request_id=ident, started=self.started, duration_s=trio.current_time() - self.t0,
            session=self.session, method=self.method, host=self.target.host,
            target=self.target.path, status=meter.status,
            bytes_in=bytes_in, bytes_out=bytes_out, credential=meter.credential,
            decision=meter.decision, error=None if opening else meter.error,
            note=meter.note, phase=phase, stream=stream)


def _opening(state: ProxyState, said: _Said, meter: Meter) -> str:
    """The opening line of an exchange that stays open (written alone: its end line is
    the one counted); its id, the exchange's ``stream``: the proxy's run, a dot, a fresh id
    (``audit.run_of``)."""
    opened = f"{state.run}.{request_id()}"
    state.write(said.line(meter, ident=opened, phase=Phase.OPEN, stream=opened))
    return opened


async def _pass_on(state: ProxyState, client: HttpSide, *, request: h11.Request,
                   headers: Headers, target: Target, session: SessionAuth, verdict: Forward,
                   meter: Meter, prefix: list[h11.Event] | None) -> bool:
    """Forward the request and relay the answer (an upstream failure before the answer's
    head becomes the client's 502/504); False when the client connection cannot go on."""
    meter.credential = verdict.credential
    # A refresh is a POST; another method goes as sent, the dummy in it, its connection not kept.
    codex = verdict.rule is not None and verdict.rule.style is Style.CODEX_REFRESH
    try:
        if codex and verdict.credential and request.method == b"POST":
            found = await refresh(state, client, request=request, target=target,
                                  verdict=verdict, meter=meter, session=session.session_id)
            if found:
                await _echoed(state, session, target, credential=verdict.credential,
                              meter=meter, masked=found)
        else:
            await _forward(state, client, request=request, headers=headers, target=target,
                           verdict=verdict, meter=meter, session=session, prefix=prefix)
            state.answered(verdict.credential, meter.status, verdict.secrets)
    except UpstreamError as exc:
        meter.decision, meter.error = Decision.ERROR, str(exc.error_type)
        if exc.error_type in (ErrorType.DESTINATION_FORBIDDEN, ErrorType.REFRESH_REFUSED):
            meter.decision = Decision.DENIED
        # The message may quote the upstream's broken answer, which may echo the credential.
        reason = masked(exc.message, verdict.secrets)
        log.info("upstream %s: %s", target.host, reason, extra={"session": session.session_id})
        if client.h11.our_state is not h11.SEND_RESPONSE:
            return False
        meter.status = exc.status
        await respond(client, exc.status, f"{reason}\n", state.config.read_timeout,
                      error_type=str(exc.error_type))
    return True


async def _forward(state: ProxyState, client: HttpSide, *, request: h11.Request,
                   headers: Headers, target: Target, verdict: Forward, meter: Meter,
                   session: SessionAuth, prefix: list[h11.Event] | None) -> None:
    patience = state.config.read_timeout
    framing = request_framing(headers)
    head = h11.Request(method=request.method, target=target.path.encode(),
                       headers=framed(verdict.headers, framing))
    tally = meter.sending = Tally()
    try:
        conn, event = await send_request(
            state, client, head=head, target=target, session=session.session_id,
            credential=verdict.credential, framing=framing, tally=tally,
            upgrade=verdict.upgrade, prefix=prefix)
    finally:
        meter.sending = None
        meter.bytes_in += tally.moved + sum(
            len(e.data) for e in prefix or () if isinstance(e, h11.Data))
    scrub = Scrubber(verdict.secrets) if verdict.secrets else None
    _unmetered(state, verdict, session, getattr(event, "status_code", 0))
    try:
        if isinstance(event, h11.InformationalResponse):  # 101: the pair becomes a pipe
            await _become_pipe(client, conn, event, meter, patience, scrub=scrub)
            return
        if not isinstance(event, h11.Response):
            raise UpstreamError("unexpected answer", ErrorType.UPSTREAM_PROTOCOL_ERROR)
        meter.status = event.status_code
        answer = list(event.headers)  # h11's own sequence is slow to walk: walked once here
        if scrub is not None and (coded := _coded(request, event, answer)) is not None:
            raise UpstreamError(
                f"the service answered {coded} compressed, though asked for it uncompressed: "
                "an answer the proxy cannot read for the credential it may carry back is "
                "not passed on", ErrorType.UPSTREAM_PROTOCOL_ERROR)
        if _streamed(answer):  # in the log while it streams
            meter.open()
        clean, early = _queue_head(client, event, answer, scrub, meter, rules=state.config.rules)
        made = github_create(request, target, verdict, session, prefix)
        await _relay_answer(state, conn, client, event, answer, verdict=verdict, meter=meter,
                            session=session, scrub=scrub, made=made)
        if early:  # the upstream refused the rest of the upload: reset, and let the client go
            abort(conn)
            await linger(client)
            return
        if not clean or (has_body(framing) and request.method in BODILESS):
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
    finally:
        if scrub is not None and scrub.masked:
            await _echoed(state, session, target, credential=verdict.credential, meter=meter,
                          masked=scrub.masked)
    state.pool.release(conn)


def _unmetered(state: ProxyState, verdict: Forward, session: SessionAuth, status: int) -> None:
    """A request that spent what no meter reads (only sessions without a budget get here),
    once answered: counted as an unmetered request, so the usage says so."""
    if verdict.unmetered is not None and state.controls.active \
            and (status == 101 or 200 <= status < 300):
        state.controls.ledger.add(session.session_id, session.name, "unknown", Usage(),
                                  complete=False)


async def _relay_answer(state: ProxyState, conn: UpstreamConn, client: HttpSide,
                        event: h11.Response, headers: Headers, *, verdict: Forward,
                        meter: Meter, session: SessionAuth, scrub: Scrubber | None,
                        made: creates.Create | None) -> None:
    """The answer's body to the client, its usage read on the way and counted (however
    the relay ends); of a session's GitHub create, what it made remembered (``creates.py``)."""
    reader = _usage_reader(state, verdict, event.status_code, headers)
    meter.receiving = Tally()
    seen = bytearray()

    def keep(chunk: bytes) -> None:  # no more than is read of it
        if len(seen) + len(chunk) <= whose.MAX_ANSWER:
            seen.extend(chunk)

    try:
        meter.bytes_out += await relay_body(conn, client, state.config.read_timeout,
                                            from_client=False, tally=meter.receiving,
                                            observe=reader.feed if reader
                                            else keep if made is not None else None,
                                            scrub=scrub)
        if made is not None and meter.bytes_out <= whose.MAX_ANSWER:
            await state.controls.made.remember(session.session_id, creates.created(
                made, event.status_code, bytes(seen)))
    finally:
        meter.receiving = None
        if reader is not None:
            reading = reader.finish(sent=meter.bytes_in)
            state.controls.ledger.add(session.session_id, session.name, reading.model,
                                      reading.usage, complete=reading.complete)
            if not reading.measured:
                state.controls.unmeasured(session, reading.model)


async def _echoed(state: ProxyState, session: SessionAuth, target: Target, *,
                  credential: str | None, meter: Meter, masked: int) -> None:
    """The answer carried the credential back (masked on its way): noted, and an alert."""
    credential = credential or "credential"
    meter.note = f"the answer carried the person's {credential} back: masked ({masked}x)"
    with trio.CancelScope(shield=True):
        await state.controls.alert(
            session, f"echo:{credential}", f"{credential}: {target.host} sent the credential "
            "back in its answer; the proxy masked it", event="credential_echo",
            detail={"host": target.host, "credential": credential, "path": target.path})


async def _become_pipe(client: HttpSide, conn: UpstreamConn,
                       event: h11.InformationalResponse, meter: Meter, patience: float, *,
                       scrub: Scrubber | None) -> None:
    """A 101 answer: passed on, then raw bytes both ways until either side ends."""
    meter.status = 101
    headers = forwardable(list(event.headers), upgrade=True)
    if scrub:  # a code carried away refused as in :func:`_queue_head`
        try:
            headers, meter.note = answer_cookies.uncookied(scrub.head(headers), meter.note)
        except answer_cookies.Minted as exc:
            raise UpstreamError(str(exc), ErrorType.UPSTREAM_PROTOCOL_ERROR) from exc
    meter.open()  # in the log (with what was dropped) before the agent holds the pipe
    await client_send(client, h11.InformationalResponse(
        status_code=101, headers=headers,
        reason=scrub.reason(event.reason) if scrub else event.reason), patience)
    # With a credential in it the upgrade is a WebSocket (``policy.py``): its messages are
    # read, so one split over frames is masked whole.
    up, down = await pipe(client, conn, patience, FrameScrubber(scrub) if scrub else None)
    meter.bytes_in += up
    meter.bytes_out += down
    await conn.aclose()


def _streamed(headers: Headers) -> bool:
    """An answer of events as they happen (SSE), audited as it opens and again as it ends."""
    kind = header_value(headers, b"content-type") or b""
    return kind.split(b";")[0].strip().lower() == b"text/event-stream"


def _coded(request: h11.Request, event: h11.Response, headers: Headers) -> str | None:
    """The content coding of an answer's body (``headers``), when it has one other than
    ``identity``."""
    if request.method == b"HEAD" or event.status_code in (204, 304):
        return None  # no body
    found = coding(headers)
    return None if found is None else found[:40].decode("ascii", "replace")


def _queue_head(client: HttpSide, event: h11.Response, headers: Headers,
                scrub: Scrubber | None, meter: Meter, *, rules: tuple[Rule, ...]
                ) -> tuple[bool, bool]:
    """Queue the answer's head, framed afresh (the credential masked, cookies dropped, a code
    carried away refused: ``answer_cookies.py``); whether the upstream connection can be
    reused after its body, and whether it answered before the client's upload ended."""
    answer_framing, clean = response_framing(headers)
    out = framed(forwardable(headers, upgrade=False), answer_framing)
    reason = event.reason
    # Answered before the upload ended (not MUST_CLOSE: a "connection: close" request ended).
    early = client.h11.their_state is h11.SEND_BODY
    try:
        if scrub is not None:
            out, meter.note = answer_cookies.uncookied(scrub.head(out), meter.note, rules)
            reason, scrub.escapes = scrub.reason(reason), escapable(headers)
        client.queue(h11.Response(status_code=event.status_code, reason=reason,
                                  headers=out + [(b"connection", b"close")] * early))
    except (h11.LocalProtocolError, answer_cookies.Minted) as exc:
        raise UpstreamError(f"unusable answer head: {exc}",
                            ErrorType.UPSTREAM_PROTOCOL_ERROR) from exc
    return clean, early


def _usage_reader(state: ProxyState, verdict: Forward, status: int,
                  headers: Headers) -> UsageReader | None:
    """What reads the tokens used off a metered model's successful answer."""
    if verdict.meter is None or not 200 <= status < 300 or not state.controls.active:
        return None
    encoding = header_value(headers, b"content-encoding")
    return UsageReader(verdict.meter, content_type=header_value(headers, b"content-type"),
                       encoded=encoding not in (None, b"identity"))
