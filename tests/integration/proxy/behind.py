"""A web service on addresses this machine routes to a network namespace the test makes.

The namespace is joined to the host by a veth pair (``tests/support/netns.py``); it holds the
addresses on its loopback, and the host gets a route to exactly each of them through the
veth, so no packet leaves this machine. The service answers every GET with the same body
and prints each path it served, which :attr:`Served.paths` holds once it has stopped.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

import trio

from tests.support.netns import ip, peer_namespace

SERVER = r"""
import http.server, socket, sys
BODY = sys.argv[1].encode() + b"\n"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print(self.path, flush=True)
        self.send_response(200); self.send_header("content-length", str(len(BODY)))
        self.end_headers(); self.wfile.write(BODY)
    def log_message(self, *args): pass
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6  # dual stack: the IPv4 addresses too
server = S(("::", 80), H)
print("ready", flush=True)
server.serve_forever()
"""


def authority(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@contextmanager
def routed_addresses(addresses: Sequence[str], prefix: str, link: str) -> Iterator[str]:
    """A namespace holding ``addresses``, routed to from the host; its name."""
    link6 = f"fd5e:{secrets.token_hex(2)}:{secrets.token_hex(2)}::"
    with peer_namespace(prefix, link) as peer:
        ip("-6", "addr", "add", f"{link6}1/64", "dev", peer.host_if, "nodad")
        ip("-n", peer.namespace, "-6", "addr", "add", f"{link6}2/64", "dev", peer.peer_if,
           "nodad")
        ip("-n", peer.namespace, "-6", "route", "add", "default", "via", f"{link6}1")
        for address in addresses:
            ip("-n", peer.namespace, "addr", "add", address, "dev", "lo")
            # The routes go with the veth when the namespace is removed.
            if ":" in address:
                ip("-6", "route", "add", f"{address}/128", "via", f"{link6}2",
                   "dev", peer.host_if)
            else:
                ip("route", "add", f"{address}/32", "via", peer.peer_address,
                   "dev", peer.host_if)
        yield peer.namespace


@dataclass
class Served:
    """The paths the service served, in order (complete once it has stopped)."""

    paths: list[str] = field(default_factory=list)


@asynccontextmanager
async def service_at(addresses: Sequence[str], body: str, *, prefix: str,
                     link: str) -> AsyncIterator[Served]:
    """A service answering ``body`` on port 80 of every one of ``addresses``."""
    with routed_addresses(addresses, prefix, link) as namespace:
        service = await trio.lowlevel.open_process(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", SERVER, body],
            stdout=subprocess.PIPE)
        out, served = b"", Served()
        try:
            assert service.stdout is not None
            with trio.fail_after(60):
                while b"ready\n" not in out:
                    out += await service.stdout.receive_some(4096)
            yield served
        finally:
            service.kill()
            with trio.move_on_after(10):
                await service.wait()
            if service.stdout is not None:
                with trio.move_on_after(2):
                    while chunk := await service.stdout.receive_some(4096):
                        out += chunk
            served.paths[:] = out.decode().split()[1:]


async def host_gets(address: str, path: str) -> str:
    """What a GET from this machine (not through the proxy) reads from ``address``."""
    probe = await trio.to_thread.run_sync(lambda: subprocess.run(
        ["curl", "-sg", "--max-time", "10", f"http://{authority(address)}{path}"],
        capture_output=True, text=True, check=False))
    return probe.stdout
