"""Running commands in a session's pod: the exec API over the official client's websocket.

:func:`run_exec` (sync, on a worker thread) runs a command to the end and returns its exit
code and output; :class:`KubeTerminal` is a live TTY (``tmux attach``) for the web console.
Both use ``kubernetes.stream.stream`` on the ``channel.k8s.io`` subprotocols: one byte of
channel (0 stdin, 1 stdout, 2 stderr, 3 the final status, 4 resize) before each message.

stdin: the v4 protocol cannot say "end of input", so a command given ``stdin`` runs under
``head -c <length> |``: it reads exactly what was sent and sees its end, on any API server.

``stream`` swaps a method of the ApiClient it is given while it connects, so each exec gets
an ApiClient of its own (never the one REST calls share across threads).

Deadlines: the client's websocket has no timeout of its own, so an API server that never
answers the upgrade, or stops reading or writing mid-frame, held its worker thread forever.
Each socket gets the REST calls' read limit for every step (:class:`_TimedWebSocket`), and
:func:`run_exec` shuts its socket down at the exec's deadline, which ends a read that a
frame sent a byte at a time keeps alive.

Bounds: a frame is refused from its header when it announces more than :data:`FRAME_LIMIT`
(the client read a frame whole, however long, before anyone counted it), and so is a message
sent in fragments past it; what comes on a channel no one reads is dropped and counted (the
client kept it, and every byte of stdout besides, for as long as the socket lived).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Any

import trio
import websocket
from kubernetes import client
from kubernetes.stream import stream, ws_client
from websocket import _abnf

from appliance.backends import kubernetes_client
from appliance.backends.base import ExecResult
from appliance.config_kubernetes import KubeSettings
from appliance.errors import BackendError

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
POLL_SECONDS = 0.25
OUTPUT_LIMIT = 64 * 1024 * 1024
#: The longest frame, or message in fragments, read (an API server's are 32 KiB at most).
FRAME_LIMIT = 4 * 1024 * 1024
#: What a terminal takes on the channels it does not read (its status, at its end) in all.
STRAY_LIMIT = 64 * 1024


def fed(argv: list[str], stdin: bytes | None) -> list[str]:
    """``argv`` reading exactly ``len(stdin)`` bytes of stdin, then its end."""
    if stdin is None:
        return argv
    return ["sh", "-c", 'head -c "$0" | "$@"', str(len(stdin)), *argv]


def exit_code(status: str) -> tuple[int, str]:
    """The exit code in the error channel's Status, and what it says when it is no exit."""
    if not status.strip():
        return -1, "the exec ended without a status"
    try:
        doc = json.loads(status)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return -1, status[:300]
    if doc.get("status") == "Success":
        return 0, ""
    for cause in (doc.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", "")), ""
            except ValueError:
                break
    # Not an exit: the command could not be run at all (not found, not executable).
    return 126, str(doc.get("message") or status)[:500]


class _BoundedFrames(_abnf.frame_buffer):
    """Frames read as they come, refused from a header announcing more than FRAME_LIMIT."""

    def recv_length(self) -> None:
        super().recv_length()
        if (self.length or 0) > FRAME_LIMIT:
            raise BackendError(f"the pod's exec sent a frame of {self.length} bytes, more "
                               f"than the {FRAME_LIMIT} an exec's frame may hold")


class _BoundedMessages(_abnf.continuous_frame):
    """A message in fragments, refused once they hold more than FRAME_LIMIT."""

    def add(self, frame: _abnf.ABNF) -> None:
        held = len(self.cont_data[1]) if self.cont_data else 0
        if held + len(frame.data) > FRAME_LIMIT:
            raise BackendError(f"the pod's exec sent a message in fragments of more than "
                               f"{FRAME_LIMIT} bytes")
        super().add(frame)


class _TimedWebSocket(websocket.WebSocket):
    """The client's websocket, each connect, read and write limited to the REST calls'
    read limit (the official client gives it none: it would wait forever), its frames and
    messages to FRAME_LIMIT."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        utf8 = self.frame_buffer.skip_utf8_validation
        self.frame_buffer = _BoundedFrames(self._recv, utf8)
        self.cont_frame = _BoundedMessages(self.cont_frame.fire_cont_frame, utf8)

    def connect(self, url: str, **options: Any) -> None:
        options.setdefault("timeout", kubernetes_client.REQUEST_TIMEOUT[1])
        super().connect(url, **options)  # type: ignore[no-untyped-call]


ws_client.WebSocket = _TimedWebSocket


def _cut(ws: Any) -> None:
    """Shut ``ws``'s socket down under whatever read or write holds it (from the watchdog
    thread: the socket's own shutdown, not the TLS layer's)."""
    with contextlib.suppress(OSError, AttributeError, TypeError):  # TypeError: gone already
        socket.socket.shutdown(ws.sock.sock, socket.SHUT_RDWR)


def _connect(config: client.Configuration, namespace: str, pod: str, argv: list[str], *,
             stdin: bool, tty: bool) -> Any:
    api = client.CoreV1Api(client.ApiClient(config))
    ws = stream(api.connect_get_namespaced_pod_exec, pod, namespace, container="agent",
                  command=argv, stdin=stdin, stdout=True, stderr=not tty, tty=tty,
                  _preload_content=False, binary=True)
    # One frame a poll: the client reads every frame already waiting before it returns, so
    # a pod writing without pause held it there, its output growing past every limit.
    ws._frames_immediately_available = lambda: False
    ws._all = ws_client._IgnoredIO()  # not a copy of all its output, kept until it closes
    return ws


def _strays(ws: Any, keep: tuple[int, ...]) -> int:
    """Drops what came on every channel but ``keep``'s: how many bytes it was."""
    channels: dict[int, bytes] = ws._channels
    return sum(len(channels.pop(c)) for c in [c for c in channels if c not in keep])


