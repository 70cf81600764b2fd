"""The smuggler inside a real container: two sessions, one Content-Length-framing upstream.

Session A runs, as uid 1000 in the agent image, a Node script that opens CONNECT tunnels to
``api.github.com`` through the proxy on the bridge gateway (``host.docker.internal``) and
writes raw request smuggling: a request with both ``Transfer-Encoding`` and
``Content-Length`` whose chunk is, to a Content-Length-framing upstream, a second request --
once a complete one (whose answer would be queued for the next request on a shared
connection), once the head of an echo whose body would swallow the next request, injected
credential included. Session B, in another container, then asks ``api.openai.com`` (the
same upstream behind it, a different credential) for its own answer; A asks once more.

What must hold: neither session ever reads a real credential, B reads only answers to its
own requests, A's smuggling is refused (400, audited) and none of its bytes reach the
upstream. Against a proxy that forwards both framing headers over a pool shared by all
sessions, the first two fail.
"""

from __future__ import annotations

import base64
import json
import os

import docker
import pytest
import trio
import trustme
from agent_curl import as_agent
from conftest import SECRETS, Proxy, serve_as
from smuggle_fakes import ClFramingUpstream
from test_proxy_smuggling import get, smuggle

from appliance.audit import parse_line

pytestmark = pytest.mark.docker

GATEWAY = "172.17.0.1"
REAL = list(SECRETS.values())

#: Opens one tunnel per plan entry and writes its pieces, reading after each until the
#: proxy closes or falls quiet for the piece's time; prints what every tunnel received.
ATTACKER = r"""
const net = require('net'), tls = require('tls');
const {PROXY_PORT, AUTH, CONNECT_HOST, CA_PEM, PLAN} = process.env;
const plan = JSON.parse(PLAN);
function readQuiet(sock, state, quietMs) {
  return new Promise((resolve) => {
    let timer = setTimeout(resolve, quietMs);
    const onData = (d) => { state.got += d.toString('latin1');
                            clearTimeout(timer); timer = setTimeout(resolve, quietMs); };
    sock.on('data', onData);
    sock.once('close', () => { state.closed = true; clearTimeout(timer); resolve(); });
    setTimeout(() => {}, 0);
  }).then(() => sock.removeAllListeners('data'));
}
function tunnel() {
  return new Promise((resolve, reject) => {
    const raw = net.connect(Number(PROXY_PORT), 'host.docker.internal', () => {
      raw.write(`CONNECT ${CONNECT_HOST}:443 HTTP/1.1\r\nHost: ${CONNECT_HOST}:443\r\n` +
                `Proxy-Authorization: Basic ${Buffer.from(AUTH).toString('base64')}\r\n\r\n`);
    });
    raw.once('data', (head) => {
      if (!/^HTTP\/1\.1 200/.test(head.toString())) return reject(new Error(head.toString()));
      const sock = tls.connect({socket: raw, servername: CONNECT_HOST, ca: CA_PEM},
                               () => resolve(sock));
      sock.on('error', () => {});
    });
    raw.on('error', reject);
  });
}
(async () => {
  const out = [];
  for (const pieces of plan) {
    const sock = await tunnel();
    const state = {got: '', closed: false};
    for (const [piece, quietMs] of pieces) {
      if (state.closed) break;
      sock.write(Buffer.from(piece, 'base64'));
      await readQuiet(sock, state, quietMs);
    }
    sock.destroy();
    out.push(state);
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(String(e)); process.exit(2); });
"""


@pytest.fixture
def proxy_hosts() -> tuple[str, ...]:
    return ("127.0.0.1", GATEWAY)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def in_container(proxy: Proxy, auth: tuple[str, str], host: str,
                       plan: list[list[bytes | tuple[bytes, int]]]) -> list[dict[str, object]]:
    """Run the attacker script as uid 1000; each piece is read after for 2.5 s of quiet
    unless it names its own time (ms)."""
    steps = [[[b64(p[0]), p[1]] if isinstance(p, tuple) else [b64(p), 2500] for p in pieces]
             for pieces in plan]
    env = {"PROXY_PORT": str(proxy.port), "AUTH": ":".join(auth), "CONNECT_HOST": host,
           "CA_PEM": proxy.ca_path.read_text(), "PLAN": json.dumps(steps)}
    cmd = as_agent("proxy-smuggling", env, "node", "-e", ATTACKER)
    with trio.fail_after(120):
        done = await trio.run_process(cmd, env={**os.environ, **env}, capture_stdout=True,
                                      capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    result: list[dict[str, object]] = json.loads(done.stdout)
    return result


async def test_smuggling_from_a_container_is_refused_and_no_session_reads_another(
    engine: docker.DockerClient, proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA
) -> None:
    upstream = await serve_as(proxy, nursery, ClFramingUpstream(upstream_ca),
                              "api.github.com", "api.openai.com")
    a, b = proxy.add_session("smuggler"), proxy.add_session("victim")
    gh = "api.github.com"
    planted = b"GET /planted-by-a HTTP/1.1\r\nHost: api.github.com\r\nContent-Length: 7\r\n\r\n"
    swallow = b"POST /echo HTTP/1.1\r\nHost: api.github.com\r\nContent-Length: 900\r\n\r\n"

    # The echo answers a short body after 5 s of silence: wait for it after the next request.
    first = await in_container(proxy, a, gh, [
        [smuggle(swallow), (get("/second", gh, "placeholder-A"), 8000)],
        [smuggle(planted)]])
    victim = await in_container(proxy, b, "api.openai.com", [
        [get("/victim", "api.openai.com", "placeholder-B")]])
    last = await in_container(proxy, a, gh, [[get("/after", gh, "placeholder-A")]])

    received = [str(t["got"]) for t in (*first, *victim, *last)]
    # The harm first: no real credential read by anyone, no answer read by the wrong session.
    assert not any(secret in text for secret in REAL for text in received)
    assert '"target": "/victim"' in received[2] and "planted" not in received[2]
    assert '"target": "/after"' in received[3]
    # Then how: A's smuggling was refused and closed, and none of it reached the upstream.
    for refused in (received[0], received[1]):
        assert refused.startswith("HTTP/1.1 400 ") and "AMBIGUOUS_FRAMING" in refused
    assert first[0]["closed"] and first[1]["closed"]
    assert [(s.target, s.body) for s in upstream.seen] == [("/victim", b""), ("/after", b"")]
    assert not any(b"planted" in data or b"/echo" in data or b"innocent" in data
                   for data in upstream.received.values())
    assert upstream.seen[0].conn != upstream.seen[1].conn  # B's connection is B's alone
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    assert [(r.session, r.error) for r in records if r.status == 400] == [
        (a[0], "AMBIGUOUS_FRAMING")] * 2
    assert [(r.session, r.path, r.credential) for r in records if r.status == 200] == [
        (b[0], "/victim", "openai_api_key"), (a[0], "/after", "github_token")]
