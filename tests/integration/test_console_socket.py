"""``/ws/console`` over the TCP listener, against the real API and engine: the hostile client
and the owner.

The console is served ahead of Quart's dispatch (``api/console.py``), so these check on the
wire that the listener's layer still stands in front of it. A hostile page or script with
the person's cookie in the browser tries every way in — another origin (cross-site and
same-site), no ``Origin``, no credential, a rebinding ``Host``, a read-only token, a signed-out
cookie — each time ready to type into the shell the instant a check is missing. Every
attempt gets an HTTP refusal before any 101 and the container is untouched. The positive
control: the signed-in owner, from the appliance's origin, types into the same shell (bad
frames skipped, resize seen) and signing out closes that live terminal.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h11
import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.support.appliance import Appliance, wait_for

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def signed_in_cookie(app: Appliance) -> dict[str, str]:
    """What a signed-in page sends: the cookie, and the sign-in's bind beside it."""
    token = app.link().split("token=", 1)[1]
    r = httpx.post(f"{app.base}/api/auth/link", json={"token": token},
                   headers={"Origin": app.base})
    assert r.status_code == 200, r.text
    return {"Cookie": r.headers["set-cookie"].split(";", 1)[0],
            "X-Clauderon-Bind": r.json()["bind"]}


def masked_text_frame(text: str) -> bytes:
    """A client's WebSocket text frame (masked, as every client frame must be)."""
    payload = text.encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    return (bytes([0x81, 0x80 | len(payload)]) + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


@contextmanager
def attempt(app: Appliance, path: str, headers: dict[str, str],
            typed: str) -> Iterator[tuple[int, bytes]]:
    """A handshake with ``headers``, then (on a 101) the keystrokes ``typed`` as the console's
    input frame; yields the status and a refusal's body, the socket still open. (Hypercorn
    answers a frame sent ahead of the 101 with a 400 before any route runs, so an attacker
    gains nothing by not waiting.)"""
    conn = h11.Connection(h11.CLIENT)
    fields = {"Host": f"127.0.0.1:{app.http_port}", "Connection": "Upgrade",
              "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": KEY,
              **headers}
    frame = masked_text_frame(json.dumps(
        {"type": "input", "data": base64.b64encode(typed.encode()).decode()}))
    with socket.create_connection(("127.0.0.1", app.http_port), timeout=30) as sock:
        sock.sendall(conn.send(h11.Request(method="GET", target=path,
                                           headers=list(fields.items()))))
        status, body = 0, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.InformationalResponse) and event.status_code == 101:
                sock.sendall(frame)
                status = 101
                break
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        yield status, body


def in_container(app: Appliance, sid: str, path: str) -> bool:
    [c] = app.containers(sid)
    return bool(c.exec_run(["test", "-e", path]).exit_code == 0)


@pytest.fixture
def running(appliance: Appliance, repo: Path) -> dict[str, str]:
    name = f"console-{uuid.uuid4().hex[:8]}"
    appliance.client().post("/api/sessions", {"repo_path": str(repo), "name": name})
    session = appliance.wait_phase(name, "running")
    return {"name": name, "id": session["id"]}


