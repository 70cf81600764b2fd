"""Sign-in routes: one-time links, passkeys, sign out, and the records behind them.

How a browser gets in: ``clauderon web`` asks the Unix socket for a one-time link
(``POST /api/auth/links``, refused on TCP) and opens ``/signin#token=...``; the page posts
the token (``POST /api/auth/link``) and gets a session cookie, then offers to register a
passkey (allowed only within minutes of a sign-in: the first passkey can only follow a link).
Later sign-ins use the passkey. The token travels in the URL's fragment, which no request,
log line or ``Referer`` carries, and the page removes it from the address bar at once.

Every sign-in makes a new session (an old cookie's session ends: rotation); sign-out ends
the session in the database. Neighbours: :mod:`api.guard` (who is calling),
:mod:`appliance.authstore`, :mod:`appliance.passkeys`.
"""

from __future__ import annotations

import functools
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Blueprint, Response, request

from api.body import choice, json_body
from api.context import current
from api.cookies import bind_for, clear_cookies, set_cookie
from api.guard import HTTPS, caller_of
from api.openapi import OBJECT, RouteDoc, documented, err, ok
from api.request_policy import host_name
from appliance import passkeys
from appliance.auth import (
    CHALLENGE_LIFETIME,
    BrowserSession,
    Method,
    Principal,
    Scope,
    clean_name,
    label_for,
    open_login,
    seal_login,
)
from appliance.authstore import AuthStore
from appliance.errors import Forbidden, InvalidInput, TooManyRequests, Unauthorized
from appliance.sessions import utcnow
from appliance.store import AsyncStore

log = logging.getLogger(__name__)

CEREMONY = {"type": "object", "required": ["ceremony", "options"], "properties": {
    "ceremony": {"type": "string"}, "options": OBJECT}}
#: A ceremony's token is about 80 characters (appliance/auth.py, ``seal_login``).
MAX_CEREMONY = 200
ANSWER = {"type": "object", "required": ["ceremony", "credential"], "properties": {
    "ceremony": {"type": "string"}, "credential": OBJECT, "name": {"type": "string"}}}


def _browser() -> BrowserSession:
    caller = caller_of(request.scope)
    if caller is None or caller.session is None:
        raise Forbidden("only a signed-in browser can do this")
    return caller.session


def _local() -> None:
    caller = caller_of(request.scope)
    if caller is None or caller.principal is not Principal.LOCAL:
        raise Forbidden("sign-in links and tokens are made by the CLI on the appliance's "
                        "machine (`clauderon web`, `clauderon auth token create`), never over "
                        "the network")


def _where() -> tuple[str, str]:
    """The relying party id and origin of a browser's request (the guard checked both)."""
    origin = request.headers.get("Origin")
    rp_id = host_name(request.headers.get("Host", "")) or ""
    if not origin:
        raise InvalidInput("passkeys are used from a browser (its request names its Origin)")
    if not passkeys.valid_rp_id(rp_id):
        raise InvalidInput(f"passkeys need a host name, not the address {rp_id}: open the "
                           "web UI at http://localhost:<port> (or its public name)")
    return rp_id, origin


def _signed_out(response: Response) -> Response:
    """``response`` with the headers that remove the session cookie."""
    for value in clear_cookies(https=bool(request.scope.get(HTTPS))):
        response.headers.add("Set-Cookie", value)
    return response


def _credential(body: dict[str, Any]) -> dict[str, Any]:
    credential = body.get("credential")
    if not isinstance(credential, dict):
        raise InvalidInput("credential must be the browser's answer", field="credential")
    return credential


def _attempt(work: Callable[[], Awaitable[Response]]) -> Callable[[], Awaitable[Response]]:
    """A sign-in attempt. A good secret always signs in, however many wrong ones came
    before it from the same address (behind ``tailscale serve`` every client is 127.0.0.1,
    neighbours included); a failed attempt counts against its address and in all
    (:mod:`api.ratelimit`), and past the limit is answered 429. A failure writes nothing."""
    @functools.wraps(work)
    async def attempt() -> Response:
        try:
            return await work()
        except (Unauthorized, InvalidInput) as exc:
            wait = current().signin_limiter.allow(request.remote_addr or "?")
            if wait is not None:
                raise TooManyRequests(
                    f"too many sign-in attempts; try again in {max(int(wait), 1)} s") from exc
            raise

    return attempt


blueprint = Blueprint("signin", __name__)


def _stores() -> tuple[AsyncStore, AuthStore]:
    store = current().store
    return store, AuthStore(store.sync)


