"""Benchmark: a hook's POST -> the event reaching a ``/ws/events`` subscriber.

Run: ``.venv/bin/python bench/live_status.py [-n 300] [--sessions 20]``. Starts the API and
the reconciler on a temporary home, creates N plain sessions (real containers of the base
image) and waits for them to run, subscribes to ``/ws/events`` over the web UI's path (TCP,
signed in), then posts hook events the way the hook script in a container does: a new
connection to the session's own ``CLAUDERON_HOOK_URL`` (read from the container), its own
hook token, one ``POST /api/hooks`` (curl's request, byte for byte in shape). Round-robin
over the sessions, one at a time, it times (a) the POST's own round trip to its 204, the
floor (the event is committed before the 204 leaves), and (b) the POST's start -> the
matching event arriving on the WebSocket. Prints p50/p99 of both and their ratio (target:
event p50 <= 20 ms). Never asserts. Leaves nothing: the appliance's cleanup removes its
containers and network (labelled with its own instance id) and the temporary folder.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/live_status.py`
    sys.path.insert(1, str(REPO))

import trio  # noqa: E402
from trio_websocket import open_websocket_url  # noqa: E402

from appliance.tokens import Purpose, derive_token, load_or_create_instance_key  # noqa: E402
from tests.conftest import make_repo  # noqa: E402
from tests.support.appliance import Appliance, wait_for  # noqa: E402

EVENTS = ("UserPromptSubmit", "Stop")  # alternate: busy, then idle


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[round(q * (len(values) - 1))]


async def post_hook(host: str, port: int, path: str, token: str, body: bytes) -> None:
    """One hook POST on a new connection, as curl sends it; returns at the 204."""
    stream = await trio.open_tcp_stream(host, port)
    try:
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: curl/7.88.1\r\n"
                f"Accept: */*\r\nAuthorization: Bearer {token}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        await stream.send_all(head + body)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = await stream.receive_some(4096)
            if not chunk:
                raise RuntimeError("the hook listener closed the connection")
            got += chunk
        if b" 204 " not in got.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"hook refused: {got[:200]!r}")
    finally:
        await stream.aclose()


async def measure(app: Appliance, sessions: list[tuple[str, str]], n: int
                  ) -> tuple[list[float], list[float]]:
    """``sessions``: (id, hook url). Returns (POST round trips, POST -> event) in seconds."""
    key = load_or_create_instance_key(app.settings.instance_secret_path)
    tokens = {sid: derive_token(key, sid, Purpose.HOOK) for sid, _ in sessions}
    url = f"ws://127.0.0.1:{app.http_port}/ws/events"
    posts: list[float] = []
    events: list[float] = []
    async with open_websocket_url(url, extra_headers=app.ws_headers("read-only")) as ws:
        hello = json.loads(await ws.get_message())
        assert hello["type"] == "connected"
        arrived: dict[tuple[str, str], float] = {}
        wanted: tuple[str, str] | None = None
        got_it = trio.Event()

        async def read() -> None:
            nonlocal got_it
            while True:
                msg = json.loads(await ws.get_message())
                at = time.perf_counter()
                ev = msg.get("event") or {}
                if ev.get("kind") != "hook":
                    continue
                mark = (ev["session_id"], ev["payload"].get("hook", ""))
                arrived[mark] = at
                if mark == wanted:
                    got_it.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            for i in range(n):
                sid, hook_url = sessions[i % len(sessions)]
                name = EVENTS[(i // len(sessions)) % 2]
                parts = urlsplit(hook_url)
                body = json.dumps({"session_id": sid, "event": {"type": name}},
                                  separators=(",", ":")).encode()
                wanted, got_it = (sid, name), trio.Event()
                arrived.pop(wanted, None)
                t0 = time.perf_counter()
                await post_hook(parts.hostname or "", parts.port or 80, parts.path,
                                tokens[sid], body)
                posts.append(time.perf_counter() - t0)
                with trio.fail_after(10):
                    await got_it.wait()
                events.append(arrived[wanted] - t0)
                await trio.sleep(0.01)  # hooks come apart in life; let the loop idle
            nursery.cancel_scope.cancel()
    return posts, events


def hook_url(app: Appliance, sid: str) -> str:
    (container,) = app.containers(sid)
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    # The name resolves inside the container only (its /etc/hosts): resolve it the same way.
    hosts = dict(h.split(":", 1) for h in container.attrs["HostConfig"]["ExtraHosts"] or ())
    url = urlsplit(env["CLAUDERON_HOOK_URL"])
    address = hosts.get(url.hostname or "", url.hostname)
    return url._replace(netloc=f"{address}:{url.port}").geturl()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="hook events to time")
    parser.add_argument("--sessions", type=int, default=20, help="running sessions")
    args = parser.parse_args()
    # A SIGTERM (``timeout``) unwinds like Ctrl-C: the cleanup below runs, nothing is left.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="bench-live-status-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # git runs as the repository's owner: it must reach it
        app = Appliance(root / "home",
                        config=f"[limits]\nmax_sessions = {args.sessions + 5}\n"
                               f"max_concurrent_creates = {args.sessions}\n")
        try:
            app.start("api", "reconciler")
            repo = make_repo(root / "repo")
            ids = [app.client().post("/api/sessions", {"repo_path": str(repo),
                                                       "name": f"live-{i}"})["session"]["id"]
                   for i in range(args.sessions)]
            for sid in ids:
                app.wait_phase(sid, "running", timeout=180)
            wait_for(lambda: len(app.containers()) == args.sessions, what="the containers")
            sessions = [(sid, hook_url(app, sid)) for sid in ids]
            posts, events = trio.run(measure, app, sessions, args.n)
        finally:
            app.cleanup()
    print(f"live status: {args.n} hook events over {args.sessions} running sessions")
    for label, values in (("hook POST -> 204 (floor)", posts),
                          ("hook POST -> event on /ws/events", events)):
        print(f"  {label:36s} p50 {statistics.median(values) * 1e3:7.2f} ms  "
              f"p99 {percentile(values, 0.99) * 1e3:7.2f} ms  "
              f"max {max(values) * 1e3:7.2f} ms")
    print(f"  ratio event / POST (p50): {statistics.median(events) / statistics.median(posts):.2f}x"
          f"   target: event p50 <= 20 ms")


if __name__ == "__main__":
    main()