def test_every_way_in_without_the_checks_is_refused_before_the_terminal(
        appliance: Appliance, running: dict[str, str]) -> None:
    name, sid = running["name"], running["id"]
    path = f"/ws/console/{name}"
    cookie = signed_in_cookie(appliance)
    gone = signed_in_cookie(appliance)  # another browser, which then signs out
    out = httpx.post(f"{appliance.base}/api/auth/logout", json={},
                     headers={**gone, "Origin": appliance.base})
    assert out.status_code == 204
    reader = appliance.token("read-only")
    base = appliance.base
    attempts = {
        # The person's cookie rides along with a hostile page's socket:
        "cross-site page": ({**cookie, "Origin": "http://evil.example"}, 403),
        "same-site page": ({**cookie, "Origin": "http://localhost:1"}, 403),
        "no Origin": (cookie, 403),
        "null Origin": ({**cookie, "Origin": "null"}, 403),
        "no credential": ({"Origin": base}, 401),
        "signed-out cookie": ({**gone, "Origin": base}, 401),
        # A server on another port of the host that the person's browser visited got the
        # cookie (cookies ignore ports), but not the bind the page keeps per port:
        "replayed cookie": ({"Cookie": cookie["Cookie"], "Origin": base}, 401),
        "another sign-in's bind": ({"Cookie": cookie["Cookie"], "Origin": base,
                                    "X-Clauderon-Bind": gone["X-Clauderon-Bind"]}, 401),
        "rebinding Host": ({**cookie, "Origin": "http://evil.example:1",
                            "Host": "evil.example:1"}, 421),
        "read-only token": ({"Authorization": f"Bearer {reader}"}, 403),
    }
    seen = len(appliance.log("api"))
    for what, (headers, status) in attempts.items():
        marker = f"/tmp/pwned-{what.replace(' ', '-')}"
        with attempt(appliance, path, headers, f"touch {marker}\r") as (got, body):
            assert got == status, (what, got, body)
            assert json.loads(body)["error"], (what, body)
    refused = [line for line in appliance.log("api")[seen:].splitlines()
               if f"refused GET {path}:" in line]
    assert len(refused) == len(attempts), refused
    # The positive control, the same way: the owner's keystrokes do arrive (so the attempts
    # above would have, had any check been missing).
    with attempt(appliance, path, {**cookie, "Origin": base},
                 "touch /tmp/made-by-the-owner\r") as (got, body):
        assert got == 101, body
        wait_for(lambda: in_container(appliance, sid, "/tmp/made-by-the-owner"), timeout=30,
                 what="the owner's keystrokes in the container")
    for what in attempts:
        assert not in_container(appliance, sid, f"/tmp/pwned-{what.replace(' ', '-')}"), what
    # Not a session: an HTTP answer before any 101, no terminal.
    r = httpx.get(f"{base}/ws/console/nope", headers={
        "Authorization": f"Bearer {appliance.token()}", "Connection": "Upgrade",
        "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": KEY})
    assert r.status_code == 404 and "nope" in r.json()["error"], r.text


def _frame(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, **fields})


def _input(text: str) -> str:
    return _frame("input", data=base64.b64encode(text.encode()).decode())


async def test_the_owner_types_resizes_and_signing_out_closes_the_terminal(
        appliance: Appliance, running: dict[str, str]) -> None:
    cookie = await trio.to_thread.run_sync(signed_in_cookie, appliance)
    url = f"ws://127.0.0.1:{appliance.http_port}/ws/console/{running['name']}?rows=30&cols=90"
    # As a page opens it: the bind as a subprotocol (a page cannot set a socket's headers).
    headers = [(b"cookie", cookie["Cookie"].encode()), (b"origin", appliance.base.encode())]
    protocols = ["clauderon", f"clauderon.bind.{cookie['X-Clauderon-Bind']}"]
    screen = bytearray()

    async def until(needle: bytes) -> None:
        with trio.fail_after(30):
            while needle not in screen:
                msg = json.loads(await ws.get_message())
                assert msg["type"] == "output", msg
                screen.extend(base64.b64decode(msg["data"]))

    async with open_websocket_url(url, extra_headers=headers, subprotocols=protocols) as ws:
        assert ws.subprotocol == "clauderon"
        try:
            await ws.send_message(_input("echo first=$((40+1)) $(stty size)\r"))
            await until(b"first=41 30 90")
            # Bad frames are skipped, the terminal goes on; a binary frame is raw input.
            for bad in ("not json", "[1]", _frame("input", data="!!not base64"),
                        _frame("resize", rows="many"), _frame("future-kind")):
                await ws.send_message(bad)
            await ws.send_message(_frame("resize", rows=33, cols=77))
            await ws.send_message(b"echo second=$((41+1)) $(stty size)\r")
            await until(b"second=42 33 77")
            # Signing out (here, from the same browser) closes the live terminal.
            out = await trio.to_thread.run_sync(lambda: httpx.post(
                f"{appliance.base}/api/auth/logout", json={},
                headers={**cookie, "Origin": appliance.base}))
            assert out.status_code == 204
            with pytest.raises(ConnectionClosed) as closed, trio.fail_after(30):
                while True:
                    await ws.get_message()
            assert closed.value.reason is not None and closed.value.reason.code == 4401
        finally:
            # trio-websocket's client leaves its TCP stream open when the server ends
            # the socket with a close frame; close it here, not in the GC.
            await ws._stream.aclose()
