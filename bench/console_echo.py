"""Benchmark: a keystroke -> its echo, through ``/ws/console`` vs ``docker exec -it … tmux attach``.

Run: ``.venv/bin/python bench/console_echo.py [-n 200] [--rounds 4]``. Starts the API and the
reconciler on a temporary home, creates one plain session of the agent image (it has tmux),
and starts in it the tmux session the console attaches to (``agent``), running an idle
``bash``. Then, alternating round by round, it types N keys and times each key's first
byte of reaction (tmux's redraw of the echoed character) on two terminals of the same tmux
session:

- ours: a WebSocket to ``/ws/console/<id>`` over TCP, signed in, as the web UI speaks it
  (input frames ``{"type": "input", "data": base64}``, output frames the same way);
- the baseline: ``docker exec -it <container> tmux attach -t agent`` on a pseudo-terminal
  this process holds, keys written to and echoes read from its master side.

Three floors say where ours spends its time: the engine's exec stream opened from this
process exactly as the API opens it (no WebSocket hop); the console's server stack
(Hypercorn and a plain ASGI handler, the same frames) echoing with no terminal behind it;
and a bare trio server echoing a key's bytes on a plain TCP connection (no HTTP, no
WebSocket: what any relay in a trio process costs at the least).

Between keys each side waits for the screen to settle, and a line is cleared (Ctrl-U)
every 40 keys. Prints p50/p99 of each and the ratio ours / baseline (target <= 1.3x).
Never asserts. Leaves nothing: the appliance's cleanup removes its container and network
(labelled with its own instance id) and the temporary folder.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pty
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/console_echo.py`
    sys.path.insert(1, str(REPO))

import trio  # noqa: E402
from wsproto import ConnectionType, WSConnection  # noqa: E402
from wsproto.events import AcceptConnection, Request, TextMessage  # noqa: E402

from tests.conftest import make_repo  # noqa: E402
from tests.support.appliance import Appliance  # noqa: E402
from tests.support.engine import AGENT_IMAGE  # noqa: E402

KEYS = b"abcdefghijklmnopqrstuvwxyz"
SETTLE = 0.03  # quiet time that says the redraw is over
CLEAR_EVERY = 40
TMUX_SESSION = "agent"  # appliance.agents.boot's: the session /ws/console attaches to


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[round(q * (len(values) - 1))]


def key(i: int) -> bytes:
    return b"\x15" if i % CLEAR_EVERY == CLEAR_EVERY - 1 else KEYS[i % len(KEYS):][:1]


# --- ours: /ws/console, by a lean blocking client (as little client cost as the pty's) ----
class Ws:
    """A blocking WebSocket client on wsproto: the same per-key work as the pty side (one
    write, one select, one read), so the figures compare the servers, not the clients."""

    def __init__(self, port: int, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{port}", target=path,
                                               extra_headers=headers)))
        while not any(isinstance(e, AcceptConnection) for e in self._events(10)):
            pass

    def _events(self, timeout: float) -> list[object]:
        if not select.select([self.sock], [], [], timeout)[0]:
            raise TimeoutError("the console said nothing")
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the console closed")
        self.ws.receive_data(data)
        return list(self.ws.events())

    def send_json(self, obj: object) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=json.dumps(obj))))

    def output(self, timeout: float) -> bool:
        """Wait for one output frame; False when none came within ``timeout``."""
        deadline = time.perf_counter() + timeout
        while (left := deadline - time.perf_counter()) > 0:
            try:
                events = self._events(left)
            except TimeoutError:
                return False
            if any(isinstance(e, TextMessage) and '"output"' in e.data for e in events):
                return True
        return False

    def drain(self, quiet: float) -> None:
        while self.output(quiet):
            pass

    def close(self) -> None:
        self.sock.close()


def ours(app: Appliance, sid: str, n: int) -> list[float]:
    ws = Ws(app.http_port, f"/ws/console/{sid}?rows=24&cols=80", app.ws_headers())
    out: list[float] = []
    try:
        ws.drain(0.5)  # the first screen
        for i in range(n):
            k = key(i)
            t0 = time.perf_counter()
            ws.send_json({"type": "input", "data": base64.b64encode(k).decode()})
            if not ws.output(10):
                raise RuntimeError("no echo in 10 s through /ws/console")
            if k != b"\x15":
                out.append(time.perf_counter() - t0)
            ws.drain(SETTLE)
    finally:
        ws.close()
    return out


# --- a floor: the API's own engine call, from this process (no WebSocket hop) ------------
async def engine_direct(app: Appliance, container: str, n: int) -> list[float]:
    from appliance.backends.docker import DockerBackend  # noqa: PLC0415 (import order)

    backend = DockerBackend(url=None, instance=app.instance)  # the local engine
    terminal = await backend.open_terminal(
        container, ["tmux", "attach-session", "-t", TMUX_SESSION], rows=24, cols=80)
    out: list[float] = []

    async def drain(quiet: float) -> None:
        while True:
            with trio.move_on_after(quiet) as scope:
                await terminal.receive()
            if scope.cancelled_caught:
                return

    try:
        await drain(0.5)
        for i in range(n):
            k = key(i)
            t0 = time.perf_counter()
            await terminal.send(k)
            with trio.fail_after(10):
                await terminal.receive()
            if k != b"\x15":
                out.append(time.perf_counter() - t0)
            await drain(SETTLE)
        await terminal.send(b"\x02d")
    finally:
        await terminal.aclose()
    return out


# --- a floor: the same server stack echoing a frame, no terminal behind it ---------------
ECHO_APP = """
import base64, json, sys, trio
from hypercorn.config import Config
from hypercorn.trio import serve

