"""A one-time code minted with the person's credential, sent on to the agent's own host,
asked for by a hostile agent in a real container (curl as uid 1000 in the agent image).

The agent asks a service the person's credential is injected for to grant a client of its
own (an OAuth authorize, a login ticket): the service answers with a redirect to that
client's address, the code or token in its query or fragment, and the agent's curl read it:
exchanged at the token endpoint, or used as it is, from anywhere, it is a credential of the
person's account in the agent's hands. What must hold: no such code reaches the agent, in
any field that sends a client on, however its URL is spelt, and the answer's body (which
quotes the URL) neither; a redirect on the same host, to another the proxy injects for, or
without a code arrives as it came. An upgrade's answer with one is refused too (the proxy
failed on it, and the agent got no answer at all).
"""

from __future__ import annotations

import docker
import h11
import pytest
import trio
import trustme
from agent_curl import GATEWAY, agent_curl
from conftest import Proxy, serve_as
from proxy_fakes import Seen, _Base

pytestmark = pytest.mark.docker

CODE = "PERSONS-ONE-TIME-CODE"
AWAY = "https://agents-app.example/cb"
#: path -> the field that sends the client on, and its value; each refused.
MINTED = {
    "/grant": ("location", f"{AWAY}?code={CODE}&state=s"),
    "/implicit": ("location", f"{AWAY}#state=s&access_token={CODE}"),
    "/spa": ("location", f"{AWAY}#/done?id_token={CODE}"),
    "/ticket": ("refresh", f"0; url={AWAY}?ticket={CODE}"),
    # A browser reads a Refresh without "url=", after a comma, with a fractional delay,
    # and an unquoted URL past a quote.
    "/refresh-bare": ("refresh", f"0;{AWAY}?code={CODE}"),
    "/refresh-comma": ("refresh", f"0,url={AWAY}?code={CODE}"),
    "/refresh-fraction": ("refresh", f"0.5; url={AWAY}?code={CODE}"),
    "/refresh-quote": ("refresh", f'0; url={AWAY}?a="&code={CODE}'),
    "/escaped-name": ("location", f"{AWAY}?c%6fde={CODE}"),
    "/schemeless": ("location", f"//agents-app.example/cb?code={CODE}"),
    "/backslashes": ("location", f"https:\\\\agents-app.example\\cb?accessToken={CODE}"),
    "/one-slash": ("location", f"https:/agents-app.example/cb?code={CODE}"),
    "/content-location": ("content-location", f"{AWAY}?token={CODE}"),
}
#: path -> a redirect that arrives as it came.
KEPT = {
    "/same-host": ("location", "/next?code=SAME-HOST-CODE"),
    "/injected-host": ("location", "https://api.github.com/next?token=GITHUB-CODE"),
    "/no-code": ("location", f"{AWAY}?page=2&error_code=none"),
}


class Redirects(_Base):
    """A service that answers each path with its redirect, and a body that quotes it."""

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        name, value = {**MINTED, **KEPT}[seen.target]
        await self.reply(stream, conn, 302, f"Found. Redirecting to {value}".encode(),
                         ctype="text/plain", extra=[(name, value)])
        return True


@pytest.fixture
def proxy_hosts() -> tuple[str, ...]:
    return ("127.0.0.1", GATEWAY)


async def test_no_redirect_hands_the_agent_a_code_minted_with_the_persons_credential(
        engine: docker.DockerClient, proxy: Proxy, nursery: trio.Nursery,
        upstream_ca: trustme.CA) -> None:
    service = await serve_as(proxy, nursery, Redirects(upstream_ca), "api.github.com")
    paths = [*MINTED, *KEPT]
    said = await agent_curl(proxy, proxy.add_session("code-grabber"), "-H",
                            "Authorization: Bearer placeholder", "-w", "<<END>>",
                            *[f"https://api.github.com{path}" for path in paths])
    got = dict(zip(paths, said.split("<<END>>"), strict=False))
    assert [seen.header("authorization")[0].startswith("Bearer ghp_") for seen in service.seen
            ] == [True] * len(paths)  # the person's went in
    for path in MINTED:
        assert CODE not in got[path], f"{path}: the agent read {got[path]!r}"
        assert got[path].startswith("HTTP/1.1 502 ") and "one-time code" in got[path], \
            f"{path}: {got[path]!r}"
    for path, (name, value) in KEPT.items():
        assert got[path].startswith("HTTP/1.1 302 ") and f"{name}: {value}" in got[path], \
            f"{path}: {got[path]!r}"


class UpgradeAway(_Base):
    """A service that takes the WebSocket upgrade with a Location carrying a code away."""

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        await self.send(stream, conn, h11.InformationalResponse(status_code=101, headers=[
            ("connection", "upgrade"), ("upgrade", "websocket"),
            ("location", f"{AWAY}?code={CODE}")]))
        with trio.move_on_after(30):
            await stream.receive_some(65536)
        return False


async def test_an_upgrade_that_carries_a_code_away_is_a_502_that_says_why(
        engine: docker.DockerClient, proxy: Proxy, nursery: trio.Nursery,
        upstream_ca: trustme.CA) -> None:
    await serve_as(proxy, nursery, UpgradeAway(upstream_ca), "api.github.com")
    said = await agent_curl(proxy, proxy.add_session("upgrade-grabber"), "-H",
                            "Authorization: Bearer placeholder", "-H", "Connection: Upgrade",
                            "-H", "Upgrade: websocket", "https://api.github.com/socket",
                            max_time=20)
    assert CODE not in said
    assert said.startswith("HTTP/1.1 502 ") and "one-time code" in said, said
