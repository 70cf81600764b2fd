"""An upstream that sends the credential back, asked by a hostile agent in a real container.

The agent, as uid 1000 in the agent image, opens tunnels through the proxy on the bridge
gateway and asks services the person's GitHub token is injected for to echo the request:
in an answer header and its reason phrase, a byte at a time in a chunked body and in its
trailer, in a JSON echo,
Basic's base64 on ``github.com``, over a WebSocket after the handshake, a few bytes at a
time by ``Range``, in a head the proxy cannot parse (its error quotes it), and with
``TRACE``, the method whose answer is the request. What must
hold: the agent reads no real credential (the echo comes back masked, same length),
``TRACE`` never reaches the upstream, the audit line says what was masked and the session
carries an alert. Against a proxy that relays answers as they are, every echo hands the
agent the token.
"""

from __future__ import annotations

import base64

import docker
import pytest
import trio
from conftest import SECRETS, Proxy, route
from proxy_fakes import FakeUpstream
from test_proxy_container_smuggling import GATEWAY, in_container

from appliance.audit import parse_line
from proxy.controls import Controls

pytestmark = pytest.mark.docker

TOKEN = SECRETS["github_token"]
BASIC = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()


@pytest.fixture
def proxy_hosts() -> tuple[str, ...]:
    return ("127.0.0.1", GATEWAY)


def ask(method: str, path: str, host: str, *extra: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Authorization: Bearer placeholder",
             *extra, "", ""]
    return "\r\n".join(lines).encode()


def unchunked(answer: str) -> str:
    """The answer with a chunked body's chunks joined (the head as it came)."""
    head, _, body = answer.partition("\r\n\r\n")
    if "transfer-encoding: chunked" not in head.lower():
        return answer
    out = []
    while True:
        size, _, body = body.partition("\r\n")
        if not int(size, 16):
            return f"{head}\r\n\r\n{''.join(out)}"
        out.append(body[: int(size, 16)])
        body = body[int(size, 16) + 2:]


async def test_an_answer_never_brings_the_credential_back_to_the_agent(
    engine: docker.DockerClient, proxy: Proxy, fake: FakeUpstream
) -> None:
    route(proxy, fake.port, "api.github.com", "github.com")
    proxy.state.controls = Controls(proxy.store)  # with a store: alerts are written
    agent = proxy.add_session("echoer")
    api = [[ask("TRACE", "/", "api.github.com", "Max-Forwards: 0")]]
    api += [[ask("GET", path, "api.github.com")] for path in ("/echo-head", "/echo-split", "/x")]
    api += [[ask("GET", "/ws-echo", "api.github.com", "Connection: Upgrade",
                 "Upgrade: websocket", "Sec-WebSocket-Extensions: permessage-deflate")],
            [ask("GET", "/echo-range", "api.github.com", "Range: bytes=10-14")],
            [ask("GET", "/echo-broken", "api.github.com")]]
    got = await in_container(proxy, agent, "api.github.com", api)
    got += await in_container(proxy, agent, "github.com", [[ask("GET", "/x", "github.com")]])
    raw = [str(t["got"]) for t in got]
    trace, head, split, json_echo, ws, ranged, broken, basic = (unchunked(t) for t in raw)

    # The harm first: the agent read no real credential, in any form the proxy sent it.
    for text in (head, split, json_echo, trace, ws, ranged, broken, basic, *raw):
        assert TOKEN not in text and BASIC not in text
    # Each echo arrived, masked in place (the same length: the answer's framing held).
    assert f"x-echo: Bearer {'*' * len(TOKEN)}\r\n" in head
    assert head.startswith(f"HTTP/1.1 200 OK for Bearer {'*' * len(TOKEN)}\r\n")
    assert f'{{"seen": "Bearer {"*" * len(TOKEN)}"}}' in split
    assert f"\r\nx-echo-trailer: Bearer {'*' * len(TOKEN)}\r\n" in raw[2]  # and its trailer
    assert f'"Bearer {"*" * len(TOKEN)}"' in json_echo
    assert ws.startswith("HTTP/1.1 101 ") and f"handshake: Bearer {'*' * len(TOKEN)}\n" in ws
    # Compressed frames could not be read: the upgrade goes up without the extension.
    assert [s.header("sec-websocket-extensions") for s in fake.seen
            if s.target == "/ws-echo"] == [[]]
    assert f'"Basic {"*" * len(BASIC)}"' in basic
    # A range of the echo would be a few bytes of the token, too few to know: the proxy
    # asks for the whole answer (no Range goes up), and masks it.
    assert ranged.startswith("HTTP/1.1 200 ") and ranged.endswith(f"Bearer {'*' * len(TOKEN)}")
    assert [s.header("range") for s in fake.seen if s.target == "/echo-range"] == [[]]
    # A head no parser takes is a 502 that quotes none of it.
    assert broken.startswith("HTTP/1.1 502 ") and "no colon here" not in broken
    # The proxy did inject the token: the upstream saw it (the control).
    assert [s.header("authorization") for s in fake.seen if s.target == "/x"] == [
        [f"Bearer {TOKEN}"], [f"Basic {BASIC}"]]
    # TRACE went nowhere.
    assert trace.startswith("HTTP/1.1 403 ") and "CREDENTIAL_USE" in trace
    assert "TRACE" not in [s.method for s in fake.seen]
    # Then how it shows: each masked answer audited as such, and the session's alert (the
    # last one raised: the TRACE's came first).
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    noted = [(r.path, r.note) for r in records if r.note and "masked" in r.note]
    assert sorted(path for path, _ in noted) == [
        "/echo-head", "/echo-range", "/echo-split", "/ws-echo", "/x", "/x"]
    assert all("github_token back" in note for _, note in noted)
    with trio.fail_after(10):
        while (row := proxy.store.get_session(agent[0])) is None or not row.alert:
            await trio.sleep(0.05)
    assert "sent the credential back" in row.alert
