"""No way home, kept current: an address this machine gains after the proxy started is refused.

A Docker network created while the proxy runs gives the host a new address (the network's
gateway), where host services may listen. The test makes the same change by hand, after
the proxy started: a veth pair whose host end gets an address in 198.18.0.0/15 (the
benchmarking range, never routed) and whose other end lives in a network namespace the
test creates. A service on the host's new address must be refused through the proxy; a
service on the namespace's address, which is not this machine's, is the positive control
and stays reachable. Both are removed afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator

import trio
from conftest import Proxy, override
from smuggle_fakes import RawTunnel

from appliance.audit import parse_line
from tests.support.netns import Peer, peer_namespace

PEER_SERVER = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"peer on the new network\n"
        self.send_response(200); self.send_header("content-length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
server = http.server.HTTPServer((sys.argv[1], 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


async def plain_get(proxy: Proxy, auth: tuple[str, str], authority: str) -> bytes:
    basic = base64.b64encode(":".join(auth).encode()).decode()
    stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    await stream.send_all(f"GET http://{authority}/ HTTP/1.1\r\nHost: {authority}\r\n"
                          f"Proxy-Authorization: Basic {basic}\r\nConnection: close\r\n\r\n"
                          .encode())
    got = b""
    while chunk := await stream.receive_some(65536):
        got += chunk
    await stream.aclose()
    return got


async def tunnel_get(proxy: Proxy, auth: tuple[str, str], address: str, port: int
                     ) -> tuple[int, str | None]:
    """A GET through a tunnel to ``address:port``: the status and the proxy's error type."""
    t = await RawTunnel.open(proxy.port, ":".join(auth), address, proxy.ca_path,
                             connect_port=port)
    await t.send(f"GET / HTTP/1.1\r\nHost: {address}:{port}\r\n\r\n".encode())
    status, headers, _, _ = await t.answer()
    await t.aclose()
    return status, headers.get("x-proxy-error-type")


@contextlib.asynccontextmanager
async def peer_server(net: Peer) -> AsyncIterator[int]:
    """A web server at the other end of ``net`` (in its namespace); its port."""
    peer = await trio.lowlevel.open_process(
        ["ip", "netns", "exec", net.namespace, sys.executable, "-c", PEER_SERVER,
         net.peer_address], stdout=subprocess.PIPE)
    try:
        assert peer.stdout is not None
        with trio.fail_after(20):
            port = int((await peer.stdout.receive_some(64)).strip())
        yield port
    finally:
        peer.kill()
        with trio.move_on_after(10):
            await peer.wait()


async def test_an_address_added_after_the_start_is_refused(
    proxy: Proxy, nursery: trio.Nursery
) -> None:
    override(proxy, deny_unlisted=False)  # every destination below is on this machine
    auth = proxy.add_session("home")
    with peer_namespace("clproxy", "clp") as net:  # the proxy is already running
        # The new network is one the person lets sessions reach: its private addresses
        # would be refused anyway. The host's own address on it stays refused.
        override(proxy, allow_networks=(ipaddress.ip_network(f"{net.peer_address}/30",
                                                             strict=False),))
        accepted: list[object] = []
        listeners = await trio.open_tcp_listeners(0, host=net.host_address)
        port = listeners[0].socket.getsockname()[1]

        async def count(stream: trio.SocketStream) -> None:
            accepted.append(stream)
            await stream.aclose()

        nursery.start_soon(trio.serve_listeners, count, listeners)
        async with peer_server(net) as peer_port:
            with trio.fail_after(20):
                # The host's new address: refused in plain HTTP and through a tunnel.
                got = await plain_get(proxy, auth, f"{net.host_address}:{port}")
                assert got.startswith(b"HTTP/1.1 403 "), got[:300]
                assert b"one of this machine's own addresses" in got
                assert await tunnel_get(proxy, auth, net.host_address, port) == (
                    403, "DESTINATION_FORBIDDEN")
                # The positive control: the same new network's other end is no home of ours.
                got = await plain_get(proxy, auth, f"{net.peer_address}:{peer_port}")
                assert got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"new network\n")
        for listener in listeners:
            await listener.aclose()
    assert accepted == []
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    assert [(r.status, r.decision, r.error) for r in records] == [
        (403, "denied", "DESTINATION_FORBIDDEN")] * 2 + [(200, "passed", None)]


async def refused_though_reachable(proxy: Proxy, auth: tuple[str, str], authority: str
                                   ) -> None:
    """The host itself reaches the container's listener at ``authority`` (the positive
    control), and the proxy refuses it as a container network of this machine."""
    with trio.fail_after(30):
        while True:
            probe = await trio.to_thread.run_sync(lambda: subprocess.run(
                ["curl", "-s", "-g", "--max-time", "2", f"http://{authority}/"],
                capture_output=True, text=True, check=False))
            if probe.stdout == "container peer\n":
                break
            await trio.sleep(0.1)
        got = await plain_get(proxy, auth, authority)
    assert got.startswith(b"HTTP/1.1 403 "), got[:300]
    assert b"container network of this machine" in got


