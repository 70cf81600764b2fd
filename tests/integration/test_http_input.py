"""Bad input on every route is a 4xx naming the problem, never a 500 (real services).

* Every documented operation on the TCP listener, signed in with a bearer token, gets bodies
  that are not UTF-8, nest 100,000 deep, hold numbers past 64 bits, ``NaN``, or are
  declared ``text/plain``; and query values that are not numbers or far too large.
* The hook endpoint, from inside a real session container as the agent (uid 1000, bash's
  ``/dev/tcp``: the hostile agent's own tools), gets the same bodies with the session's real
  hook token, plus a browser-like ``Origin``; each is refused with the reason, and the
  session's status does not move. A good hook from the same place is the positive control.
* Every listener closes a connection once it has answered a request that asked for that
  (``Connection: close``, or HTTP/1.0): the hook listener from inside the container (each
  raw post above waits for the close), the TCP listener and the Unix socket from the host.
  Held open, each such connection escaped the idle timer: one descriptor of the API's for as
  long as the client liked, at one request each.
* The hook endpoint speaks HTTP/1.1 only: curl's HTTP/2 from inside the container (prior
  knowledge, or an ``Upgrade: h2c``) is refused and records nothing, though Hypercorn takes
  it on any plain listener; the same hook over HTTP/1.1 is the positive control.
"""

from __future__ import annotations

import io
import math
import re
import socket
import sqlite3
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.guard import HOOK_BODY
from api.ratelimit import HOOK_TRIM_EVERY, HOOK_WINDOW_SECONDS, HOOKS_PER_SESSION
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance, running

