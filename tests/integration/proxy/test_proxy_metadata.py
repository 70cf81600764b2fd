"""No way to the host's cloud identity: metadata services off link-local addresses.

A cloud host's metadata service answers the host's own identity (its role's credentials)
to anything that asks from the host. At 169.254.169.254 it is link-local, which the proxy
refuses; but the same services also answer at addresses that are not: AWS's over IPv6
(``fd00:ec2::254``, and EKS Pod Identity's ``fd00:ec2::23``), Google's over IPv6
(``fd20:ce::254``), Alibaba's (``100.100.100.200``) and Azure's WireServer
(``168.63.129.16``). A hostile agent asks the proxy for them.

The test stands the services up on this machine: a network namespace it creates holds
those addresses, joined to the host by a veth pair on a /30 of 198.18.0.0/15 (and a
unique local /64), with host routes to exactly those addresses through it, so no packet
leaves the machine. The host itself reaches every one (the positive control); through the
proxy each is refused, and the fake metadata service sees no request from it.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import trio
from conftest import Proxy, override
from smuggle_fakes import RawTunnel
from test_proxy_home import plain_get

from appliance.audit import parse_line
from tests.support.netns import ip, peer_namespace

V4 = ("100.100.100.200", "168.63.129.16")
V6 = ("fd00:ec2::254", "fd00:ec2::23", "fd20:ce::254")

#: A metadata service: answers a "role credential" to a GET and prints each path it served.
METADATA_SERVER = r"""
import http.server, socket, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print(self.path, flush=True)
        body = b'{"AccessKeyId": "ASIA-HOST-ROLE", "SecretAccessKey": "host-secret"}\n'
        self.send_response(200); self.send_header("content-length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
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
def metadata_addresses() -> Iterator[str]:
    """A namespace holding the metadata addresses, routed to from the host; its name."""
    link6 = f"fd5e:{secrets.token_hex(2)}:{secrets.token_hex(2)}::"
    with peer_namespace("clmeta", "clm") as peer:
        ip("-6", "addr", "add", f"{link6}1/64", "dev", peer.host_if, "nodad")
        ip("-n", peer.namespace, "-6", "addr", "add", f"{link6}2/64", "dev", peer.peer_if,
           "nodad")
        for address in (*V4, *V6):
            ip("-n", peer.namespace, "addr", "add", address, "dev", "lo")
        ip("-n", peer.namespace, "-6", "route", "add", "default", "via", f"{link6}1")
        # Only these addresses, only through the veth: nothing leaves this machine. The
        # routes go with the veth when the namespace is removed.
        for address in V4:
            ip("route", "add", f"{address}/32", "via", peer.peer_address, "dev", peer.host_if)
        for address in V6:
            ip("-6", "route", "add", f"{address}/128", "via", f"{link6}2", "dev", peer.host_if)
        yield peer.namespace


async def test_a_cloud_metadata_service_is_home_too(proxy: Proxy) -> None:
    override(proxy, deny_unlisted=False)  # the destinations are the point
    auth = proxy.add_session("imds")
    with metadata_addresses() as namespace:
        service = await trio.lowlevel.open_process(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", METADATA_SERVER],
            stdout=subprocess.PIPE)
        served = b""
        try:
            assert service.stdout is not None
            with trio.fail_after(60):
                while b"ready\n" not in served:
                    served += await service.stdout.receive_some(4096)
                # The positive control: from the host, every address answers.
                for address in (*V4, *V6):
                    probe = await trio.to_thread.run_sync(lambda a=address: subprocess.run(
                        ["curl", "-sg", "--max-time", "10",
                         f"http://{authority(a)}/host-reaches-it"],
                        capture_output=True, text=True, check=False))
                    assert "ASIA-HOST-ROLE" in probe.stdout, (address, probe)
                # The agent asks the proxy, in plain HTTP and through a tunnel.
                answers = []
                for address in (*V4, *V6):
                    got = await plain_get(proxy, auth, authority(address))
                    answers.append((address, got.split(b"\r\n", 1)[0], got))
                t = await RawTunnel.open(proxy.port, ":".join(auth), V4[0], proxy.ca_path,
                                         connect_port=80)
                await t.send(f"GET /through-a-tunnel HTTP/1.1\r\nHost: {V4[0]}:80\r\n\r\n"
                             .encode())
                status, headers, _, _ = await t.answer()
                await t.aclose()
            for address, line, got in answers:
                assert b"ASIA-HOST-ROLE" not in got, (address, got)
                assert line == b"HTTP/1.1 403 ", (address, got[:400])
                assert b"cloud metadata service" in got, (address, got[:400])
            assert (status, headers["x-proxy-error-type"]) == (403, "DESTINATION_FORBIDDEN")
        finally:
            service.kill()
            with trio.move_on_after(10):
                await service.wait()
            if service.stdout is not None:
                with trio.move_on_after(2):
                    while chunk := await service.stdout.receive_some(4096):
                        served += chunk
    # The service was asked by the host only.
    assert served.decode().split() == ["ready", *["/host-reaches-it"] * len(V4 + V6)]
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    assert [(r.session, r.status, r.error) for r in records] == [
        (auth[0], 403, "DESTINATION_FORBIDDEN")] * (len(V4 + V6) + 1)
