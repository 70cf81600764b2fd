"""No way into the person's own networks: a private address is refused through the proxy.

The appliance runs on a workstation or a home server, on the person's LAN and tailnet. The
agent asks the proxy for what lives there: the router's admin page, a NAS, another
machine's development server or unauthenticated Docker API, a tailnet peer (Tailscale's
100.64.0.0/10 and fd7a:115c:a1e0::/48). None is this machine, a container bridge of it or a
metadata service; each was reachable. A private address is refused unless ``proxy.toml``
``allow_networks`` lists it (a registry or git server of the person's own).

The test stands such a network up on this machine (``behind.py``): a namespace it creates
holds a LAN address, a tailnet address and a unique local IPv6 address, with host routes to
exactly them, so no packet leaves the machine. The host reaches every one (the positive
control); through the proxy each is refused and the service sees nothing, until
``allow_networks`` lists one, which alone then answers.
"""

from __future__ import annotations

import ipaddress
import json
import secrets

import trio
from behind import authority, host_gets, service_at
from conftest import Proxy, override
from test_proxy_home import plain_get, tunnel_get

from appliance.audit import parse_line
from appliance.tokens import APPLIANCE_ID, appliance_token
from proxy.directory import StoreDirectory, appliance_identity
from tests.support.netns import ip

BODY = "router admin: wifi password hunter2"


def unused(candidates: list[str]) -> str:
    """The first of ``candidates`` in no network this machine has an address on."""
    used = [ipaddress.ip_interface(f'{a["local"]}/{a["prefixlen"]}').network
            for link in json.loads(ip("-j", "addr")) for a in link.get("addr_info", [])]
    for candidate in candidates:
        address = ipaddress.ip_address(candidate)
        if not any(address in network for network in used):
            return candidate
    raise AssertionError(f"every candidate is on a network of this machine: {candidates}")


def private_addresses() -> tuple[str, ...]:
    """A LAN address, a tailnet peer's and a unique local IPv6 one (Tailscale's prefix)."""
    r = secrets.randbelow
    return (unused([f"192.168.{200 + r(50)}.{1 + r(250)}" for _ in range(20)]),
            unused([f"100.{64 + r(64)}.{r(256)}.{1 + r(250)}" for _ in range(20)]),
            f"fd7a:115c:a1e0:{secrets.token_hex(2)}::{1 + r(250):x}")


async def test_the_persons_lan_and_tailnet_are_out_of_reach(proxy: Proxy) -> None:
    override(proxy, deny_unlisted=False)  # the destinations are the point
    auth = proxy.add_session("lan")
    addresses = private_addresses()
    async with service_at(addresses, BODY, prefix="cllan", link="cll") as served:
        with trio.fail_after(60):
            # The positive control: from the host, every address answers.
            for address in addresses:
                assert BODY in await host_gets(address, "/host-reaches-it"), address
            # The agent asks the proxy, in plain HTTP and through a tunnel.
            answers = [(a, await plain_get(proxy, auth, authority(a))) for a in addresses]
            tunnelled = await tunnel_get(proxy, auth, addresses[1], 80)
            for address, got in answers:
                assert BODY.encode() not in got, (address, got)
                assert got.startswith(b"HTTP/1.1 403 "), (address, got[:400])
                assert b"private address" in got and b"allow_networks" in got, (address, got)
            assert tunnelled == (403, "DESTINATION_FORBIDDEN")
            # The person lists one address (their own registry, say): it alone answers.
            override(proxy, allow_networks=(ipaddress.ip_network(addresses[0]),))
            allowed = await plain_get(proxy, auth, authority(addresses[0]))
            still = [await plain_get(proxy, auth, authority(a)) for a in addresses[1:]]
    assert allowed.startswith(b"HTTP/1.1 200 ") and BODY.encode() in allowed, allowed
    for got in still:
        assert got.startswith(b"HTTP/1.1 403 ") and BODY.encode() not in got, got
    # The service was asked by the host, then by the proxy for the listed address only.
    assert served.paths == ["/host-reaches-it"] * len(addresses) + ["/"]
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    assert [(r.session, r.status, r.error) for r in records] == [
        (auth[0], 403, "DESTINATION_FORBIDDEN")] * (len(addresses) + 1) + [
        (auth[0], 200, None)] + [(auth[0], 403, "DESTINATION_FORBIDDEN")] * 2


async def test_the_appliances_own_identity_reaches_the_persons_private_remote(
        proxy: Proxy) -> None:
    """The appliance's own identity pushes and merges for the person, to their repositories'
    remotes: a git server on their LAN is theirs to name, never an agent's. It reaches a
    private address with no ``allow_networks``; this machine stays refused to it, and a
    session asking for the same address at the same time is still refused."""
    override(proxy, deny_unlisted=False)
    key = b"k" * 32
    proxy.state.directory = StoreDirectory(proxy.store, cache_seconds=0,
                                           appliance=appliance_identity(key))
    own = (APPLIANCE_ID, appliance_token(key))
    agent = proxy.add_session("beside")
    lan = private_addresses()[0]
    async with service_at((lan,), BODY, prefix="cllan", link="cll") as served:
        with trio.fail_after(60):
            theirs = await plain_get(proxy, own, authority(lan))
            refused = await plain_get(proxy, agent, authority(lan))
            home = await plain_get(proxy, own, f"127.0.0.1:{proxy.port}")
    assert theirs.startswith(b"HTTP/1.1 200 ") and BODY.encode() in theirs, theirs
    assert refused.startswith(b"HTTP/1.1 403 ") and b"private address" in refused, refused
    assert home.startswith(b"HTTP/1.1 403 ") and b"this machine" in home, home
    assert served.paths == ["/"]