BAD_BODIES: dict[str, tuple[bytes, str]] = {
    "invalid UTF-8": (b'{"session_id": "\xff\xfe", "event": "Stop"}', "not valid UTF-8"),
    "deep nesting": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nests deeper"),
    "huge integer": (b'{"session_id": "x", "n": ' + b"9" * 5000 + b"}", "too large"),
    "64-bit overflow": (b'{"cpu": 99999999999999999999999}', "too large"),
    "huge float": (b'{"cpu": 1e999}', "out of range"),
    "NaN": (b'{"cpu": NaN}', "NaN is not JSON"),
    "not JSON": (b"{nope", "not valid JSON"),
    # Readers differ on which one counts (appliance/onekey.py): the last was taken.
    "a key twice": (b'{"session_id": "x", "event": "Stop", "event": "Exited"}', "named twice"),
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


#: How long a raw client waits for the server to close a connection it asked to close:
#: far past the server's idle timer (5 s), so only a connection held open runs it out.
CLOSE_WAIT = 30


def raw_hook(body_path: str, headers: dict[str, str]) -> str:
    """A bash script that POSTs the file ``body_path`` to the hook URL with bash's /dev/tcp
    (asking the server to close the connection after its answer) and prints the answer,
    then ``closed=0`` when the server closed it (the agent image has no Python; the base
    image no curl)."""
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
set +e
timeout {CLOSE_WAIT} cat <&3
echo "closed=$?"
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
        assert text.endswith("closed=0\n"), text  # not held open past the answer
        return int(status.group(1)), text

    for label, (body, needle) in BAD_BODIES.items():
        status, text = post(body.replace(b'"x"', f'"{sid}"'.encode()))
        if len(body) > HOOK_BODY:  # longer than any event: refused unread
            assert status == 413 and "larger than 4 KiB" in text, (label, status, text)
        else:
            assert status == 400 and needle in text, (label, status, text)
    good = f'{{"session_id": "{sid}", "event": "PermissionRequest"}}'.encode()
    status, text = post(good, **{"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in text, text
    status, text = post(good, Origin="http://localhost:3030")
    assert status == 403 and "not browsers" in text, text
    assert appliance.session(sid)["agent_status"] == "unknown"  # nothing moved it
    # A body longer than any event (8 KiB here; megabytes of JSON take the API's one loop
    # seconds to parse) is refused unread: no "unknown field" could be said of it.
    padded = good.replace(b"}", b', "pad": [' + b"0," * 4096 + b"0]}")
    status, text = post(padded)
    assert status == 413 and "larger than 4 KiB" in text, (status, text)
    status, text = post(good)  # the positive control: the same request, well formed
    assert status == 204, text
    assert appliance.session(sid)["agent_status"] == "waiting_approval"


FLOOD = r"""
url="$CLAUDERON_HOOK_URL"; hostport="${url#http://}"; hostport="${hostport%%/*}"
host="${hostport%:*}"; port="${hostport#*:}"
sid="$1"; token="$2"; n="$3"
post() {
    local body="{\"session_id\":\"$sid\",\"event\":{\"type\":\"$1\"}}" proto code
    exec 3<>"/dev/tcp/$host/$port" || { echo fail; return; }
    printf 'POST /api/hooks HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n%s%s\r\n\r\n%s' \
        "$hostport" "$token" 'Content-Type: application/json'$'\r\n''Connection: close'$'\r\n' \
        "Content-Length: ${#body}" "$body" >&3
    read -r proto code _ <&3 || code=none
    echo "$code"
}
echo "start $EPOCHREALTIME"
for i in $(seq "$n"); do  # 100 at once at most: well inside the container's connections
    if [ $((i % 2)) = 0 ]; then post Stop & else post PreToolUse & fi
    if [ $((i % 100)) = 0 ]; then wait; fi
done > /tmp/codes
wait
echo "end $EPOCHREALTIME"
sort /tmp/codes | uniq -c
"""


def _flood(container: Any, sid: str, token: str, n: int) -> tuple[dict[str, int], str, int]:
    """``n`` hook posts at once from inside ``container``, as the agent: each answer's
    status, counted, and how many :data:`HOOKS_PER_SESSION` the limit may let through in
    the time the posts took (one for each window they overlap)."""
    out = container.exec_run(["bash", "-c", FLOOD, "flood", sid, token, str(n)],
                             user="1000:1000").output.decode(errors="replace")
    counts = {code: int(count) for count, code in re.findall(r"^\s*(\d+) (\S+)$", out, re.M)}
    assert sum(counts.values()) == n, out
    start, end = (float(re.search(rf"^{w} ([\d.]+)$", out, re.M)[1])  # type: ignore[index]
                  for w in ("start", "end"))
    return counts, out, math.ceil((end - start) / HOOK_WINDOW_SECONDS + 1e-9)


def test_an_agent_flooding_its_hook_is_held_to_its_own_room(
        appliance: Appliance, repo: Path) -> None:
    """An agent posting hook events in a loop (each one writes its session and an event)
    is answered 429 beyond its room and nothing of those is written; posting for another
    session with its own token is refused (401) and uses none of that session's room; the
    other session's own hooks go on being recorded."""
    names = [f"flood-{uuid.uuid4().hex[:6]}", f"calm-{uuid.uuid4().hex[:6]}"]
    for name in names:
        appliance.client().post("/api/sessions", {"repo_path": str(repo), "name": name})
    loud, calm = (appliance.wait_phase(name, "running") for name in names)
    [container] = appliance.containers(loud["id"])
    token = container.exec_run(["printenv", "CLAUDERON_HOOK_TOKEN"]).output.decode().strip()
    assert token
    counts, out, windows = _flood(container, loud["id"], token, 300)
    assert set(counts) <= {"204", "429"}, out
    assert counts["204"] <= HOOKS_PER_SESSION * windows and counts.get("429", 0) > 0, out
    with closing(sqlite3.connect(appliance.settings.db_path)) as conn:
        [(recorded,)] = conn.execute(
            "SELECT COUNT(*) FROM events WHERE session_id = ? AND kind = 'hook'",
            (loud["id"],)).fetchall()
    assert recorded == counts["204"], out
    # The other session's id with this agent's token: refused, and none of its room used.
    counts, out, _ = _flood(container, calm["id"], token, HOOKS_PER_SESSION + 50)
    assert counts == {"401": HOOKS_PER_SESSION + 50}, out
    [other] = appliance.containers(calm["id"])
    own = other.exec_run(["printenv", "CLAUDERON_HOOK_TOKEN"]).output.decode().strip()
    counts, out, _ = _flood(other, calm["id"], own, 2)
    assert counts == {"204": 2}, out
    assert appliance.session(calm["id"])["agent_status"] in ("working", "waiting_input")


def _hooks_kept(app: Appliance, sid: str) -> tuple[int, list[str]]:
    with closing(sqlite3.connect(app.settings.db_path)) as conn:
        rows = conn.execute("SELECT kind FROM events WHERE session_id = ? ORDER BY id",
                            (sid,)).fetchall()
    return sum(kind == "hook" for (kind,) in rows), [k for (k,) in rows if k != "hook"]


KEEP_HOOKS = 40


@pytest.fixture
def bounded(tmp_path: Path, engine: Any) -> Iterator[Appliance]:
    with running(tmp_path / "home", "api", "reconciler",
                 reconciler=f"keep_hook_events = {KEEP_HOOKS}\n") as app:
        yield app


def test_an_agent_posting_its_hook_in_a_loop_fills_no_disk(bounded: Appliance,
                                                            repo: Path) -> None:
    """Within its rate (some 20 a second) an agent posting its hook for as long as it runs
    would write ~2 GB a day of events into the journal: a session keeps its newest
    ``keep_hook_events`` hook events (trimmed once in :data:`HOOK_TRIM_EVERY` writes), its
    other events and the other sessions' whole."""
    names = [f"loop-{uuid.uuid4().hex[:6]}", f"calm-{uuid.uuid4().hex[:6]}"]
    for name in names:
        bounded.client().post("/api/sessions", {"repo_path": str(repo), "name": name})
    loud, calm = (bounded.wait_phase(name, "running") for name in names)
    [container] = bounded.containers(loud["id"])
    [other] = bounded.containers(calm["id"])
    own = other.exec_run(["printenv", "CLAUDERON_HOOK_TOKEN"]).output.decode().strip()
    assert _flood(other, calm["id"], own, 3)[0] == {"204": 3}
    _, before = _hooks_kept(bounded, loud["id"])
    token = container.exec_run(["printenv", "CLAUDERON_HOOK_TOKEN"]).output.decode().strip()
    # Within its rate (the limit is not what bounds the journal), more than the bound holds.
    counts, out, _ = _flood(container, loud["id"], token, HOOKS_PER_SESSION)
    sent = counts.get("204", 0)
    assert sent > KEEP_HOOKS + HOOK_TRIM_EVERY, out
    kept, others = _hooks_kept(bounded, loud["id"])
    assert KEEP_HOOKS <= kept < KEEP_HOOKS + HOOK_TRIM_EVERY, (kept, sent)
    # Created, its phases: what happened to it stays (a pass may add a branch sync since).
    assert others[:len(before)] == before, (before, others)
    assert _hooks_kept(bounded, calm["id"])[0] == 3


#: curl's answer to one hook (``$1``: the protocol flag): the HTTP version it spoke, the
#: status and the body.
HOOK_CURL = r"""
curl -sS --noproxy '*' --max-time 20 "$1" -w '\nversion=%{http_version} status=%{http_code}' \
    -H "Authorization: Bearer $CLAUDERON_HOOK_TOKEN" -H 'Content-Type: application/json' \
    --data "{\"session_id\":\"$CLAUDERON_SESSION_ID\",\"event\":{\"type\":\"Stop\"}}" \
    "$CLAUDERON_HOOK_URL"
"""


def test_the_hook_endpoint_speaks_http1_only(app: Appliance, repo: Path) -> None:
    """With HTTP/2 each connection an agent holds would carry a hundred requests at once,
    past the share of connections its container has (and the layer reasons about one
    framing): a hook over HTTP/2 is refused and records nothing."""
    s = create(app, repo, f"h2-{uuid.uuid4().hex[:6]}")
    _, out = in_container(app, s, HOOK_CURL.replace('"$1"', "--http2-prior-knowledge"))
    assert "version=2 status=400" in out and "HTTP/1.1" in out, out
    # The upgrade a plain request may ask for (a request without a body): HTTP/2 from then on.
    _, out = in_container(app, s, "curl -sS --noproxy '*' --max-time 20 --http2 "
                                  "-w '\\nversion=%{http_version} status=%{http_code}' "
                                  '"$CLAUDERON_HOOK_URL"')
    assert "version=2 status=400" in out and "HTTP/1.1" in out, out
    assert app.session(s["id"])["agent_status"] == "unknown"  # nothing recorded
    _, out = in_container(app, s, HOOK_CURL.replace('"$1"', "--http1.1"))
    assert out.endswith("version=1.1 status=204"), out
    assert app.session(s["id"])["agent_status"] == "waiting_input"


def test_a_method_a_route_does_not_take_is_refused_in_json(appliance: Appliance) -> None:
    """The API's refusals are JSON that says what to do, the wrong method's too (it was
    Werkzeug's HTML page), with the methods the route takes in ``Allow`` and the words."""
    http = appliance.http()
    for method, path in (("PUT", "/api/sessions"), ("DELETE", "/api/health"),
                         ("POST", "/api/nope"), ("TRACE", "/")):
        got = http.request(method, path)
        assert got.status_code == 405, (method, path, got.status_code)
        assert got.headers["content-type"] == "application/json", (method, path, got.text)
        allowed = got.headers["allow"]
        assert "GET" in allowed and method not in allowed.split(", "), (method, path, allowed)
        assert got.json() == {"error": f"{method} is not answered at {path}; it takes {allowed}",
                              "code": "method_not_allowed"}
        assert got.headers["x-frame-options"] == "DENY" and "nosniff" in got.headers[
            "x-content-type-options"]


def test_options_is_answered_204_with_the_methods_and_no_page(appliance: Appliance) -> None:
    """Quart answers OPTIONS on every route itself: it was an empty ``text/html`` page, the
    one answer of the API neither JSON nor a file. Now 204 with the methods in ``Allow``, no
    body and no type, the security headers; never a CORS answer, and a page of another
    origin asking its preflight is refused before any route (JSON)."""
    http = appliance.http()
    paths: dict[str, set[str]] = {"/": {"GET"}, "/assets/nope.js": {"GET"},
                                  "/s/nope/files": {"GET"}}
    for method, path in operations(appliance):
        paths.setdefault(path, set()).add(method)
    for path, methods in sorted(paths.items()):
        got = http.request("OPTIONS", path)
        assert got.status_code == 204, (path, got.status_code, got.headers, got.text)
        assert "content-type" not in got.headers and got.content == b"", (path, got.headers)
        allowed = set(got.headers["allow"].split(", "))
        assert methods | {"OPTIONS"} <= allowed, (path, allowed)
        assert got.headers["x-frame-options"] == "DENY" and "nosniff" in got.headers[
            "x-content-type-options"], (path, got.headers)
        assert not [h for h in got.headers if h.lower().startswith("access-control-")], path
    page = {"Origin": "http://evil.example", "Access-Control-Request-Method": "DELETE",
            "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}
    with httpx.Client(base_url=appliance.base, timeout=30) as stranger:
        got = stranger.request("OPTIONS", "/api/sessions/nope", headers=page)
    assert got.status_code == 403 and got.headers["content-type"] == "application/json", (
        got.status_code, got.headers, got.text)
    assert not [h for h in got.headers if h.lower().startswith("access-control-")]


def test_the_tcp_listener_speaks_http1_only(appliance: Appliance) -> None:
    """A network peer's HTTP/2 (prior knowledge, or the upgrade a plain request may ask
    for) is refused before any rule or route reads it; the same request over HTTP/1.1 is
    answered."""
    url = f"{appliance.base}/api/health"
    form = ["curl", "-sS", "--max-time", "20", "-o", "/dev/null",
            "-w", "version=%{http_version} status=%{http_code}"]
    for how in ("--http2-prior-knowledge", "--http2"):
        out = subprocess.run([*form, how, url], capture_output=True, text=True, check=False)
        assert out.stdout == "version=2 status=400", (how, out.stdout, out.stderr)
    out = subprocess.run([*form, "--http1.1", url], capture_output=True, text=True, check=False)
    assert out.stdout == "version=1.1 status=200", (out.stdout, out.stderr)


def _answered_then_closed(connect: Any, request: bytes) -> bytes:
    """Send ``request`` on a fresh connection and read until the server closes it (at most
    :data:`CLOSE_WAIT` seconds): the answer, or an error saying the server held it open."""
    with closing(connect()) as sock:
        sock.settimeout(CLOSE_WAIT)
        sock.sendall(request)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            raise AssertionError(f"the server held the connection open: {answer[:200]!r}") from None
    return answer


def test_every_listener_closes_a_connection_when_asked(appliance: Appliance) -> None:
    """A peer of the TCP listener (signed in or not) and the CLI's Unix socket: a request
    that asks for the connection to be closed (``Connection: close``, or HTTP/1.0 without
    keep-alive) is answered, and then the connection is closed, so the idle timer's bound on
    connections holds for it too. (The hook listener: every raw post in the test above.)"""
    host, port = appliance.base.removeprefix("http://").rsplit(":", 1)
    token = appliance.auth_headers()["Authorization"]

    def tcp() -> socket.socket:
        return socket.create_connection((host, int(port)))

    def unix() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(appliance.settings.socket_path))
        return sock

    for connect, head in ((tcp, f"Host: {host}:{port}\r\n"),
                          (tcp, f"Host: {host}:{port}\r\nAuthorization: {token}\r\n"),
                          (unix, "Host: localhost\r\n")):
        for line, close in (("GET /api/health HTTP/1.1", "Connection: close\r\n"),
                            ("GET /api/health HTTP/1.0", ""),
                            ("GET /api/sessions HTTP/1.1", "Connection: close\r\n")):
            answer = _answered_then_closed(connect, f"{line}\r\n{head}{close}\r\n".encode())
            assert re.match(rb"HTTP/1.1 (200|401) ", answer), (line, head, answer[:200])


def test_a_hook_journals_a_bounded_event_whatever_the_prompt(bounded: Appliance,
                                                             repo: Path) -> None:
    """Each hook journals the session as it is now, and that view held the person's whole
    prompt (up to 100,000 characters, each non-ASCII one six or twelve bytes of JSON): an
    agent posting its hook within its rate wrote ~1.2 MB a row, to the disk and to every
    viewer's event stream. An event's view leaves the prompt out (written once, at create;
    the list and the session's own read carry it)."""
    name = f"long-{uuid.uuid4().hex[:6]}"
    prompt = "\U0001F600" * 100_000
    bounded.client().post("/api/sessions", {"repo_path": str(repo), "name": name,
                                            "prompt": prompt})
    s = bounded.wait_phase(name, "running")
    [container] = bounded.containers(s["id"])
    token = container.exec_run(["printenv", "CLAUDERON_HOOK_TOKEN"]).output.decode().strip()
    assert _flood(container, s["id"], token, 10)[0].get("204", 0) >= 1
    with closing(sqlite3.connect(bounded.settings.db_path)) as conn:
        sizes = [n for (n,) in conn.execute(
            "SELECT length(payload) FROM events WHERE session_id = ? AND kind = 'hook'",
            (s["id"],))]
    assert sizes and max(sizes) <= 8192, sizes
    assert bounded.session(name)["initial_prompt"] == prompt  # the session still has it
