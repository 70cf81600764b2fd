"""A hostile network peer (or another user of this machine) reads the API without signing in
by spelling a route's path so the guard takes it for one of the web UI's files (real API,
real session, raw HTTP/1.1 as any client can send it).

The guard (``api/guard.py``) decides what a GET needs from ``scope["path"]`` as it arrives:
anything not under ``/api/`` or ``/ws/`` is the web UI's, open to all. The router behind it
(Werkzeug, through Quart) is more forgiving: it strips leading slashes, merges doubled ones
and takes a request target in absolute form (``GET http://host/api/...``). So
``GET //api/sessions`` passes the guard as a static file and is answered by the API route,
signed in or not. Each spelling below must get the same 401 as ``/api/...`` itself (or be
refused outright), never the route's answer.
"""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.appliance import Appliance

SECRET = f"canary-{uuid.uuid4().hex}"

#: Ways to write the request target of ``/api/<rest>`` that a router may take for it.
SPELLINGS: tuple[Callable[[str, str], str], ...] = (
    lambda host, rest: f"//api/{rest}",
    lambda host, rest: f"///api/{rest}",
    lambda host, rest: f"/%2Fapi/{rest}",
    lambda host, rest: f"api/{rest}",
    lambda host, rest: f"http://{host}/api/{rest}",
    lambda host, rest: f"http://{host}//api/{rest}",
    lambda host, rest: f"http:/api/{rest}",
    lambda host, rest: f"https://evil.example/api/{rest}",
)


def raw_get(app: Appliance, target: str) -> tuple[int, str]:
    """One GET with exactly this request target and no credential (http.client sends the
    target as given; no client library normalises it first)."""
    conn = http.client.HTTPConnection("127.0.0.1", app.http_port, timeout=10)
    try:
        conn.request("GET", target)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


@pytest.mark.parametrize("spell", SPELLINGS)
def test_no_spelling_of_an_api_path_skips_sign_in(appliance: Appliance,
                                                 spell: Callable[[str, str], str]) -> None:
    host = f"127.0.0.1:{appliance.http_port}"
    # The positive control: the canonical path is refused without a credential.
    assert raw_get(appliance, "/api/auth/devices")[0] == 401
    for rest in ("auth/devices", "sessions", "credentials", "repos/check?path=/etc"):
        status, body = raw_get(appliance, spell(host, rest))
        assert status in (400, 401, 404, 421), (spell(host, rest), status, body[:300])
        assert '"tokens"' not in body and '"sessions"' not in body, body[:300]


def test_a_sessions_files_are_not_read_through_a_doubled_slash(
        appliance: Appliance, repo_factory: Callable[..., Path]) -> None:
    repo = repo_factory("secret", files={"README.md": "hello\n", "notes.txt": SECRET + "\n"})
    name = f"paths-{uuid.uuid4().hex[:8]}"
    appliance.client().post("/api/sessions", {"repo_path": str(repo), "name": name})
    appliance.wait_phase(name, "running")
    # Signed in (a bearer token), the file is there: the control.
    assert SECRET in appliance.http().get(f"/api/sessions/{name}/file",
                                          params={"path": "notes.txt"}).text
    for target in (f"/api/sessions/{name}/file?path=notes.txt",
                   f"//api/sessions/{name}/file?path=notes.txt",
                   f"//api/sessions/{name}/transcript",
                   f"//api/sessions/{name}/diff"):
        status, body = raw_get(appliance, target)
        assert SECRET not in body, (target, status, body[:300])
        assert status in (400, 401, 404), (target, status, body[:300])
