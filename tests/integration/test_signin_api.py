"""Sign-in over the wire, against the real API: cookies, rotation, sign-out, tokens and their
scopes, revocation (also of an open WebSocket), the Unix-only endpoints, the rate limit and
the headers on every answer. A script's view (httpx, trio-websocket); the browser's is in
``tests/e2e/test_webui_auth.py``."""

from __future__ import annotations

import contextlib
import json
import sqlite3

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.support.appliance import Appliance


def origin(app: Appliance) -> dict[str, str]:
    return {"Origin": app.base}


def signed_in(app: Appliance, **headers: str) -> httpx.Response:
    token = app.link().split("token=", 1)[1]
    return httpx.post(f"{app.base}/api/auth/link", json={"token": token},
                      headers={**origin(app), **headers})


def cookie_of(r: httpx.Response) -> dict[str, str]:
    """What the signed-in page sends: the cookie, and the bind it keeps beside it."""
    return {"Cookie": r.headers["set-cookie"].split(";", 1)[0],
            "X-Clauderon-Bind": r.json()["bind"]}


def test_a_link_sets_a_strict_cookie_rotation_and_sign_out(appliance: Appliance) -> None:
    r = signed_in(appliance)
    assert r.status_code == 200, r.text
    attrs = [a.strip() for a in r.headers["set-cookie"].split(";")]
    assert attrs[0].startswith("clauderon_session=")
    assert {"Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=2592000"} <= set(attrs)
    first = cookie_of(r)
    me = httpx.get(f"{appliance.base}/api/auth/me", headers=first).json()
    assert me["signed_in"] and me["via"] == "browser" and me["can_add_passkey"]
    assert me["passkeys_possible"] is False  # 127.0.0.1 cannot be a relying party id
    # Signing in again from the same browser ends its old session (rotation).
    second = cookie_of(signed_in(appliance, **first))
    assert httpx.get(f"{appliance.base}/api/sessions", headers=first
                     ).status_code == 401
    assert httpx.get(f"{appliance.base}/api/sessions", headers=second
                     ).status_code == 200
    # Sign-out ends it on the server: the same cookie, replayed, is refused.
    out = httpx.post(f"{appliance.base}/api/auth/logout", json={},
                     headers={**second, **origin(appliance)})
    assert out.status_code == 204 and "Max-Age=0" in out.headers["set-cookie"]
    assert httpx.get(f"{appliance.base}/api/sessions", headers=second
                     ).status_code == 401


def test_a_cookie_without_its_bind_signs_nothing_in(appliance: Appliance) -> None:
    """Cookies ignore ports: a server on another port of this host that the person's
    browser visits gets the session cookie, and can replay it with any ``Origin``. The bind
    the sign-in handed to the page (kept per port) is what it lacks."""
    mine, theirs = cookie_of(signed_in(appliance)), cookie_of(signed_in(appliance))
    base = appliance.base
    # The control: cookie and bind, as the page sends them.
    assert httpx.get(f"{base}/api/sessions", headers=mine).status_code == 200
    stolen = {"Cookie": mine["Cookie"], **origin(appliance)}
    own = mine["X-Clauderon-Bind"]
    off = own[:-1] + ("1" if own.endswith("0") else "0")  # one character off, never the same
    for bind in (None, "", theirs["X-Clauderon-Bind"], off, "x" * 5000):
        replay = stolen if bind is None else {**stolen, "X-Clauderon-Bind": bind}
        assert httpx.get(f"{base}/api/sessions", headers=replay).status_code == 401, bind
        assert not httpx.get(f"{base}/api/auth/me", headers=replay).json()["signed_in"]
        r = httpx.put(f"{base}/api/budgets/global", json={"daily_usd": 1}, headers=replay)
        assert r.status_code == 401, (bind, r.status_code, r.text)
    # Nor does a WebSocket's subprotocol carry another sign-in's bind.
    r = httpx.get(f"{base}/ws/events", headers={
        **stolen, **UPGRADE,
        "Sec-WebSocket-Protocol": f"clauderon, clauderon.bind.{theirs['X-Clauderon-Bind']}"})
    assert r.status_code == 401, r.text
    assert httpx.get(f"{base}/api/sessions", headers=theirs).status_code == 200


def test_tokens_scopes_and_revocation(appliance: Appliance) -> None:
    reader = appliance.http("read-only")
    assert reader.get("/api/sessions").status_code == 200
    for method, path in (("POST", "/api/sessions/x/stop"), ("DELETE", "/api/sessions/x"),
                         ("POST", "/api/auth/logout")):
        r = reader.request(method, path, json={})
        assert r.status_code == 403 and "read-only" in r.json()["error"], (path, r.text)
    writer = appliance.http("read-write")
    assert writer.post("/api/sessions/x/stop", json={}).status_code == 404  # passed the guard
    # Links and tokens are made on the Unix socket only, whatever the token.
    for path in ("/api/auth/links", "/api/auth/tokens"):
        r = writer.post(path, json={"scope": "read-write"})
        assert r.status_code == 403 and "never over the network" in r.json()["error"]
    out = appliance.cli("auth", "list").stdout
    [row] = [line for line in out.splitlines() if "read-only" in line]
    token_id = row.split()[0]
    appliance.cli("auth", "revoke", token_id)
    assert reader.get("/api/sessions").status_code == 401
    assert appliance.cli("auth", "revoke", token_id, check=False).returncode == 3
    # A wrong or malformed credential is no credential.
    for value in ("Bearer nope", "Basic abc", "Bearer " + "x" * 5000, "Bearer"):
        r = httpx.get(f"{appliance.base}/api/sessions", headers={"Authorization": value})
        assert r.status_code == 401, value


UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


async def test_a_read_only_token_gets_events_but_not_the_console(appliance: Appliance) -> None:
    url = f"ws://127.0.0.1:{appliance.http_port}"
    with trio.fail_after(30):
        async with open_websocket_url(f"{url}/ws/events",
                                      extra_headers=appliance.ws_headers("read-only")) as ws:
            assert json.loads(await ws.get_message())["type"] == "connected"
    # Refused before the 101: an HTTP answer with the reason.
    reader = appliance.http("read-only")
    r = await trio.to_thread.run_sync(lambda: reader.get("/ws/console/x", headers=UPGRADE))
    assert r.status_code == 403 and "read-only" in r.json()["error"]
    r = await trio.to_thread.run_sync(lambda: httpx.get(f"{appliance.base}/ws/events",
                                                        headers=UPGRADE))
    assert r.status_code == 403 and "Origin" in r.json()["error"]  # no Origin, no token
    r = await trio.to_thread.run_sync(lambda: httpx.get(
        f"{appliance.base}/ws/events", headers={**UPGRADE, "Origin": appliance.base}))
    assert r.status_code == 401  # a browser that is not signed in


async def test_revoking_closes_an_open_websocket(appliance: Appliance) -> None:
    made = await trio.to_thread.run_sync(lambda: appliance.client().post(
        "/api/auth/tokens", {"scope": "read-only", "name": "watcher"}))
    headers = [(b"authorization", f"Bearer {made['token']}".encode())]
    url = f"ws://127.0.0.1:{appliance.http_port}/ws/events"
    with trio.fail_after(60):
        async with open_websocket_url(url, extra_headers=headers) as ws:
            assert json.loads(await ws.get_message())["type"] == "connected"
            await trio.to_thread.run_sync(lambda: appliance.cli("auth", "revoke", made["id"]))
            try:
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await ws.get_message()
                assert closed.value.reason.code == 4401
            finally:
                # trio-websocket's client leaves its TCP stream open when the server ends
                # the socket with a close frame; close it here, not in the GC.
                await ws._stream.aclose()


def test_answers_carry_the_security_headers_and_never_cors(appliance: Appliance) -> None:
    http = appliance.http()
    evil = {"Origin": "http://evil.example"}
    answers = [
        httpx.get(f"{appliance.base}/api/health"),
        httpx.get(f"{appliance.base}/"),
        httpx.get(f"{appliance.base}/api/sessions"),  # 401
        http.get("/api/sessions"),
        http.get("/api/nope"),
        httpx.get(f"{appliance.base}/api/sessions", headers=evil),
        httpx.options(f"{appliance.base}/api/sessions", headers={
            **evil, "Access-Control-Request-Method": "POST"}),
        http.options("/api/sessions", headers={"Origin": appliance.base,
                                               "Access-Control-Request-Method": "POST"}),
    ]
    for r in answers:
        h = r.headers
        assert "default-src 'self'" in h["content-security-policy"], r.url
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
        assert not [k for k in h if k.lower().startswith("access-control-")], (r.url, h)
    health = answers[0].json()
    assert set(health) == {"status", "version"}  # nothing about the host before sign-in
    assert "database" in http.get("/api/health").json()


def test_sign_in_attempts_are_rate_limited(appliance: Appliance) -> None:
    codes = [httpx.post(f"{appliance.base}/api/auth/link", json={"token": f"guess-{i}"},
                        headers=origin(appliance)).status_code for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
    r = httpx.post(f"{appliance.base}/api/auth/link", json={"token": "x"},
                   headers=origin(appliance))
    assert "too many sign-in attempts" in r.json()["error"]
    assert appliance.http().get("/api/sessions").status_code == 200  # others unaffected


def test_a_neighbours_failed_attempts_never_lock_the_person_out(appliance: Appliance) -> None:
    """Behind ``tailscale serve`` every client reaches the API from 127.0.0.1, so a
    neighbour's guesses and the person's sign-in share one address. The guesses are held to
    the limit and write nothing; the person's link still signs in, and asking for passkey
    options (the first step of the person's own passkey sign-in) stores nothing either."""
    link = f"{appliance.base}/api/auth/link"
    guesses = [httpx.post(link, json={"token": f"neighbour-{i}"}, headers=origin(appliance)
                          ).status_code for i in range(70)]  # past 10 per address, 60 in all
    assert guesses[:10] == [401] * 10 and set(guesses[10:]) == {429}
    r = signed_in(appliance)
    assert r.status_code == 200, r.text
    assert httpx.get(f"{appliance.base}/api/sessions", headers=cookie_of(r)).status_code == 200
    named = f"http://localhost:{appliance.http_port}"  # a passkey needs a host name
    for _ in range(30):
        asked = httpx.post(f"{named}/api/auth/passkey/login/options", json={},
                           headers={"Origin": named})
        assert asked.status_code == 200, asked.text
        assert asked.json()["ceremony"] and asked.json()["options"]["challenge"]
    with contextlib.closing(sqlite3.connect(appliance.settings.db_path)) as db:
        assert db.execute("SELECT COUNT(*) FROM auth_challenges").fetchone() == (0,)
