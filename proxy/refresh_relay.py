"""The Codex token refresh, the one proxied request buffered whole.

Its body is rewritten both ways (``token_refresh.py``, pure): the placeholder refresh token
the agent sends becomes the real one, and the real tokens in the answer are kept here and
replaced by placeholders before the answer goes back. So both messages are read whole,
within a size limit, and the answer is sent with a length of its own. One refresh of a
refresh token goes to the upstream at a time (``ProxyState.refreshing``, one lock per
credential), with the token held then; a grant that carries none of the person's (the
agent's own code or refresh token) waits for no one, and a refresh waits for another of the
same token at most :data:`REFRESH_WAIT` seconds (503: try again), and the one under way has
:data:`REFRESH_DEADLINE` seconds for its answer (504), so an endpoint that stalls holds the
turn no longer. A session has one refresh under way or waiting at a time
(``ProxyState.refreshers``), so none queues many ahead of the others; the new tokens are
written to the host once the turn is given up (``ProxyState.write_back``), so a slow disk
holds up no other refresh. A refresh within :data:`REFRESH_KEPT` seconds of a successful one
is answered as that one was (its dummies), without the endpoint: the proxy injects the new
tokens already, and each refresh rotates the person's refresh token, so an agent that
loops refreshes would spend the person's chain of tokens and hammer the endpoint. But once
a request with that answer's access token was answered 401 (revoked), the next refresh goes
to the endpoint, once (``ProxyState.answered``). The Codex CLI takes the answer as any
other (it refreshes on a 401 and when its tokens are days old); a 429 would fail the
request it refreshed for.
"""

from __future__ import annotations

import h11
import trio

from proxy.answer_cookies import uncookied
from proxy.bodykind import coding
from proxy.heads import Target, forwardable
from proxy.inject import body_forms, header_value, without
from proxy.policy import Forward
from proxy.relay import Meter, client_send
from proxy.scrub import Scrubber, masked
from proxy.sides import HttpSide
from proxy.state import ProxyState
from proxy.token_refresh import (
    MAX_REFRESH_BODY,
    RefreshRequest,
    capture_refresh_response,
    rewrite_refresh_request,
)
from proxy.upstream import ErrorType, UpstreamError
from proxy.whole import exchange, read_all

MAX_REFRESH_ANSWER = 1024 * 1024
#: The refresh token the relay puts into a refresh (``token_refresh.py`` keeps its answer).
REFRESH_CREDENTIAL = "codex_refresh_token"
#: How long a refresh waits at most for another of the same refresh token to end.
REFRESH_WAIT = 30.0
#: How long the refresh under way has for its answer: less than :data:`REFRESH_WAIT`, so one
#: that waits outlasts an endpoint that stalls the one before it.
REFRESH_DEADLINE = 15.0
#: How long a successful refresh's answer answers the next ones (the endpoint not asked).
REFRESH_KEPT = 300.0
#: Headers that name a client (OAuth's ``Authorization: Basic``, a cookie) or bind the new
#: tokens to a key (a DPoP proof) as the agent chose: none goes with the person's token.
CLIENT_HEADERS = (b"authorization", b"cookie", b"dpop")
#: The headers of the answer to a refresh with the real refresh token that the agent gets.
ANSWER_HEADERS = frozenset({b"content-type", b"cache-control", b"pragma", b"date",
                            b"retry-after"})


async def refresh(state: ProxyState, client: HttpSide, *, request: h11.Request, target: Target,
                  verdict: Forward, meter: Meter, session: str) -> int:
    """The Codex token refresh: real refresh token in, real new tokens kept, dummies out;
    returns how many real tokens the answer still carried elsewhere (masked, ``scrub.py``)."""
    patience = state.config.read_timeout
    body = await read_all(client, MAX_REFRESH_BODY, patience, upstream=False,
                          what="token refresh message")
    meter.bytes_in = len(body)
    # One refresh of a refresh token at a time: each goes with the token the one before was
    # answered (a token endpoint that sees a spent one again takes it for a theft and
    # revokes all). A grant the person's token does not go into holds no one up.
    lock = await _turn(state, request, target, body, patience, session=session)
    try:
        event, answer, sent, taken = await _exchange(state, request, target=target,
                                                    verdict=verdict, body=body, meter=meter,
                                                    session=session)
    finally:
        if lock is not None:
            lock.release()
            state.refreshers.discard(session)
    await state.write_back()
    # Any real token left (an error quoting the one sent, a token where none is expected).
    # The one sent in each form the body may have carried it (``verdict.secrets``).
    scrub = Scrubber((*verdict.secrets, *body_forms(sent), *(t.encode() for t in taken)))
    answer = scrub.feed(answer) + scrub.finish()
    meter.status, meter.bytes_out = event.status_code, len(answer)
    out, meter.note = uncookied(scrub.head(without(forwardable(
        list(event.headers), upgrade=False), b"content-length", b"transfer-encoding")), meter.note)
    out.append((b"content-length", str(len(answer)).encode()))
    await client_send(client, h11.Response(status_code=event.status_code, headers=out,
                                           reason=scrub.reason(event.reason)), patience)
    await client_send(client, h11.Data(data=answer), patience)
    await client_send(client, h11.EndOfMessage(), patience)
    return scrub.masked


