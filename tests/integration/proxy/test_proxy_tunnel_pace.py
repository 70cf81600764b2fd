"""One agent's tunnels cannot hold up another session's: new tunnels come at a pace.

Each tunnel costs the proxy a TLS handshake (and, for a name it has not seen, a leaf
certificate: a key generated and signed), arithmetic on the one event loop every session
shares. An agent opening tunnels to fresh names as fast as it can (its container may hold
hundreds of connections, and closes and reopens them) kept the loop busy: measured on this
machine, another session's requests went from about 5 ms to about 40 ms with 4 such
loops in the agent and to about 190 ms with 32; at ten tunnels a second each session, its
loops wait for their own turn and the other session's requests stay near 5 ms.

Here the pace is one tunnel an hour with four at once: the hostile agent's four tunnels
open, its fifth is refused with 429 and ``Retry-After`` (held instead when it would be on
time within ``pace_hold_seconds``), and another session's tunnel is served as if nothing
happened.
"""

from __future__ import annotations

import base64

import trio
from conftest import Proxy, override
from proxy_fakes import FakeUpstream, Tunnel, read_head

from appliance.audit import parse_line
from proxy.pace import Pace


async def connect(proxy: Proxy, auth: tuple[str, str], host: str
                  ) -> tuple[trio.SocketStream, bytes]:
    """A CONNECT and the proxy's answer head; the stream stays open (a tunnel held)."""
    stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    basic = base64.b64encode(":".join(auth).encode()).decode()
    await stream.send_all(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n"
                          f"Proxy-Authorization: Basic {basic}\r\n\r\n".encode())
    return stream, await read_head(stream, 1)


async def test_a_session_opening_tunnels_past_its_pace_is_held_back_alone(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    override(proxy, deny_unlisted=False, tunnel_pace=Pace(1, 4))  # fresh names go on
    flood, neighbour = proxy.add_session("flood"), proxy.add_session("neighbour")
    held: list[trio.SocketStream] = []
    with trio.fail_after(60):
        for i in range(4):
            stream, head = await connect(proxy, flood, f"fresh-{i}.example")
            held.append(stream)
            assert head.startswith(b"HTTP/1.1 200 "), head
        stream, head = await connect(proxy, flood, "fresh-4.example")
        await stream.aclose()
        t = await Tunnel.open(proxy.port, ":".join(neighbour), "api.github.com", proxy.ca_path)
        status, _ = await t.request("GET", "/served", "api.github.com")
        await t.aclose()
        for stream in held:
            await stream.aclose()
    assert head.startswith(b"HTTP/1.1 429 "), head
    assert b"x-proxy-error-type: TUNNEL_PACE" in head and b"retry-after: " in head
    assert status == 200
    assert [s.target for s in fake.seen] == ["/served"]
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    refused = [(r.session, r.host, r.status, r.error) for r in records if r.status == 429]
    assert refused == [(flood[0], "fresh-4.example", 429, "TUNNEL_PACE")]
