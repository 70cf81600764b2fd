"""The FAKE API server's ``pods/<name>/exec``: the v4.channel.k8s.io websocket over
``docker exec`` (part of the test double in :mod:`tests.fakes.kube_api`).

As a real API server does: the command comes in the query (``command`` repeated,
``container``, ``stdin``, ``stdout``, ``stderr``, ``tty``); 404 for a missing pod, 400 for a
container that is not running, both as ``Status`` bodies before any upgrade; then every
message carries its channel in the first byte: stdin (0) in, stdout (1) and stderr (2) out
(a TTY has one stream, on 1), resize (4) in as ``{"Width": W, "Height": H}``; when the
process ends, a ``Status`` on channel 3 (``Success``, or ``NonZeroExitCode`` with the code in
``details.causes``), then the close.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import trio
from quart import Response, websocket

SUBPROTOCOL = "v4.channel.k8s.io"
DOCKER_SOCKET = "/var/run/docker.sock"


def _status(code: int, reason: str, message: str) -> Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return Response(json.dumps(body), status=code, content_type="application/json")


def exit_status(code: int, argv: list[str]) -> bytes:
    if code == 0:
        body: dict[str, Any] = {"metadata": {}, "status": "Success"}
    else:
        body = {"metadata": {}, "status": "Failure",
                "message": f"command terminated with non-zero exit code: error executing "
                           f"command {argv}, exit code {code}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
    return bytes([3]) + json.dumps(body).encode()


async def _docker_stream(exec_id: str, tty: bool) -> tuple[trio.SocketStream, bytes]:
    stream = await trio.open_unix_socket(DOCKER_SOCKET)
    body = json.dumps({"Detach": False, "Tty": tty}).encode()
    await stream.send_all((f"POST /exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n"
                           "Content-Type: application/json\r\nConnection: Upgrade\r\n"
                           f"Upgrade: tcp\r\nContent-Length: {len(body)}\r\n\r\n").encode()
                          + body)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise OSError("docker closed the exec")
        buf += chunk
    _, rest = buf.split(b"\r\n\r\n", 1)
    return stream, rest


async def serve_exec(server: Any, ns: str, name: str) -> Response | None:
    pod = server.store.get("pods", ns, name)
    if pod is None:
        return _status(404, "NotFound", f'pods "{name}" not found')
    args = websocket.args
    argv = args.getlist("command")
    wanted = args.get("container") or pod["spec"]["containers"][0]["name"]
    tty, stdin = args.get("tty") == "true", args.get("stdin") == "true"
    running = [s for s in (pod.get("status") or {}).get("containerStatuses") or []
               if s["name"] == wanted and (s.get("state") or {}).get("running")]
    if not running or not argv:
        return _status(400, "BadRequest", f"container {wanted} is not valid for pod {name}"
                       if not running else "you must specify at least 1 command")
    if SUBPROTOCOL not in websocket.requested_subprotocols:
        return _status(400, "BadRequest", f"the websocket must offer {SUBPROTOCOL}")
    container_id = running[0]["containerID"].removeprefix("docker://")
    api = server.kubelet.docker.api
    created = await trio.to_thread.run_sync(lambda: api.exec_create(
        container_id, argv, stdin=stdin, tty=tty, stdout=True, stderr=True))
    exec_id = created["Id"]
    await websocket.accept(subprotocol=SUBPROTOCOL)
    stream, pending = await _docker_stream(exec_id, tty)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_pump_in, stream, api, exec_id)
        await _pump_out(stream, pending, tty)
        code = None
        for _ in range(100):  # the stream ends a moment before the exit code is recorded
            code = (await trio.to_thread.run_sync(api.exec_inspect, exec_id)).get("ExitCode")
            if code is not None:
                break
            await trio.sleep(0.01)
        await websocket.send(exit_status(-1 if code is None else int(code), argv))
        nursery.cancel_scope.cancel()
    await trio.aclose_forcefully(stream)
    await websocket.close(1000)
    return None


async def _pump_out(stream: trio.SocketStream, pending: bytes, tty: bool) -> None:
    buf = pending
    while True:
        if tty:
            if buf:
                await websocket.send(bytes([1]) + buf)
                buf = b""
        else:
            while len(buf) >= 8:
                kind, size = buf[0], struct.unpack(">I", buf[4:8])[0]
                if len(buf) < 8 + size:
                    break
                await websocket.send(bytes([1 if kind != 2 else 2]) + buf[8:8 + size])
                buf = buf[8 + size:]
        try:
            chunk = await stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        if not chunk:
            return
        buf += chunk


async def _pump_in(stream: trio.SocketStream, api: Any, exec_id: str) -> None:
    while True:
        message = await websocket.receive()
        data = message.encode() if isinstance(message, str) else message
        if not data:
            continue
        channel, payload = data[0], data[1:]
        if channel == 0 and payload:
            await stream.send_all(payload)
        elif channel == 4:
            size = json.loads(payload)
            await trio.to_thread.run_sync(lambda s=size: api.exec_resize(
                exec_id, height=int(s["Height"]), width=int(s["Width"])))