def run_exec(config: client.Configuration, namespace: str, pod: str, argv: list[str], *,
             stdin: bytes | None, timeout: float) -> ExecResult:
    ws = _connect(config, namespace, pod, fed(argv, stdin), stdin=stdin is not None,
                  tty=False)
    deadline = time.monotonic() + timeout
    watchdog = threading.Timer(timeout, _cut, (ws,))
    watchdog.start()
    try:
        out, err, status = _drain(ws, argv[0], stdin)
    except Exception as exc:
        if time.monotonic() < deadline or isinstance(exc, BackendError):
            raise
        raise BackendError(f"{argv[0]} did not finish in the pod within {timeout:.0f}s") \
            from exc
    finally:
        watchdog.cancel()
        watchdog.join()
        ws.close(timeout=0)
    code, said = exit_code(status)
    if said:
        err += said.encode()
    return ExecResult(exit_code=code, stdout=bytes(out), stderr=bytes(err))


def _drain(ws: Any, name: str, stdin: bytes | None) -> tuple[bytearray, bytearray, str]:
    """Stdin sent, then stdout, stderr and the status read until the exec ends; what comes
    on the channels an exec does not answer on (stdin's, resize's, 5 to 255) counts, and is
    dropped."""
    out, err, status, stray = bytearray(), bytearray(), bytearray(), 0
    if stdin:
        for i in range(0, len(stdin), 256 * 1024):
            ws.write_stdin(stdin[i:i + 256 * 1024])
    while True:
        ws.update(timeout=POLL_SECONDS)
        out += ws.read_channel(STDOUT)
        err += ws.read_channel(STDERR)
        status += ws.read_channel(ERROR)
        stray += _strays(ws, (STDOUT, STDERR, ERROR))
        if len(out) + len(err) + len(status) + stray > OUTPUT_LIMIT:
            raise BackendError(f"{name} wrote more than {OUTPUT_LIMIT} bytes")
        if not ws.is_open():
            return out, err, status.decode("utf-8", "replace")


class KubeTerminal:
    """A TTY exec in the pod. The websocket client is synchronous: each receive polls it on
    a worker thread for at most :data:`POLL_SECONDS`, and a cancelled viewer leaves that
    thread to :meth:`aclose`, which shuts its socket down (a frame sent a byte at a time
    held it, and the viewer, forever)."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._stray = 0

    @classmethod
    async def open(cls, config: client.Configuration, namespace: str, pod: str,
                   argv: list[str], limiter: trio.CapacityLimiter) -> KubeTerminal:
        try:
            ws = await trio.to_thread.run_sync(
                lambda: _connect(config, namespace, pod, argv, stdin=True, tty=True),
                limiter=limiter)
        except Exception as exc:
            raise BackendError(f"could not open a terminal in the pod {pod}: {exc}") from exc
        return cls(ws)

    async def send(self, data: bytes) -> None:
        await trio.to_thread.run_sync(self._ws.write_stdin, data)

    def _poll(self) -> bytes | None:
        if not self._ws.is_open():
            return None
        try:
            self._ws.update(timeout=POLL_SECONDS)
        except websocket.WebSocketConnectionClosedException:
            return None  # the API server hung up: the terminal ended
        data: bytes = self._ws.read_channel(STDOUT)
        self._stray += _strays(self._ws, (STDOUT,))
        if self._stray > STRAY_LIMIT:
            raise BackendError(f"the pod's terminal sent more than {STRAY_LIMIT} bytes on "
                               "channels a terminal does not read")
        if data:
            return data
        return b"" if self._ws.is_open() else None

    async def receive(self) -> bytes:
        while True:
            data = await trio.to_thread.run_sync(self._poll, abandon_on_cancel=True)
            if data is None:
                return b""
            if data:
                return data

    async def resize(self, rows: int, cols: int) -> None:
        size = json.dumps({"Width": cols, "Height": rows})
        await trio.to_thread.run_sync(self._ws.write_channel, RESIZE, size)

    async def aclose(self) -> None:
        _cut(self._ws)
        await trio.to_thread.run_sync(lambda: self._ws.close(timeout=0))


def kubectl(kube: KubeSettings, namespace: str) -> list[str]:
    """``kubectl`` with the appliance's kubeconfig, context and the sessions' namespace: the
    command a person's terminal runs to attach to a pod (pure)."""
    argv = ["kubectl"]
    if kube.kubeconfig:
        argv += ["--kubeconfig", kube.kubeconfig]
    if kube.context:
        argv += ["--context", kube.context]
    return [*argv, "--namespace", namespace]
