"""Stand-ins for the world outside a session container, all on this machine.

:func:`internet` is "the internet": a network namespace the test creates, joined to the host
by a veth pair on a private /30 of 198.18.0.0/15 (the benchmarking range, never routed
beyond this machine here), with an HTTP listener inside. The host routes to it like to any
other network, and an unconfined container reaches it through the engine's NAT: what a
session container must not be able to do.

:class:`Listener` is a TCP or UDP listener on one of the host's own addresses that counts
who reached it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_SERVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from the internet\n"
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print("GET", self.path, self.client_address[0], flush=True)

    def log_message(self, *args):
        pass

ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
"""


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True,
                          timeout=10).stdout


@dataclass
class Internet:
    namespace: str
    address: str  # the listener's, inside the namespace
    port: int
    host_side: str  # the host's end of the veth (its address: the namespace's gateway)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}/"


def free_slash30() -> ipaddress.IPv4Network:
    """A /30 of 198.18.0.0/15 that overlaps none of this machine's addresses."""
    used = [ipaddress.ip_interface(a["local"] + "/" + str(a["prefixlen"])).network
            for link in json.loads(ip("-j", "-4", "addr"))
            for a in link.get("addr_info", [])]
    for _ in range(100):
        net = ipaddress.ip_network(
            f"198.{random.choice((18, 19))}.{random.randrange(256)}.{random.randrange(64) * 4}/30")
        if not any(net.overlaps(u) for u in used):
            return net
    raise AssertionError("no free /30 in 198.18.0.0/15")


@dataclass(frozen=True)
class Peer:
    """A network namespace joined to the host by a veth pair on a /30 of its own."""

    namespace: str
    host_if: str  # the host's end of the veth
    peer_if: str  # the namespace's end
    host_address: str  # the host's address on the /30: the namespace's gateway
    peer_address: str  # the namespace's address


@contextmanager
def peer_namespace(prefix: str, link: str) -> Iterator[Peer]:
    """A namespace named ``prefix-<tag>`` and a veth pair ``<link><tag>h``/``n``: the
    namespace's loopback and end up, its default route through the host. Both are removed
    afterwards, and the routes through them with them."""
    tag = secrets.token_hex(3)
    host_address, peer_address = (str(h) for h in free_slash30().hosts())
    peer = Peer(namespace=f"{prefix}-{tag}", host_if=f"{link}{tag}h", peer_if=f"{link}{tag}n",
                host_address=host_address, peer_address=peer_address)
    ip("netns", "add", peer.namespace)
    try:
        ip("link", "add", peer.host_if, "type", "veth", "peer", "name", peer.peer_if)
        try:
            ip("link", "set", peer.peer_if, "netns", peer.namespace)
            ip("addr", "add", f"{host_address}/30", "dev", peer.host_if)
            ip("link", "set", peer.host_if, "up")
            for args in (("addr", "add", f"{peer_address}/30", "dev", peer.peer_if),
                         ("link", "set", peer.peer_if, "up"), ("link", "set", "lo", "up"),
                         ("route", "add", "default", "via", host_address)):
                ip("-n", peer.namespace, *args)
            yield peer
        finally:
            subprocess.run(["ip", "link", "del", peer.host_if], capture_output=True, timeout=10)
    finally:
        subprocess.run(["ip", "netns", "del", peer.namespace], capture_output=True, timeout=10)


@contextmanager
def internet(port: int = 8080) -> Iterator[Internet]:
    server: subprocess.Popen[bytes] | None = None
    with peer_namespace("clauderon-inet", "cin") as peer:
        address = peer.peer_address
        try:
            server = subprocess.Popen(
                ["ip", "netns", "exec", peer.namespace, sys.executable, "-c", _SERVER,
                 address, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            world = Internet(namespace=peer.namespace, address=address, port=port,
                             host_side=peer.host_address)
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection((address, port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise AssertionError("the stand-in internet did not come up") from None
                    time.sleep(0.05)
            yield world
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=10)


@dataclass
class Listener:
    """Accepts (TCP) or receives (UDP) on ``address``:``port``; ``peers`` is who came."""

    address: str
    udp: bool = False
    port: int = 0
    peers: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        kind = socket.SOCK_DGRAM if self.udp else socket.SOCK_STREAM
        self._sock = socket.socket(socket.AF_INET, kind)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.address, self.port))
        self.port = self._sock.getsockname()[1]
        if not self.udp:
            self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.udp:
                    _, peer = self._sock.recvfrom(2048)
                else:
                    conn, peer = self._sock.accept()
            except OSError:
                continue
            # Who came is noted before the greeting: a prober that hangs up at once
            # makes the send fail, and it still came.
            self.peers.append(peer[0])
            if not self.udp:
                with contextlib.suppress(OSError):
                    conn.sendall(b"host service\n")
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