async def echo(scope, receive, send):  # plain ASGI, as api/console.py serves the console
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]
            await send({"type": kind + ".complete"})
            if kind.endswith("shutdown"):
                return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (msg := await receive())["type"] == "websocket.receive":
        data = base64.b64decode(json.loads(msg["text"])["data"])
        await send({"type": "websocket.send", "text": json.dumps(
            {"type": "output", "data": base64.b64encode(data).decode()})})

config = Config()
config.bind = ["127.0.0.1:" + sys.argv[1]]
config.accesslog = None
config.alpn_protocols = ["http/1.1"]
trio.run(serve, echo, config)
"""


T = TypeVar("T")


@contextmanager
def echo_server(source: str, connect: Callable[[int], T]) -> Iterator[T]:
    """``source`` run as a server on a free loopback port, and ``connect``'s connection to
    it (tried until the server listens, for up to 30 s); the server is stopped after."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", source, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = connect(port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield conn
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def framework_floor(n: int) -> list[float]:
    """Hypercorn and a plain ASGI handler (the console's server stack) echoing its frames."""
    with echo_server(ECHO_APP, lambda port: Ws(port, "/echo", [])) as ws:
        out: list[float] = []
        try:
            for i in range(n):
                t0 = time.perf_counter()
                ws.send_json({"type": "input", "data": base64.b64encode(key(i)).decode()})
                if not ws.output(10):
                    raise RuntimeError("no echo from the framework floor")
                out.append(time.perf_counter() - t0)
                time.sleep(SETTLE)
        finally:
            ws.close()
        return out


# --- a floor: bare trio echoing raw bytes (no HTTP, no WebSocket) ----------------------
BARE_APP = """
import sys, trio

async def echo(stream):
    while data := await stream.receive_some(65536):
        await stream.send_all(data)

trio.run(lambda: trio.serve_tcp(echo, int(sys.argv[1]), host="127.0.0.1"))
"""


def trio_floor(n: int) -> list[float]:
    """A key's bytes to a bare trio echo server and back, on one TCP connection."""
    with echo_server(BARE_APP, lambda port: socket.create_connection(("127.0.0.1", port))
                     ) as conn, conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        out: list[float] = []
        for i in range(n):
            t0 = time.perf_counter()
            conn.sendall(key(i))
            if not select.select([conn], [], [], 10)[0] or not conn.recv(65536):
                raise RuntimeError("no echo from the bare trio floor")
            out.append(time.perf_counter() - t0)
            time.sleep(SETTLE)
        return out


# --- the baseline: docker exec -it on a pty -------------------------------------------
def _pty_drain(fd: int, quiet: float) -> None:
    while select.select([fd], [], [], quiet)[0]:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


def baseline(container: str, n: int) -> list[float]:
    master, slave = pty.openpty()
    os.set_blocking(master, True)
    proc = subprocess.Popen(["docker", "exec", "-it", "-e", "TERM=xterm-256color", container,
                             "tmux", "attach-session", "-t", TMUX_SESSION],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out: list[float] = []
    try:
        _pty_drain(master, 0.5)
        for i in range(n):
            k = key(i)
            t0 = time.perf_counter()
            os.write(master, k)
            if not select.select([master], [], [], 10)[0]:
                raise RuntimeError("no echo in 10 s through docker exec")
            os.read(master, 65536)
            if k != b"\x15":
                out.append(time.perf_counter() - t0)
            _pty_drain(master, SETTLE)
    finally:
        os.write(master, b"\x02d")  # tmux: detach this client (the session lives on)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(master)
    return out


def start_tmux(app: Appliance, sid: str) -> str:
    (container,) = app.containers(sid)
    done = container.exec_run(["tmux", "new-session", "-d", "-s", TMUX_SESSION, "-x", "80",
                               "-y", "24", "env", "PS1=$ ", "bash", "--norc", "-i"])
    if done.exit_code != 0:
        raise RuntimeError(f"tmux did not start: {done.output!r}")
    return str(container.id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="keys per side per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--image", default=AGENT_IMAGE)
    args = parser.parse_args()
    # A SIGTERM (``timeout``) unwinds like Ctrl-C: the cleanup below runs, nothing is left.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    got: dict[str, list[float]] = {"ours": [], "docker exec": [], "engine": [],
                                   "framework": [], "trio": []}
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # git runs as the repository's owner: it must reach it
        app = Appliance(root / "home", image=args.image)
        try:
            app.start("api", "reconciler")
            repo = make_repo(root / "repo")
            sid = app.client().post("/api/sessions", {
                "repo_path": str(repo), "name": "echo"})["session"]["id"]
            app.wait_phase(sid, "running", timeout=180)
            container = start_tmux(app, sid)
            for _ in range(args.rounds):
                got["ours"] += ours(app, sid, args.n)
                got["docker exec"] += baseline(container, args.n)
                got["engine"] += trio.run(engine_direct, app, container, args.n)
                got["framework"] += framework_floor(args.n)
                got["trio"] += trio_floor(args.n)
        finally:
            app.cleanup()
    print(f"console echo: {args.rounds} rounds x {args.n} keys per side, one tmux session")
    for label, values in (("docker exec -it … tmux attach (pty)", got["docker exec"]),
                          ("engine exec stream, no API (floor)", got["engine"]),
                          ("WebSocket echo, same server stack, no terminal", got["framework"]),
                          ("raw bytes echo, bare trio, no HTTP", got["trio"]),
                          ("/ws/console (WebSocket, TCP)", got["ours"])):
        print(f"  {label:48s} p50 {statistics.median(values) * 1e3:6.2f} ms  "
              f"p99 {percentile(values, 0.99) * 1e3:6.2f} ms")
    ratio = statistics.median(got["ours"]) / statistics.median(got["docker exec"])
    print(f"  ratio ours / docker exec (p50): {ratio:.2f}x   target <= 1.3x")


if __name__ == "__main__":
    main()
