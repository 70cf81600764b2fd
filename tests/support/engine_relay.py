"""A relay in front of the real engine's socket that a test can take down and hold.

Clients connect to :attr:`Relay.path`; each connection is relayed to the engine's socket.
The test can hold the engine's answers (:attr:`Relay.answers`), learn when a request has
been relayed (:attr:`Relay.asked`), and take the engine away (:meth:`Relay.down`): the
relayed connections are closed, except the ones named, and new ones are closed as soon as
they are accepted, as a dying engine does.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ENGINE = "/var/run/docker.sock"


class Relay:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.answers = threading.Event()  # cleared: the engine's answers are held
        self.answers.set()
        self.asked = threading.Event()  # set when a request is relayed while answers wait
        self.asking: socket.socket | None = None  # the connection that asked then
        self.gate = 1  # requests are held until this many connections are open
        self._open: list[socket.socket] = []
        self._enough = threading.Condition()
        self._down = False
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(16)
        self._threads: list[threading.Thread] = []
        self._made: list[socket.socket] = []  # closed when the relay ends

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed: the relay ends
            if self._down:
                client.close()
                continue
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._made += [client, engine]
            engine.connect(ENGINE)
            with self._enough:
                self._open.append(client)
                self._enough.notify_all()
            self._spawn(self._pump, client, engine, True)
            self._spawn(self._pump, engine, client, False)

    def _pump(self, src: socket.socket, dst: socket.socket, asking: bool) -> None:
        try:
            while data := src.recv(65536):
                if asking:
                    with self._enough:
                        self._enough.wait_for(lambda: len(self._open) >= self.gate)
                    if not self.answers.is_set():
                        self.asking = src
                        self.asked.set()
                    if self.answered(src, data):
                        continue
                else:
                    self.answers.wait()
                    data = self.answer(dst, data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self._enough:
                if src in self._open:
                    self._open.remove(src)

    def answered(self, client: socket.socket, request: bytes) -> bool:
        """Whether the relay answered ``request`` itself (it then never reaches the
        engine); a rig that fakes the engine's faults says so."""
        return False

    def answer(self, client: socket.socket, data: bytes) -> bytes:
        """What ``client`` gets of the engine's answer ``data`` (a rig may replace it)."""
        return data

    def down(self, *, but: socket.socket | None = None) -> None:
        """The engine gone: every relayed connection closed (``but`` the one named), and
        each new one closed as soon as it is accepted."""
        self._down = True
        with self._enough:
            doomed = [s for s in self._open if s is not but]
        for s in doomed:
            s.shutdown(socket.SHUT_RDWR)

    def own(self) -> set[str]:
        """The sockets the relay has open (it closes them when it ends), as :func:`sockets`
        names them."""
        return {f"socket:[{os.fstat(s.fileno()).st_ino}]"
                for s in [self._listener, *self._made] if s.fileno() >= 0}

    def up(self) -> None:
        self._down = False

    @contextmanager
    def running(self) -> Iterator[Relay]:
        self._spawn(self._accept)
        try:
            yield self
        finally:
            self.answers.set()
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
            with self._enough:
                self.gate = 0
                self._enough.notify_all()
                doomed = list(self._open)
            for s in doomed:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            for thread in self._threads:
                thread.join()
            for s in [self._listener, *self._made]:
                s.close()


def sockets() -> set[str]:
    """The sockets this process has open, by inode (a number a closed one's descriptor is
    given again is another socket)."""
    found = set()
    for fd in Path("/proc/self/fd").iterdir():
        with suppress(OSError):  # the listing's own descriptor, closed meanwhile
            name = fd.readlink().name
            if name.startswith("socket:"):
                found.add(name)
    return found
