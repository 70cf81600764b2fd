"""Running commands inside Docker containers: one-shot execs and live terminals.

:func:`run_exec` (sync, called on a worker thread by :class:`DockerBackend`) runs a command
to completion, optionally feeding it ``stdin`` (then half-closing the hijacked connection,
which the engine turns into EOF on the process's stdin), and returns its exit code and
output. :func:`open_exec_stream` starts an exec with a TTY and hands back a trio stream of
its raw bytes: it speaks the engine's HTTP upgrade itself on a trio socket (no thread
per viewer, no byte lost between the response head and the first output).

Neighbours: :mod:`appliance.backends.docker` (the backend that calls these),
:mod:`appliance.backends.base` (``ExecResult``, ``Terminal``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import docker
import docker.errors
import trio
from docker.utils.socket import frames_iter

from appliance.backends.base import ExecResult
from appliance.errors import BackendError, BackendUnavailable

_HEAD_LIMIT = 64 * 1024


#: How long a one-shot exec may run, and how much it may print: its output comes from the
#: agent's side (its tmux server answers the ``tmux`` calls; a process of its uid can write
#: into the exec's pipes), and the engine's stream is read with ``poll()`` and no timeout, in
#: one of the backend's few threads, which trio cannot cancel.
EXEC_SECONDS = 30.0
OUTPUT_LIMIT = 16 * 1024 * 1024


def _cut(raw: socket.socket, cut: threading.Event) -> None:
    cut.set()
    with contextlib.suppress(OSError):
        raw.shutdown(socket.SHUT_RDWR)


#: How often the engine is asked whether an exec's process runs yet (it answers at once
#: until its start is under way, then when the start is over).
_STARTED_POLL = 0.005


def wait_running(client: docker.DockerClient, exec_id: str,
                 seconds: float = EXEC_SECONDS) -> None:
    """Until the engine has started ``exec_id``'s process (it knows its pid) or given up on it.

    The engine's answer to the start comes before runc has set the process up; until then
    the container must not be paused (``docker_freeze``)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            state = client.api.exec_inspect(exec_id)
        except docker.errors.NotFound:
            return  # the start failed and the engine dropped it
        if state.get("Pid") or state.get("ExitCode") is not None:
            return
        if time.monotonic() > deadline:
            raise BackendError(f"the engine did not start the command within {seconds:.0f}s")
        time.sleep(_STARTED_POLL)


def run_exec(client: docker.DockerClient, container: str, argv: list[str], *,
             stdin: bytes | None, user: str | None, running: Callable[[], None] = lambda: None,
             seconds: float | None = None) -> ExecResult:
    """``argv`` run to its end, or cut at ``seconds`` (default :data:`EXEC_SECONDS`);
    ``running`` is called once its process runs."""
    seconds = seconds or EXEC_SECONDS
    api = client.api
    exec_id = api.exec_create(container, argv, stdin=stdin is not None, user=user or "")["Id"]
    sock: Any = api.exec_start(exec_id, socket=True)
    raw: socket.socket = getattr(sock, "_sock", sock)
    cut = threading.Event()
    timer = threading.Timer(seconds, _cut, (raw, cut))
    timer.daemon = True
    timer.start()
    out, err = b"", b""
    try:
        wait_running(client, exec_id, seconds)
        running()
        if stdin is not None:
            raw.sendall(stdin)
            raw.shutdown(socket.SHUT_WR)
        frames = frames_iter(sock, tty=False)  # type: ignore[no-untyped-call]
        out, err = collect(frames, limit=OUTPUT_LIMIT, what=argv[0])
    except OSError:
        if not cut.is_set():
            raise
    finally:
        timer.cancel()
        sock.close()
        raw.close()  # closing the SocketIO wrapper alone leaves the socket open
    if cut.is_set():
        raise BackendError(f"{argv[0]} did not finish in the container within {seconds:.0f}s")
    return ExecResult(exit_code=_exit_code(client, exec_id), stdout=out, stderr=err)


def collect(frames: Iterable[tuple[int, bytes]], *, limit: int,
            what: str) -> tuple[bytes, bytes]:
    """The stdout and stderr of an exec's multiplexed ``frames`` (stream 1 is stdout, any
    other stderr); refused as soon as they hold more than ``limit`` bytes together."""
    out, err = bytearray(), bytearray()
    for stream, data in frames:
        (out if stream == 1 else err).extend(data)
        if len(out) + len(err) > limit:
            raise BackendError(f"{what} wrote more than {limit} bytes in the container")
    return bytes(out), bytes(err)


def _exit_code(client: docker.DockerClient, exec_id: str) -> int:
    """The exit code the engine recorded, -1 when it records none."""
    for _ in range(100):  # the stream ends a moment before the engine records the exit code
        code = client.api.exec_inspect(exec_id).get("ExitCode")
        if code is not None:
            return int(code)
        time.sleep(0.01)
    return -1


async def open_exec_stream(url: str, exec_id: str) -> tuple[trio.abc.Stream, bytes]:
    """Start ``exec_id`` (created with a TTY and stdin) and return its byte stream plus any
    output that arrived together with the response head."""
    parts = urlsplit(url)
    try:
        if parts.scheme in ("unix", "http+unix"):
            stream: trio.abc.Stream = await trio.open_unix_socket(parts.path)
        elif parts.scheme in ("tcp", "http"):
            stream = await trio.open_tcp_stream(parts.hostname or "127.0.0.1", parts.port or 2375)
        else:
            raise BackendError(f"live terminals need a unix:// or tcp:// engine, not {url}")
    except OSError as exc:
        raise BackendUnavailable(f"Docker engine not reachable at {url}: {exc}") from exc
    body = json.dumps({"Detach": False, "Tty": True}).encode()
    head = (f"POST /exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n"
            "Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    await stream.send_all(head + body)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = await stream.receive_some(65536)
        if not chunk or len(buf) > _HEAD_LIMIT:
            await stream.aclose()
            raise BackendError("the engine closed the terminal before it started")
        buf += chunk
    response, rest = buf.split(b"\r\n\r\n", 1)
    status = response.split(b"\r\n", 1)[0]
    if b" 101 " not in status and b" 200 " not in status:
        await stream.aclose()
        raise BackendError(f"the engine refused the terminal: {status.decode(errors='replace')}")
    return stream, rest


class DockerTerminal:
    """A TTY exec's byte stream; ``resize`` goes through the engine's exec resize call."""

    def __init__(self, stream: trio.abc.Stream, pending: bytes,
                 resize: Any) -> None:
        self._stream = stream
        self._pending = pending
        self._resize = resize

    async def send(self, data: bytes) -> None:
        await self._stream.send_all(data)

    async def receive(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        try:
            return bytes(await self._stream.receive_some(65536))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    async def resize(self, rows: int, cols: int) -> None:
        await self._resize(rows, cols)

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self._stream)