async def start_session(method: Method, passkey_id: str | None = None) -> Response:
    store, auth = _stores()
    caller = caller_of(request.scope)
    old = caller.session.id if caller and caller.session else None
    session, secret = await store.run(lambda: auth.create_session(
        method=method, passkey_id=passkey_id, now=utcnow(), replacing=old,
        label=label_for(request.headers.get("User-Agent", ""))))
    log.info("browser session %s signed in with %s%s", session.id, method,
             f" {passkey_id}" if passkey_id else "")
    # The page keeps the bind (per port; the cookie is not): see api/cookies.py.
    bind = bind_for(current().instance_key, secret)
    response = Response(json.dumps({"session": session.to_json(), "bind": bind}),
                        content_type="application/json")
    response.headers["Set-Cookie"] = set_cookie(secret, https=bool(request.scope.get(HTTPS)))
    return response


@blueprint.get("/api/auth/me")
@documented(RouteDoc(summary="Whether this request is signed in, and as what",
                     responses={"200": ok(OBJECT)}))
async def me() -> dict[str, Any]:
    store, auth = _stores()
    caller = caller_of(request.scope)
    if caller is None:
        return {"signed_in": False}
    body: dict[str, Any] = {"signed_in": True, "via": str(caller.principal),
                            "scope": str(caller.scope)}
    if caller.session is not None:
        rp_id = host_name(request.headers.get("Host", "")) or ""
        keys = await store.run(auth.passkeys, rp_id)
        body.update(session=caller.session.to_json(),
                    can_add_passkey=caller.session.fresh(utcnow()),
                    passkeys_here=len(keys), passkeys_possible=passkeys.valid_rp_id(rp_id))
    return body


@blueprint.post("/api/auth/link")
@documented(RouteDoc(summary="Sign this browser in with a one-time link's token",
                     body={"type": "object", "required": ["token"],
                           "properties": {"token": {"type": "string"}}},
                     responses={"200": ok(OBJECT, "Signed in (cookie set)"),
                                "401": err("Unknown, used or expired link")}))
@_attempt
async def redeem() -> Response:
    store, auth = _stores()
    token = (await json_body()).get("token")
    if not isinstance(token, str) or not token or len(token) > 200:
        raise InvalidInput("token must be the one-time link's token", field="token")
    link = await store.run(auth.redeem_link, token, utcnow())
    log.info("one-time link %s used", link.id)
    return await start_session(Method.LINK)


@blueprint.post("/api/auth/logout")
@documented(RouteDoc(summary="Sign this browser out (its session ends on the server)",
                     responses={"204": {"description": "Signed out"}}))
async def logout() -> Response:
    store, auth = _stores()
    session = _browser()
    await store.run(auth.end_session, session.id)
    log.info("browser session %s signed out", session.id)
    return _signed_out(Response("", status=204))


@blueprint.post("/api/auth/passkey/register/options")
@documented(RouteDoc(summary="Start registering a passkey (a browser signed in within "
                             "the last minutes)",
                     responses={"200": ok(CEREMONY), "403": err("Sign in again first")}))
async def register_options() -> dict[str, Any]:
    store, auth = _stores()
    session = _browser()
    if not session.fresh(utcnow()):
        raise Forbidden("adding a passkey needs a recent sign-in: sign out and in again "
                        "(or run `clauderon web`), then add it within 10 minutes")
    rp_id, origin = _where()
    existing = await store.run(auth.passkeys, rp_id)
    options, challenge = passkeys.registration_options(
        rp_id=rp_id, instance_key=current().instance_key, existing=existing,
        display_name=f"Clauderon on {socket.gethostname()}"[:64])
    pending = await store.run(lambda: auth.put_challenge(
        kind="register", challenge=challenge, rp_id=rp_id, origin=origin,
        session_id=session.id, now=utcnow()))
    return {"ceremony": pending.id, "options": options}


@blueprint.post("/api/auth/passkey/register")
@documented(RouteDoc(summary="Finish registering a passkey", body=ANSWER,
                     responses={"201": ok(OBJECT), "400": err("Did not verify")}))
async def register_passkey() -> tuple[dict[str, Any], int]:
    store, auth = _stores()
    session = _browser()
    body = await json_body()
    pending = await store.run(auth.take_challenge, str(body.get("ceremony", ""))[:100],
                              "register", utcnow())
    rp_id, origin = _where()
    if pending.session_id != session.id or (rp_id, origin) != (pending.rp_id,
                                                                 pending.origin):
        raise Forbidden("this passkey request belongs to another sign-in; start again")
    new = passkeys.verify_registration(_credential(body), challenge=pending.challenge,
                                       rp_id=rp_id, origin=origin)
    key = await store.run(lambda: auth.add_passkey(
        credential_id=new.credential_id, public_key=new.public_key,
        sign_count=new.sign_count, rp_id=rp_id, backed_up=new.backed_up, now=utcnow(),
        name=clean_name(body.get("name"), label_for(request.headers.get("User-Agent", "")))))
    log.info("passkey %s registered for %s by session %s", key.id, rp_id, session.id)
    return {"passkey": key.to_json()}, 201


