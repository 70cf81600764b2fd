"""The one layer in front of the routes on each listener (ASGI middleware, the I/O shell).

* :class:`Guard` wraps the app on the TCP listener: it gathers a request's facts, asks
  :mod:`api.request_policy` what may pass, finds the caller (a bearer token, else the session
  cookie) in the database, refuses with the JSON error body
  (for a WebSocket: an HTTP answer before any 101), and puts the caller in the scope
  (``clauderon.caller``) for the routes. Every response gets the security headers, never a
  CORS header; a sliding session gets its cookie refreshed.
* :func:`trusted` wraps the app on the Unix socket (0600: only the owner connects): the
  caller is :data:`appliance.auth.LOCAL`.

Both read a request's whole body (at most :data:`MAX_BODY`) before the route runs: a route
that answers without reading the body it was sent (``POST .../stop`` with ``{}``) would
otherwise race Hypercorn's keep-alive, which then drops the connection under the client's
next request.
* :func:`hooks_only` wraps it on the bridge-gateway listener containers reach: only
  ``POST /api/hooks`` (which checks its own per-session token), never from a browser.

Only the Unix socket's bind runs the app's lifespan; the other binds acknowledge it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import timedelta
from typing import Any

import trio

from api import cookies
from api.request_policy import (
    Facts,
    Policy,
    check_caller,
    classify,
    security_headers,
)
from appliance.auth import LOCAL, Caller, Principal, Scope
from appliance.authstore import AuthStore
from appliance.errors import (
    ClauderonError,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from appliance.sessions import utcnow
from appliance.store import AsyncStore

log = logging.getLogger(__name__)

AsgiScope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[AsgiScope, Receive, Send], Awaitable[None]]

#: A token's last use is written at most this often.
TOKEN_TOUCH = timedelta(minutes=5)

#: The largest request body (the app's own limit is 16 MiB; multipart framing on top).
MAX_BODY = 16 * 1024 * 1024 + 64 * 1024
#: A hook event is a session id and an event's name (about 100 bytes): an agent's longer
#: body is refused unread, so none makes the API's one loop parse megabytes of JSON.
HOOK_BODY = 4 * 1024
#: A body must arrive within this long.
BODY_SECONDS = 60
#: An open WebSocket's sign-in is checked again this often.
RECHECK_SECONDS = 5.0
#: The framings every layer reasons about. Hypercorn takes HTTP/2 on a plain listener
#: whatever ALPN offers (a client's prior knowledge, or ``Upgrade: h2c``); each connection
#: then carries a hundred requests at once, past the share of connections a container has
#: on the hook listener, and past what the TCP listener's limits were written for.
HTTP1 = frozenset({"1.0", "1.1"})

CALLER = "clauderon.caller"
HTTPS = "clauderon.https"


def caller_of(scope: Any) -> Caller | None:
    found = scope.get(CALLER)
    return found if isinstance(found, Caller) else None


async def not_a_request(scope: AsgiScope, receive: Receive, send: Send) -> bool:
    """Whether ``scope`` is neither HTTP nor a WebSocket, once it is dealt with: a lifespan
    is acknowledged (the app's runs on the Unix socket's bind only), anything else ignored."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                break
    return scope["type"] not in ("http", "websocket")


def _headers(scope: AsgiScope) -> dict[str, str]:
    """Request headers by lower-case name; a repeated one is joined (so a doubled ``Host``
    or ``Origin`` parses as neither and is refused)."""
    out: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        sep = "; " if name == "cookie" else ", "
        out[name] = f"{out[name]}{sep}{value}" if name in out else value
    return out


def _facts(scope: AsgiScope, h: dict[str, str]) -> Facts:
    """What the request policy reads of a request whose headers are ``h``."""
    websocket = scope["type"] == "websocket"
    # WebSocket scopes say ws/wss; the page that opened one has an http(s) origin.
    scheme = {"ws": "http", "wss": "https"}.get(str(scope.get("scheme")),
                                                 str(scope.get("scheme")))
    return Facts(
        method="GET" if websocket else str(scope.get("method", "GET")).upper(),
        path=str(scope.get("path", "/")), websocket=websocket, scheme=scheme,
        host=h.get("host", ""), origin=h.get("origin"), content_type=h.get("content-type"),
        has_body=h.get("content-length", "0").strip() not in ("0", "")
        or "transfer-encoding" in h,
        fetch_site=h.get("sec-fetch-site"), fetch_mode=h.get("sec-fetch-mode"),
        bearer=bool(h.get("authorization")))


