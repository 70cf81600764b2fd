"""A FAKE API server's ``pods/<name>/exec`` that stalls or floods, for the exec's deadline
tests (:mod:`tests.integration.test_kubernetes_exec_stall`).

It speaks what a real API server does on the wire, over TLS: the HTTP/1.1 upgrade answered
``101`` with ``Sec-WebSocket-Accept`` and the ``v4.channel.k8s.io`` subprotocol, then
unmasked binary frames whose first byte is the channel (1 stdout). Told a ``mode``, it
then: ``upgrade`` never answers the upgrade; ``silent`` sends nothing and never closes;
``trickle`` starts a stdout frame and sends it a byte at a time, never finishing it;
``flood`` sends stdout frames without end (``flood3``: on the status's channel,
``flood0``: stdin's, ``flood4``: resize's, ``flood7``: one no exec has, none of which an
exec's output takes); ``deaf`` reads nothing more (so what the client sends fills the
socket) until told to ``hear`` (then it reads to the end, as ``silent``); ``huge`` announces
a stdout frame of 2 GiB and trickles it, ``fast`` announces one of 500 MiB and sends it
without pause; ``fragments`` begins a stdout message and sends its continuation frames
without end. ``trickling`` is set once a frame is begun, ``closed`` once the client let go.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import ssl
import struct
import threading
from pathlib import Path

import trustme

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: The head of the stdout frame a mode trickles: 60000 bytes, or 2 GiB.
TRICKLED = {"trickle": b"\x82\x7e" + struct.pack(">H", 60000),
            "huge": b"\x82\x7f" + struct.pack(">Q", 2 << 30)}


class StallingExec:
    def __init__(self, tmp: Path, mode: str) -> None:
        self.mode = mode
        self.ca = trustme.CA()
        self.ca_path = tmp / "stall-ca.pem"
        self.ca_path.write_bytes(self.ca.cert_pem.bytes())
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1").configure_cert(self.tls)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upgraded = threading.Event()
        self.closed = threading.Event()
        self.stop = threading.Event()
        self.hear = threading.Event()
        self.trickling = threading.Event()
        self.conn: socket.socket | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        raw, _ = self.listener.accept()
        conn = self.conn = raw
        try:
            conn = self.conn = self.tls.wrap_socket(raw, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            self.upgraded.set()
            if self.mode == "upgrade":
                self._hold(conn)
                return
            key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                         b"\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n")
            if self.mode in TRICKLED:
                conn.sendall(TRICKLED[self.mode] + b"\x01")
                self.trickling.set()
                while not self.stop.wait(0.05):
                    conn.sendall(b"x")
            elif self.mode in ("fast", "fragments"):
                conn.sendall(b"\x82\x7f" + struct.pack(">Q", 500 << 20) + b"\x01"
                             if self.mode == "fast" else b"\x02\x02\x01y")
                chunk = (b"\x00\x7e" + struct.pack(">H", 32768) if self.mode == "fragments"
                         else b"") + b"y" * 32768
                while not self.stop.is_set():
                    conn.sendall(chunk)
            elif self.mode.startswith("flood"):
                channel = bytes([int(self.mode.removeprefix("flood") or 1)])
                frame = b"\x82\x7e" + struct.pack(">H", 32769) + channel + b"y" * 32768
                while not self.stop.is_set():
                    conn.sendall(frame)
            elif self.mode == "deaf":
                self.hear.wait()
                self._hold(conn)
            else:
                self._hold(conn)
        except OSError:
            pass
        finally:
            self.closed.set()
            conn.close()

    def _hold(self, conn: ssl.SSLSocket) -> None:
        """Read until the client lets go; answer nothing."""
        while conn.recv(4096):
            pass

    def close(self) -> None:
        """Let go of the client, however it holds on (its reads get their end)."""
        self.stop.set()
        self.hear.set()
        if self.conn is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self.conn, socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(10)