PEER_NODE = ("require('http').createServer((q, s) => s.end('container peer\\n'))"
             ".listen(8080, '0.0.0.0')")


async def test_another_container_is_home_too(proxy: Proxy) -> None:
    """A container on this host's bridge (another session's, any local service) is refused
    through the proxy: the proxy must not be a way around the sessions' network."""
    import docker

    from tests.support.engine import AGENT_IMAGE, ensure_agent_image, ensure_engine

    engine = ensure_engine()
    ensure_agent_image()
    override(proxy, deny_unlisted=False)
    auth = proxy.add_session("neighbour")
    peer = engine.containers.run(AGENT_IMAGE, ["node", "-e", PEER_NODE], detach=True,
                                 labels={"clauderon.test": "proxy-home"})
    try:
        peer.reload()
        address = peer.attrs["NetworkSettings"]["IPAddress"]
        assert address
        await refused_though_reachable(proxy, auth, f"{address}:8080")
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            peer.remove(force=True)


PEER_NODE6 = ("require('http').createServer((q, s) => s.end('container peer\\n'))"
              ".listen(8080, '::')")


async def test_another_container_over_ipv6_is_home_too(proxy: Proxy) -> None:
    """A container on a bridge of this host with IPv6 (a Docker network made with
    ``--ipv6``) is refused through the proxy by its IPv6 address as by its IPv4 one."""
    import docker

    from tests.support.engine import AGENT_IMAGE, ensure_agent_image, ensure_engine

    engine = ensure_engine()
    ensure_agent_image()
    override(proxy, deny_unlisted=False)
    auth = proxy.add_session("neighbour6")
    subnet = f"fd42:{secrets.token_hex(2)}:{secrets.token_hex(2)}::/64"  # unique local
    network = engine.networks.create(
        f"clproxy6-{secrets.token_hex(3)}", driver="bridge", enable_ipv6=True,
        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)]),
        labels={"clauderon.test": "proxy-home"})
    try:
        peer = engine.containers.run(AGENT_IMAGE, ["node", "-e", PEER_NODE6], detach=True,
                                     network=network.name,
                                     labels={"clauderon.test": "proxy-home"})
        try:
            peer.reload()
            address = peer.attrs["NetworkSettings"]["Networks"][network.name][
                "GlobalIPv6Address"]
            assert address
            await refused_though_reachable(proxy, auth, f"[{address}]:8080")
        finally:
            with contextlib.suppress(docker.errors.NotFound):
                peer.remove(force=True)
    finally:
        network.remove()



async def test_a_cluster_network_proxy_toml_refuses_is_refused(proxy: Proxy) -> None:
    """On a Kubernetes cluster the proxy runs in a pod, which reaches the cluster's services
    and pods: addresses that are neither this machine's nor on a container bridge of it, and
    that each session's NetworkPolicy keeps from its agent. The other end of a new network
    stands in for such a service, in a range the proxy does not refuse as private (it is
    listed in ``allow_networks``, as a public range would pass): the proxy takes the agent
    there (the hole), until ``refuse_networks`` names that network; then it is refused in
    plain HTTP and through a tunnel, listed in both or not, and a network it does not name
    still passes."""
    override(proxy, deny_unlisted=False)
    auth = proxy.add_session("cluster")
    with peer_namespace("clproxy", "clp") as net:
        override(proxy, allow_networks=(ipaddress.ip_network(f"{net.peer_address}/30",
                                                             strict=False),))
        async with peer_server(net) as port:
            with trio.fail_after(20):
                where = f"{net.peer_address}:{port}"
                got = await plain_get(proxy, auth, where)
                assert got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"new network\n")
                elsewhere = ipaddress.ip_network("10.244.0.0/16")
                override(proxy, refuse_networks=(ipaddress.ip_network(f"{net.peer_address}/30",
                                                                      strict=False), elsewhere))
                got = await plain_get(proxy, auth, where)
                assert got.startswith(b"HTTP/1.1 403 "), got[:300]
                assert b"which proxy.toml refuse_networks names" in got
                assert b"new network" not in got
                assert await tunnel_get(proxy, auth, net.peer_address, port) == (
                    403, "DESTINATION_FORBIDDEN")
                override(proxy, refuse_networks=(elsewhere,))
                got = await plain_get(proxy, auth, where)
                assert got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"new network\n")


async def test_this_machine_spelt_in_6to4_or_teredo_is_refused(proxy: Proxy) -> None:
    """An IPv6 address that carries an IPv4 one (6to4's ``2002:7f00:1::``, Teredo's
    client) goes, through a gateway or a host that reads it, to that IPv4 address: here
    this machine. The proxy judges what it carries, and tries no connection."""
    override(proxy, deny_unlisted=False)
    auth = proxy.add_session("spelt")
    for literal in ("[2002:7f00:1::]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]"):
        got = await plain_get(proxy, auth, f"{literal}:{proxy.port}")
        assert got.startswith(b"HTTP/1.1 403 "), got[:300]
        assert b"127.0.0.1 is this machine" in got, got[:400]