async def refuse(scope: AsgiScope, send: Send, error: ClauderonError) -> None:
    body = json.dumps(error.to_json()).encode()
    https = scope.get("scheme") in ("https", "wss")
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
               *security_headers(https=https)]
    prefix = "websocket.http.response" if scope["type"] == "websocket" else "http.response"
    if scope["type"] == "websocket" and "websocket.http.response" not in scope.get(
            "extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": f"{prefix}.start", "status": error.http_status, "headers": headers})
    await send({"type": f"{prefix}.body", "body": body})


async def _discard_body(receive: Receive) -> None:
    """Read and drop a refused request's body (bounded in size and time)."""
    size = 0
    with trio.move_on_after(BODY_SECONDS):
        while size <= MAX_BODY:
            message = await receive()
            size += len(message.get("body", b""))
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                return


async def buffered(app: ASGIApp, scope: AsgiScope, receive: Receive, send: Send, *,
                   limit: int = MAX_BODY) -> None:
    """Run ``app`` on an HTTP request whose body has been read in full (at most ``limit``
    bytes: a longer one is refused unread)."""
    if scope["type"] != "http":
        await app(scope, receive, send)
        return
    chunks: list[bytes] = []
    size = 0
    with trio.move_on_after(BODY_SECONDS) as late:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                shown = f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"
                if message.get("more_body"):
                    await _discard_body(receive)  # dropped unread, so the answer arrives
                await refuse(scope, send, PayloadTooLarge(
                    f"the request body is larger than {shown}"))
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
    if late.cancelled_caught:
        await refuse(scope, send, InvalidInput(
            f"the request body did not arrive within {BODY_SECONDS} s"))
        return
    pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replay() -> dict[str, Any]:
        return pending.pop() if pending else await receive()

    await app(scope, replay, send)


def _with_headers(send: Send, *, https: bool, cookie: str | None,
                  protocol: str | None = None) -> Send:
    """``send`` with the security headers, a refreshed cookie, and a WebSocket accepted in
    ``protocol`` (a browser that asked for one fails a handshake that names none)."""
    extra = security_headers(https=https)

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.accept" and protocol and not message.get(
                "subprotocol"):
            message = {**message, "subprotocol": protocol}
        if message["type"] in ("http.response.start", "websocket.http.response.start"):
            headers = [(k, v) for k, v in message.get("headers", [])
                       if not k.lower().startswith(b"access-control-")]
            ours = {k.lower() for k, _ in extra}
            headers = [(k, v) for k, v in headers if k.lower() not in ours] + extra
            sets_cookie = any(k.lower() == b"set-cookie" for k, _ in headers)
            if cookie is not None and not sets_cookie:
                headers.append((b"set-cookie", cookie.encode()))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


