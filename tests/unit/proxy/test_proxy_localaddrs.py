"""This machine's addresses: loopback is always among them."""

from __future__ import annotations

import ipaddress

from proxy.localaddrs import is_local_address, own_addresses


def test_own_addresses_include_loopback_and_extras() -> None:
    found = own_addresses(extra=("192.0.2.7",))
    assert ipaddress.ip_address("127.0.0.1") in found
    assert ipaddress.ip_address("192.0.2.7") in found


def test_the_kernel_says_which_addresses_are_ours_now() -> None:
    others = sorted(str(a) for a in own_addresses() if not a.is_loopback and a.version == 4)
    for mine in ("127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1", *others[:1]):
        assert is_local_address(ipaddress.ip_address(mine)), mine
    # Documentation ranges (RFC 5737, RFC 3849): never assigned to a machine.
    for other in ("192.0.2.201", "198.51.100.7", "2001:db8::7"):
        if ipaddress.ip_address(other) not in own_addresses():
            assert not is_local_address(ipaddress.ip_address(other)), other


ROUTES = """Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
docker0	000011AC	00000000	0001	0	0	0	0000FFFF	0	0	0
br-1a2b	000012AC	00000000	0001	0	0	0	0000FFFF	0	0	0
docker0	00000000	010011AC	0003	0	0	0	00000000	0	0	0
"""


def test_bridge_routes_are_the_container_subnets() -> None:
    from proxy.localaddrs import bridge_routes

    nets = bridge_routes(ROUTES, lambda name: name == "docker0" or name.startswith("br-"))
    assert [str(n) for n in nets] == ["172.17.0.0/16", "172.18.0.0/16"]  # no default route
    assert bridge_routes(ROUTES, lambda name: False) == []
    assert bridge_routes("garbage\nbr-x zz yy\n", lambda name: True) == []


def _route6(dest: str, prefix: str, via: str, iface: str) -> str:
    """One line of ``/proc/net/ipv6_route``: destination, prefix, source, next hop, ..."""
    return f"{dest} {prefix} {'0' * 32} 00 {via} 00000100 00000001 00000000 00000001 {iface}"


ROUTES6 = "\n".join([
    _route6("fd42c1a017b6" + "0" * 20, "40", "0" * 32, "br-29d9c8155982"),
    _route6("fd" + "0" * 30, "40", "0" * 32, "eth0"),
    _route6("0" * 32, "00", "fd" + "0" * 29 + "1", "docker0"),  # a default route
]) + "\n"


def test_ipv6_bridge_routes_are_container_subnets_too() -> None:
    """A Docker network with IPv6 puts containers at addresses of its bridge's IPv6
    subnet: "home" as much as its IPv4 one (and a default route is never one)."""
    from proxy.localaddrs import bridge_routes6

    nets = bridge_routes6(ROUTES6, lambda name: name == "docker0" or name.startswith("br-"))
    assert [str(n) for n in nets] == ["fd42:c1a0:17b6::/64"]
    assert bridge_routes6(ROUTES6, lambda name: False) == []
    assert bridge_routes6("garbage\nzz 40 a b c d e f g br-x\n", lambda name: True) == []

