"""The cookies of an answer to the person's credential, by the corners of HTTP/1.1, asked
by a hostile agent in a real container.

The agent, as uid 1000 in the agent image, opens tunnels through the proxy on the bridge
gateway and asks a service the person's credential is injected for; the service answers a
login's session cookie each way HTTP/1.1 has to carry one: in a trailer of a chunked answer
(``Set-Cookie`` and the old ``Set-Cookie2``), in a head line no parser takes (its 502
quoted the line), in a 103 Early Hints before the answer, in an HTTP/1.0 answer, in a
redirect, named in capitals and folded over two lines. What must hold: the agent reads no
cookie of the person's, and each answer still arrives.
"""

from __future__ import annotations

import docker
import pytest
import trio
import trustme
from conftest import Proxy, override
from proxy_fakes import Seen, _Base
from test_proxy_container_smuggling import GATEWAY, in_container
from test_proxy_echo import ask, unchunked

from proxy.proxy_config import Upstream

pytestmark = pytest.mark.docker

COOKIE = b"sessionKey=sk-ant-sid01-PERSONS-SESSION"
ANSWERS = {
    "/trailer": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Set-Cookie\r\n\r\n"
                b"2\r\nok\r\n0\r\nSet-Cookie: %s\r\nset-cookie2: %s\r\n\r\n" % (COOKIE, COOKIE),
    "/spaced": b"HTTP/1.1 200 OK\r\nSet-Cookie : %s\r\nContent-Length: 2\r\n\r\nok" % COOKIE,
    "/early": b"HTTP/1.1 103 Early Hints\r\nSet-Cookie: %s\r\n\r\n"
              b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" % COOKIE,
    "/old": b"HTTP/1.0 200 OK\r\nSet-Cookie: %s\r\n\r\nok" % COOKIE,
    "/moved": b"HTTP/1.1 302 Found\r\nLocation: /next\r\nSet-Cookie: %s\r\n"
              b"Content-Length: 2\r\n\r\nok" % COOKIE,
    "/capitals": b"HTTP/1.1 200 OK\r\nSET-COOKIE: %s\r\nContent-Length: 2\r\n\r\nok" % COOKIE,
    "/folded": b"HTTP/1.1 200 OK\r\nSet-Cookie: theme=dark;\r\n %s\r\nContent-Length: 2\r\n\r\nok"
               % COOKIE,
}


class CookieCorners(_Base):
    """A service that answers, by path, a session cookie in one of :data:`ANSWERS`."""

    async def answer(self, stream: trio.abc.Stream, conn: object, seen: Seen) -> bool:
        await stream.send_all(ANSWERS[seen.target])
        return False


@pytest.fixture
def proxy_hosts() -> tuple[str, ...]:
    return ("127.0.0.1", GATEWAY)


async def test_no_corner_of_http_hands_the_agent_a_cookie_of_the_persons(
        engine: docker.DockerClient, proxy: Proxy, nursery: trio.Nursery,
        upstream_ca: trustme.CA) -> None:
    corners = CookieCorners(upstream_ca)
    await nursery.start(corners.serve)
    override(proxy, upstreams={"api.anthropic.com": Upstream(
        scheme="https", host="127.0.0.1", port=corners.port)})
    host = "api.anthropic.com"
    got = await in_container(proxy, proxy.add_session("cookie-corners"), host, [
        [ask("GET", path, host, "Connection: close")] for path in ANSWERS])
    assert [seen.header("authorization")[0].startswith("Bearer sk-ant-oat01-")
            for seen in corners.seen] == [True] * len(ANSWERS)  # the person's went in
    for path, said in zip(ANSWERS, (str(t["got"]) for t in got), strict=True):
        assert "PERSONS-SESSION" not in said, f"{path}: the agent read {said!r}"
        if path == "/spaced":  # no parser takes the head: a 502 that quotes none of it
            assert said.startswith("HTTP/1.1 502 ") and "Set-Cookie" not in said, repr(said)
        else:
            assert unchunked(said).endswith("\r\n\r\nok"), f"{path}: {said!r}"
