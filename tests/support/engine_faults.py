"""A relay in front of the real engine's socket that fails the calls a test names.

Each rule matches the request line (``POST /v1.45/containers/<id>/start HTTP/1.1``) of a call
relayed to the engine (:class:`~tests.support.engine_relay.Relay`). A refused call never
reaches the engine and is answered with the error the rule names, as an engine that fails it
answers; a belied call is carried out by the engine, and its caller is told it failed (the
engine did it, but its answer was an error); a held call waits for the test's word before it
reaches the engine. Every other call is the real engine's.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from pathlib import Path

from tests.support.engine_relay import Relay

START = re.compile(rb"^POST /v[\d.]+/containers/[0-9a-f]+/start ")
REMOVE = re.compile(rb"^DELETE /v[\d.]+/containers/[0-9a-f]+")


def error(status: int, message: str) -> bytes:
    body = json.dumps({"message": message}).encode()
    return (f"HTTP/1.1 {status} Engine Fault\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class Faults(Relay):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.lock = threading.Lock()
        #: Calls answered with an error, never relayed: pattern -> the answer.
        self.refuse: dict[re.Pattern[bytes], bytes] = {}
        #: Calls relayed, whose answer is replaced: pattern -> the answer.
        self.belie: dict[re.Pattern[bytes], bytes] = {}
        #: The request lines refused or belied so far.
        self.failed: list[bytes] = []
        #: Calls held until :attr:`release` is set (:attr:`holding` is set when one is).
        self.hold: re.Pattern[bytes] | None = None
        self.holding, self.release = threading.Event(), threading.Event()
        self._belied: dict[socket.socket, bytes] = {}

    def _rule(self, rules: dict[re.Pattern[bytes], bytes], request: bytes) -> bytes | None:
        line = request.split(b"\r\n", 1)[0]
        with self.lock:
            found = next((a for p, a in rules.items() if p.match(line)), None)
            if found is not None:
                self.failed.append(line)
        return found

    def answered(self, client: socket.socket, request: bytes) -> bool:
        if self.hold is not None and self.hold.match(request):
            self.holding.set()
            self.release.wait()
        if (refused := self._rule(self.refuse, request)) is not None:
            client.sendall(refused)
            return True
        if (belied := self._rule(self.belie, request)) is not None:
            with self.lock:
                self._belied[client] = belied
        return False

    def answer(self, client: socket.socket, data: bytes) -> bytes:
        with self.lock:
            return self._belied.pop(client, data)