class Guard:
    def __init__(self, app: ASGIApp, *, policy: Policy, store: AsyncStore, key: bytes) -> None:
        self.app = app
        self.policy = policy
        self.store = store
        self.key = key  # the instance key: browser sessions' binds (api/cookies.py)
        self.auth = AuthStore(store.sync)

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if await not_a_request(scope, receive, send):
            return
        if scope.get("http_version") not in HTTP1:  # a peer's prior knowledge, or h2c
            await refuse(scope, send, InvalidInput("this API speaks HTTP/1.1"))
            return
        h = _headers(scope)
        facts = _facts(scope, h)
        websocket = facts.websocket
        https = facts.scheme == "https" or (facts.origin or "").startswith("https://") \
            or cookies.sent_secure(h.get("cookie"))
        refusal = self.policy.check(facts)
        access = classify(facts.method, facts.path, websocket=websocket)
        caller: Caller | None = None
        cookie: str | None = None
        valid: Callable[[], bool] | None = None
        if refusal is None:
            bind = cookies.presented_bind(h.get(cookies.BIND_HEADER),
                                          h.get("sec-websocket-protocol"))
            caller, cookie, valid = await self._identify(h.get("authorization"),
                                                         h.get("cookie"), bind, https=https)
            refusal = check_caller(access, caller)
        if refusal is not None:
            log.info("refused %s %s: %s", facts.method, facts.path[:200], refusal.message)
            if not websocket:
                await _discard_body(receive)  # read it, so the answer reaches the client
            await refuse(scope, send, refusal)
            return
        scope = {**scope, CALLER: caller, HTTPS: https}
        wrapped = _with_headers(send, https=https, cookie=cookie,
                                protocol=cookies.PROTOCOL if cookies.offers_protocol(
                                    h.get("sec-websocket-protocol")) else None)
        if websocket and valid is not None:
            await self._while_valid(scope, receive, wrapped, valid)
        else:
            await buffered(self.app, scope, receive, wrapped)

    async def _while_valid(self, scope: AsgiScope, receive: Receive, send: Send,
                           valid: Callable[[], bool]) -> None:
        """Run a WebSocket for as long as the sign-in that opened it stands: signing out,
        revoking the session, its passkey or the token closes it within
        :data:`RECHECK_SECONDS` (code 4401), not when the socket happens to end."""
        revoked = False
        async with trio.open_nursery() as nursery:
            async def watch() -> None:
                nonlocal revoked
                while True:
                    await trio.sleep(RECHECK_SECONDS)
                    if not await self.store.run(valid):
                        revoked = True
                        nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            await self.app(scope, receive, send)
            nursery.cancel_scope.cancel()
        if revoked:
            log.info("closed %s: its sign-in was revoked", str(scope.get("path"))[:200])
            with trio.move_on_after(5):
                await send({"type": "websocket.close", "code": 4401,
                            "reason": "signed out"})

    async def _identify(self, authorization: str | None, cookie_header: str | None,
                        bind: str | None, *, https: bool
                        ) -> tuple[Caller | None, str | None, Callable[[], bool] | None]:
        """The caller, the refreshed cookie when its session slid, and a check that the
        credential still stands. A request with an ``Authorization`` header is judged by it
        alone (never by a cookie as well); a cookie counts only with its ``bind``."""
        now = utcnow()
        if authorization is not None:
            kind, _, presented = authorization.partition(" ")
            presented = presented.strip()
            if kind.lower() != "bearer" or not presented or len(presented) > 200:
                return None, None, None
            token = await self.store.run(self.auth.token_by_secret, presented)
            if token is None:
                return None, None, None
            if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH:
                await self.store.run(self.auth.token_used, token.id, now)
            return (Caller(principal=Principal.TOKEN, scope=token.scope, token_id=token.id),
                    None, lambda: self.auth.token_by_secret(presented) is not None)
        secret = cookies.bound_secret(self.key, cookie_header, bind)
        if secret is None:
            return None, None, None
        session = await self.store.run(self.auth.session_by_secret, secret, now)
        if session is None:
            return None, None, None
        refreshed = None
        if session.needs_touch(now):
            await self.store.run(self.auth.touch_session, session.id, now)
            refreshed = cookies.set_cookie(secret, https=https)
        return (Caller(principal=Principal.BROWSER, scope=Scope.READ_WRITE, session=session),
                refreshed, lambda: self.auth.session_by_secret(secret, utcnow()) is not None)



def trusted(app: ASGIApp) -> ASGIApp:
    """The Unix socket: its owner is the appliance's owner (the lifespan runs here)."""

    async def wrapped(scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, CALLER: LOCAL, HTTPS: False}
        await buffered(app, scope, receive, send)

    return wrapped


def hooks_only(app: ASGIApp) -> ASGIApp:
    """The bridge-gateway listener: ``POST /api/hooks`` from containers, nothing else."""

    async def guarded(scope: AsgiScope, receive: Receive, send: Send) -> None:
        if await not_a_request(scope, receive, send):
            return
        if scope.get("http_version") not in HTTP1:
            await refuse(scope, send, InvalidInput("hooks are sent over HTTP/1.1"))
            return
        h = _headers(scope)
        if scope["type"] == "http" and scope["path"] == "/api/hooks" and \
                scope.get("method") == "POST":
            if "origin" in h or h.get("sec-fetch-site") not in (None, "none"):
                # The hook script is curl; a browser (a page on this host) says where from.
                await refuse(scope, send, Forbidden("hooks come from containers, not browsers"))
                return
            await buffered(app, scope, receive, _with_headers(send, https=False, cookie=None),
                           limit=HOOK_BODY)
            return
        await refuse(scope, send, NotFound("only POST /api/hooks is served on this address"))

    return guarded
