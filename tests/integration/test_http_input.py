"""Bad input on every route is a 4xx naming the problem, never a 500 (real services).

* Every documented operation on the TCP listener, signed in with a bearer token, gets bodies
  that are not UTF-8, nest 100,000 deep, hold numbers past 64 bits, ``NaN``, or are
  declared ``text/plain``; and query values that are not numbers or far too large.
* The hook endpoint, from inside a real session container as the agent (uid 1000, bash's
  ``/dev/tcp``: the hostile agent's own tools), gets the same bodies with the session's real
  hook token, plus a browser-like ``Origin``; each is refused with the reason, and the
  session's status does not move. A good hook from the same place is the positive control.
"""

from __future__ import annotations

import io
import re
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.appliance import Appliance

BAD_BODIES: dict[str, tuple[bytes, str]] = {
    "invalid UTF-8": (b'{"session_id": "\xff\xfe", "event": "Stop"}', "not valid UTF-8"),
    "deep nesting": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nests deeper"),
    "huge integer": (b'{"session_id": "x", "n": ' + b"9" * 5000 + b"}", "too large"),
    "64-bit overflow": (b'{"cpu": 99999999999999999999999}', "too large"),
    "huge float": (b'{"cpu": 1e999}', "out of range"),
    "NaN": (b'{"cpu": NaN}', "NaN is not JSON"),
    "not JSON": (b"{nope", "not valid JSON"),
}


def operations(appliance: Appliance) -> list[tuple[str, str]]:
    doc = appliance.http().get("/api/openapi.json").json()
    out = []
    for path, ops in doc["paths"].items():
        for method in ops:
            if path.startswith("/ws/"):
                continue
            out.append((method.upper(), re.sub(r"{\w+}", "nope", path)))
    return out


def test_every_route_answers_bad_input_without_a_500(appliance: Appliance) -> None:
    http = appliance.http()
    ops = operations(appliance)
    assert len(ops) > 25
    for method, path in ops:
        if method in ("GET", "DELETE"):
            for query in ("?after=9999999999999999999999", "?after=" + "9" * 5000,
                          "?limit=-1e999", "?path=%ff%fe", "?after=%ff", "?rows=1e999"):
                r = http.request(method, path + query)
                assert r.status_code < 500, (method, path + query, r.status_code, r.text)
            continue
        for label, (body, _) in BAD_BODIES.items():
            r = http.request(method, path, content=body,
                             headers={"Content-Type": "application/json"})
            assert r.status_code < 500, (method, path, label, r.status_code, r.text)
            assert r.json()["error"], (method, path, label)
        r = http.request(method, path, content=b'{"text": "x"}',
                         headers={"Content-Type": "text/plain"})
        assert r.status_code == 415, (method, path, r.text)
    # Where the body is read, the answer names the problem.
    for label, (body, needle) in BAD_BODIES.items():
        r = http.post("/api/sessions", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and needle in r.json()["error"], (label, r.text)
    # A huge event cursor on the events socket is refused before the 101.
    r = http.get("/ws/events?after=99999999999999999999999", headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert r.status_code == 400 and "after must be a whole number" in r.json()["error"]


def raw_hook(body_path: str, headers: dict[str, str]) -> str:
    """A bash script that POSTs the file ``body_path`` to the hook URL with bash's /dev/tcp
    and prints the answer (the agent image has no Python; the base image no curl)."""
    head = "".join(f"{k}: {v}\\r\\n" for k, v in headers.items())
    return f"""
set -e
url="$CLAUDERON_HOOK_URL"; hostport="${{url#http://}}"; hostport="${{hostport%%/*}}"
host="${{hostport%:*}}"; port="${{hostport#*:}}"
exec 3<>"/dev/tcp/$host/$port"
body={body_path}
printf 'POST /api/hooks HTTP/1.1\\r\\nHost: %s\\r\\n' "$hostport" >&3
printf 'Authorization: Bearer %s\\r\\n{head}' "$CLAUDERON_HOOK_TOKEN" >&3
printf 'Content-Length: %s\\r\\nConnection: close\\r\\n\\r\\n' "$(wc -c < "$body")" >&3
cat "$body" >&3
timeout 10 cat <&3
"""


@pytest.fixture
def agent_session(appliance: Appliance, repo: Path) -> dict[str, Any]:
    name = f"hooks-{uuid.uuid4().hex[:8]}"
    appliance.client().post("/api/sessions", {"repo_path": str(repo), "name": name})
    return appliance.wait_phase(name, "running")


def test_the_hook_endpoint_refuses_bad_input_from_the_agent(
        appliance: Appliance, agent_session: dict[str, Any]) -> None:
    sid = agent_session["id"]
    [container] = appliance.containers(sid)

    def post(body: bytes, **headers: str) -> tuple[int, str]:
        name = f"body-{uuid.uuid4().hex[:8]}"
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(body), 0o644
            tar.addfile(info, io.BytesIO(body))
        assert container.put_archive("/tmp", archive.getvalue())
        script = raw_hook(f"/tmp/{name}", {"Content-Type": "application/json", **headers})
        out = container.exec_run(["bash", "-c", script], user="1000:1000")
        text = out.output.decode(errors="replace")
        status = re.search(r"HTTP/1.1 (\d+)", text)
        assert status, text
        return int(status.group(1)), text

    for label, (body, needle) in BAD_BODIES.items():
        status, text = post(body.replace(b'"x"', f'"{sid}"'.encode()))
        assert status == 400 and needle in text, (label, status, text)
    good = f'{{"session_id": "{sid}", "event": "PermissionRequest"}}'.encode()
    status, text = post(good, **{"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in text, text
    status, text = post(good, Origin="http://localhost:3030")
    assert status == 403 and "not browsers" in text, text
    assert appliance.session(sid)["agent_status"] == "unknown"  # nothing moved it
    status, text = post(good)  # the positive control: the same request, well formed
    assert status == 204, text
    assert appliance.session(sid)["agent_status"] == "waiting_approval"