@blueprint.post("/api/auth/passkey/login/options")
@documented(RouteDoc(summary="Start signing in with a passkey",
                     responses={"200": ok(CEREMONY)}))
async def login_options() -> dict[str, Any]:
    rp_id, origin = _where()
    options, challenge = passkeys.login_options(rp_id=rp_id)
    # Nothing is written until an answer verifies (appliance/auth.py, "the ceremony").
    token = seal_login(current().instance_key, challenge=challenge, rp_id=rp_id,
                       origin=origin, expires_at=utcnow() + CHALLENGE_LIFETIME)
    return {"ceremony": token, "options": options}


@blueprint.post("/api/auth/passkey/login")
@documented(RouteDoc(summary="Finish signing in with a passkey", body=ANSWER,
                     responses={"200": ok(OBJECT, "Signed in (cookie set)"),
                                "401": err("Unknown passkey or did not verify")}))
@_attempt
async def login() -> Response:
    store, auth = _stores()
    body = await json_body()
    rp_id, origin = _where()
    token = str(body.get("ceremony", ""))[:MAX_CEREMONY]
    challenge, expires_at = open_login(current().instance_key, token, rp_id=rp_id,
                                       origin=origin, now=utcnow())
    credential = _credential(body)
    key = await store.run(auth.passkey_by_credential, passkeys.credential_id_of(credential))
    if key is None or key.rp_id != rp_id:
        raise Unauthorized("this passkey is not registered here (it may have been removed); "
                           "sign in with `clauderon web` and add it again")
    count = passkeys.verify_login(credential, key=key, challenge=challenge,
                                  rp_id=rp_id, origin=origin,
                                  instance_key=current().instance_key)
    await store.run(auth.answer_login, token, expires_at, utcnow())
    await store.run(auth.passkey_used, key.id, count, utcnow())
    return await start_session(Method.PASSKEY, key.id)


@blueprint.get("/api/auth/devices")
@documented(RouteDoc(summary="Signed-in browsers, passkeys and API tokens",
                     responses={"200": ok(OBJECT)}))
async def devices() -> dict[str, Any]:
    store, auth = _stores()
    caller = caller_of(request.scope)
    records = await store.run(auth.records, utcnow())
    return {**records, "current": caller.session.id if caller and caller.session else None}


@blueprint.delete("/api/auth/devices/<ref>")
@documented(RouteDoc(summary="Revoke a browser session, passkey or API token",
                     responses={"200": ok(OBJECT), "404": err("No such record")}))
async def revoke(ref: str) -> Response:
    store, auth = _stores()
    record_id = ref[:40]
    kind = await store.run(auth.revoke, record_id)
    caller = caller_of(request.scope)
    response = Response(json.dumps({"revoked": record_id, "kind": str(kind)}),
                        content_type="application/json")
    own = caller and caller.session and (
        record_id in (caller.session.id, caller.session.passkey_id))
    return _signed_out(response) if own else response


@blueprint.post("/api/auth/links")
@documented(RouteDoc(summary="Make a one-time sign-in link (Unix socket only)",
                     responses={"201": ok(OBJECT), "403": err("Not from the CLI")}))
async def make_link() -> tuple[dict[str, Any], int]:
    store, auth = _stores()
    _local()
    link, secret = await store.run(auth.create_link, utcnow())
    return {**link.to_json(), "token": secret, "path": f"/signin#token={secret}"}, 201


@blueprint.post("/api/auth/tokens")
@documented(RouteDoc(summary="Make a bearer token for scripts (Unix socket only; shown once)",
                     body={"type": "object", "required": ["scope"], "properties": {
                         "scope": {"type": "string", "enum": ["read-only", "read-write"]},
                         "name": {"type": "string"}}},
                     responses={"201": ok(OBJECT), "403": err("Not from the CLI")}))
async def make_token() -> tuple[dict[str, Any], int]:
    store, auth = _stores()
    _local()
    body = await json_body()
    scope = choice(body, "scope", Scope)
    token, secret = await store.run(lambda: auth.create_token(
        scope=scope, name=clean_name(body.get("name"), f"{scope} token"), now=utcnow()))
    log.info("API token %s (%s) created", token.id, scope)
    return {**token.to_json(), "token": secret}, 201
