"""A WebSocket that sends the credential back in pieces or compressed, asked from a container.

The agent, as uid 1000 in the agent image, opens WebSockets through the proxy to a service
its GitHub token is injected for, which reports the handshake's ``Authorization`` in a
text message: once split over two frames with a ping between them (no run of bytes on the
wire holds the token; the message a WebSocket client puts together does), once in one
frame whose second half comes half a second after the first (longer than the proxy held
an end that may begin the token, before it let it go), once compressed
with permessage-deflate, which the agent's client offered and the service names in its 101
all the same (the proxy took the offer out of what went up). What must hold: the message
the agent puts together holds no real credential (masked, same length), a compressed
message never reaches it, and the audit line says what was masked. Against a proxy that
masks the raw bytes after the 101, each message hands the agent the token.
"""

from __future__ import annotations

import zlib

import docker
import pytest
from conftest import SECRETS, Proxy, route
from proxy_fakes import FakeUpstream
from test_proxy_container_smuggling import in_container
from test_proxy_echo import ask, proxy_hosts  # noqa: F401 - the bridge gateway fixture

from appliance.audit import parse_line

pytestmark = pytest.mark.docker

TOKEN = SECRETS["github_token"]


def messages(answer: str) -> list[bytes]:
    """The data messages a WebSocket client reads after the 101 (frames joined, control
    frames left out, permessage-deflate inflated), as the agent's client would."""
    data = answer.partition("\r\n\r\n")[2].encode("latin-1")
    out: list[bytes] = []
    parts: list[bytes] = []
    compressed = False
    while len(data) >= 2:
        fin, rsv1, opcode, size = data[0] & 0x80, data[0] & 0x40, data[0] & 0x0F, data[1]
        start = 2
        if size == 126:
            size, start = int.from_bytes(data[2:4], "big"), 4
        payload, data = data[start:start + size], data[start + size:]
        if opcode >= 0x8:
            continue
        compressed = compressed or (opcode != 0 and bool(rsv1))
        parts.append(payload)
        if fin:
            whole = b"".join(parts)
            if compressed:
                whole = zlib.decompressobj(wbits=-15).decompress(whole + b"\x00\x00\xff\xff")
            out.append(whole)
            parts, compressed = [], False
    return out


async def test_a_websocket_message_never_brings_the_credential_back(
    engine: docker.DockerClient, proxy: Proxy, fake: FakeUpstream
) -> None:
    route(proxy, fake.port, "api.github.com")
    agent = proxy.add_session("ws-echoer")
    upgrade = ("Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
               "Sec-WebSocket-Extensions: permessage-deflate")
    got = await in_container(proxy, agent, "api.github.com", [
        [ask("GET", "/ws-fragments", "api.github.com", *upgrade)],
        [ask("GET", "/ws-slow", "api.github.com", *upgrade)],
        [ask("GET", "/ws-deflate", "api.github.com", *upgrade)]])
    fragments, slow, deflated = (str(t["got"]) for t in got)
    read = messages(fragments) + messages(slow) + messages(deflated)

    # The harm first: no message the agent's client puts together holds the token.
    for message in read:
        assert TOKEN.encode() not in message, message
    # The split messages arrived, masked in place; the compressed one never did.
    for answer in (fragments, slow):
        assert answer.startswith("HTTP/1.1 101 ")
        assert messages(answer) == [f"handshake: Bearer {'*' * len(TOKEN)}\n".encode()]
    assert deflated.startswith("HTTP/1.1 101 ") and messages(deflated) == []
    # The proxy did inject the token: the upstream saw it (the control).
    assert [s.header("authorization") for s in fake.seen] == [[f"Bearer {TOKEN}"]] * 3
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    notes = {r.path: r.note or "" for r in records}
    assert "github_token back" in notes["/ws-fragments"], notes
    assert "github_token back" in notes["/ws-slow"], notes
