"""This machine's addresses: what "home" is for "no way home".

:func:`own_addresses` lists every address assigned to this machine (from ``/proc`` on
Linux), which :func:`proxy.policy.address_refusal` refuses as destinations so an agent
cannot reach the host's services through the proxy; and :func:`on_container_bridge` says
whether an address lies on a container network of this host (another session's container,
any local container), refused the same way. (Where the proxy *listens* comes from the
sessions' network: :mod:`appliance.backends.docker_network`.)
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path

from proxy.policy import IpAddress

log = logging.getLogger(__name__)

#: Linux: bind() checks the address without taking a port (socket.IP_BIND_ADDRESS_NO_PORT).
_IP_BIND_ADDRESS_NO_PORT = 24


def is_local_address(addr: IpAddress) -> bool:
    """Whether ``addr`` is this machine's own right now: the kernel lets a socket bind it.

    A bind to an address no interface holds fails with EADDRNOTAVAIL. Any other failure
    counts as local: when in doubt, the destination is refused.
    """
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:  # no such family here (IPv6 off): nothing to connect with either
        return True
    with sock:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
        try:
            sock.bind((str(addr), 0))
        except OSError as exc:
            return exc.errno != errno.EADDRNOTAVAIL
    return True


def bridge_routes(route_table: str, is_bridge: Callable[[str], bool]
                  ) -> list[ipaddress.IPv4Network]:
    """The IPv4 subnets routed straight onto a bridge, from ``/proc/net/route`` (pure).

    A bridge on this host holds containers (every Docker network is one): their addresses
    are "home" too. A default route is never a bridge subnet.
    """
    nets: list[ipaddress.IPv4Network] = []
    for line in route_table.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8 or not is_bridge(cols[0]):
            continue
        try:
            dest = socket.inet_ntoa(struct.pack("<I", int(cols[1], 16)))
            mask = socket.inet_ntoa(struct.pack("<I", int(cols[7], 16)))
            net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        except (ValueError, struct.error):
            continue
        if net.prefixlen > 0:
            nets.append(net)
    return nets


def bridge_routes6(route_table: str, is_bridge: Callable[[str], bool]
                   ) -> list[ipaddress.IPv6Network]:
    """The IPv6 subnets routed onto a bridge, from ``/proc/net/ipv6_route`` (pure): a
    Docker network made with ``--ipv6`` holds containers at these addresses too."""
    nets: list[ipaddress.IPv6Network] = []
    for line in route_table.splitlines():
        cols = line.split()
        if len(cols) < 10 or not is_bridge(cols[9]):
            continue
        try:
            dest = ipaddress.IPv6Address(bytes.fromhex(cols[0]))
            net = ipaddress.IPv6Network(f"{dest}/{int(cols[1], 16)}", strict=False)
        except ValueError:
            continue
        if net.prefixlen > 0:
            nets.append(net)
    return nets


def _is_bridge(iface: str) -> bool:
    return os.path.isdir(f"/sys/class/net/{iface}/bridge")


def on_container_bridge(addr: IpAddress) -> bool:
    """Whether ``addr`` lies on a container network of this host (a bridge's subnet), read
    now: networks come and go while the proxy runs. Unreadable: not known to be one."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    try:
        table = Path("/proc/net/route" if addr.version == 4 else "/proc/net/ipv6_route"
                     ).read_text()
    except OSError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        return any(addr in net for net in bridge_routes6(table, _is_bridge))
    return any(addr in net for net in bridge_routes(table, _is_bridge))


def _proc_ipv4(fib_trie: Path) -> set[str]:
    found: set[str] = set()
    previous = ""
    with contextlib.suppress(OSError):
        for line in fib_trie.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith("/32 host LOCAL") and previous:
                found.add(previous)
            if stripped.startswith("|--"):
                previous = stripped[3:].strip()
    return found


def _proc_ipv6(if_inet6: Path) -> set[str]:
    found: set[str] = set()
    with contextlib.suppress(OSError):
        for line in if_inet6.read_text().splitlines():
            raw = line.split()[0] if line.split() else ""
            if len(raw) == 32:
                found.add(":".join(raw[i : i + 4] for i in range(0, 32, 4)))
    return found


def own_addresses(extra: tuple[str, ...] = ()) -> frozenset[IpAddress]:
    raw = _proc_ipv4(Path("/proc/net/fib_trie")) | _proc_ipv6(Path("/proc/net/if_inet6"))
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None):
            raw.add(str(info[4][0]))
    raw.update(extra)
    out: set[IpAddress] = set()
    for text in raw:
        with contextlib.suppress(ValueError):
            out.add(ipaddress.ip_address(text.split("%")[0]))
    log.debug("own addresses: %s", sorted(map(str, out)))
    return frozenset(out)
