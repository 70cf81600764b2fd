"""This machine's addresses: loopback is always among them."""

from __future__ import annotations

import ipaddress

from proxy.localaddrs import bridge_gateway, interface_ipv4, own_addresses


def test_own_addresses_include_loopback_and_extras() -> None:
    found = own_addresses(extra=("192.0.2.7",))
    assert ipaddress.ip_address("127.0.0.1") in found
    assert ipaddress.ip_address("192.0.2.7") in found


def test_interfaces() -> None:
    assert interface_ipv4("lo") == "127.0.0.1"
    assert interface_ipv4("no-such-if0") is None
    assert bridge_gateway("10.9.8.7") == "10.9.8.7"