async def _turn(state: ProxyState, request: h11.Request, target: Target, body: bytes,
                patience: float, *, session: str) -> trio.Lock | None:
    """The lock of the refresh token this refresh goes with, held (None: the person's token
    does not go into it); :class:`UpstreamError`: 403 when it asks for another client or
    scope than Codex's, 503 when the session has one under way or waiting already, or
    another refresh of that token did not end within :data:`REFRESH_WAIT` seconds."""
    ctype = (header_value(request.headers, b"content-type") or b"").decode("latin-1")
    query = target.path.partition("?")[2]
    rewritten = rewrite_refresh_request(body, ctype, "-", own=state.controls.chatgpt(session),
                                        query=query)
    if rewritten.refused:
        raise UpstreamError(f"Blocked by Clauderon: {rewritten.refused}",
                            ErrorType.REFRESH_REFUSED, status=403)
    if rewritten.placeholder is None:
        return None
    if session in state.refreshers:
        raise UpstreamError("this session's last refresh of the person's Codex login has not "
                            "ended; try the refresh again once it has",
                            ErrorType.UPSTREAM_TIMEOUT, status=503)
    lock = state.refreshing(REFRESH_CREDENTIAL)
    wait = min(REFRESH_WAIT, patience)
    state.refreshers.add(session)
    try:
        lock.acquire_nowait()
        return lock
    except trio.WouldBlock:
        pass
    with trio.move_on_after(wait) as waited:
        try:
            await lock.acquire()
        except BaseException:
            state.refreshers.discard(session)
            raise
    if waited.cancelled_caught:
        state.refreshers.discard(session)
        raise UpstreamError(
            "another refresh of the person's Codex login is under way and did not end within "
            f"{wait:g} seconds; try the refresh again", ErrorType.UPSTREAM_TIMEOUT, status=503)
    return lock


async def _exchange(state: ProxyState, request: h11.Request, *, target: Target,
                    verdict: Forward, body: bytes, meter: Meter, session: str
                    ) -> tuple[h11.Response, bytes, str, tuple[str, ...]]:
    """The refresh sent with the refresh token held now (or answered as the last success,
    :data:`REFRESH_KEPT`), and its answer with the real tokens it carried taken out (kept,
    from a success); the token sent, and those taken."""
    real = state.creds.get(REFRESH_CREDENTIAL)
    sent = real.value if real else ""
    ctype = (header_value(request.headers, b"content-type") or b"").decode("latin-1")
    rewritten = rewrite_refresh_request(body, ctype, sent, own=state.controls.chatgpt(session),
                                        query=target.path.partition("?")[2])
    fresh = None if rewritten.placeholder is None else state.fresh_refresh(REFRESH_KEPT)
    if fresh is not None:
        event, answer = fresh
        meter.note = f"answered as the refresh of the person's Codex login {REFRESH_KEPT:g} " \
                     "seconds ago or less was: the endpoint not asked"
    else:
        event, answer = await _upstream(state, request, target=target, verdict=verdict,
                                        rewritten=rewritten, sent=sent, session=session)
    if rewritten.placeholder is None:
        # Only the refresh the real refresh token went into answers with the person's
        # tokens; another grant (the agent's own code, say) is answered with another's.
        return event, answer, sent, ()
    # Tokens in any answer are taken out; a success's are kept (the one sent is spent).
    captured = capture_refresh_response(answer, rewritten.placeholder)
    success = 200 <= event.status_code < 300
    if success and not captured.readable:
        raise UpstreamError("token refresh answer is neither JSON nor a form: the tokens it "
                            "may hold cannot be taken out", ErrorType.UPSTREAM_PROTOCOL_ERROR)
    if captured.tokens and success and fresh is None:
        state.keep_refreshed(captured.tokens, answer=(event, answer))
    # Its head says what the body is and nothing else: a header may hold a token too.
    head = h11.Response(status_code=event.status_code, reason=b"", headers=[
        (k, v) for k, v in event.headers if k in ANSWER_HEADERS])
    return head, captured.body, sent, (*captured.tokens.values(), *captured.hidden)


async def _upstream(state: ProxyState, request: h11.Request, *, target: Target,
                    verdict: Forward, rewritten: RefreshRequest, sent: str, session: str
                    ) -> tuple[h11.Response, bytes]:
    """The refresh sent to the endpoint and its answer, within :data:`REFRESH_DEADLINE`."""
    headers = without(verdict.headers, b"content-length", b"transfer-encoding",
                      b"accept-encoding", b"expect")
    if rewritten.content_type:  # the type the body was written in, alone
        headers = without(headers, b"content-type", b"content-encoding", *CLIENT_HEADERS)
        headers.append((b"content-type", rewritten.content_type))
    headers += [(b"content-length", str(len(rewritten.body)).encode()),
                (b"accept-encoding", b"identity")]
    try:
        with trio.fail_after(REFRESH_DEADLINE):
            event, answer = await exchange(
                state, target, h11.Request(method=request.method, target=target.path.encode(),
                                           headers=headers),
                rewritten.body, session=session, credential=verdict.credential,
                limit=MAX_REFRESH_ANSWER, what="token refresh message")
    except trio.TooSlowError as exc:
        raise UpstreamError(
            f"the token refresh got no answer from {target.host} within {REFRESH_DEADLINE:g} "
            "seconds: ended, so that no other refresh waits for it; try the refresh again",
            ErrorType.UPSTREAM_TIMEOUT, status=504) from exc
    except UpstreamError as exc:
        # Its message may quote the body sent: masked for the token in it, which may be a
        # later one than the request's verdict knew.
        raise UpstreamError(masked(exc.message, body_forms(sent)), exc.error_type,
                            status=exc.status) from exc
    if answer and coding(event.headers) is not None:
        # An encoded answer can be neither rewritten nor masked: passing it on would hand
        # over real tokens (an error quoting the body sent has the real refresh token).
        raise UpstreamError("token refresh answer arrived encoded",
                            ErrorType.UPSTREAM_PROTOCOL_ERROR)
    return event, answer
