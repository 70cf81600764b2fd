"""An IPv4 address spelled as the C library reads it, not as ``ipaddress`` does.

``getaddrinfo`` (``inet_aton``) takes ``16909060``, ``0x1020304``, ``1.2.772`` and
``01.02.03.04`` for 1.2.3.4; ``ipaddress`` refuses them, so the proxy took them for host
names: an egress list that denies ``1.2.3.4`` (learn or ask mode) let the same address
through under another spelling, and the audit line named a host nobody listed.
"""

from __future__ import annotations

import socket

import pytest

from appliance.egress import Decision, EgressMode, HostEntry, Verdict, decide
from proxy.heads import parse_absolute_target, parse_connect_target

SPELLINGS = ("16909060", "0x1020304", "1.2.772", "01.02.03.04", "0x01.0x02.0x03.0x04")


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_the_resolver_reads_each_spelling_as_the_denied_address(spelling: str) -> None:
    infos = socket.getaddrinfo(spelling, 443, type=socket.SOCK_STREAM,
                               flags=socket.AI_NUMERICHOST)
    assert {info[4][0] for info in infos} == {"1.2.3.4"}


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_denied_address_stays_denied_whatever_its_spelling(spelling: str) -> None:
    denied = (HostEntry(host="1.2.3.4", verdict=Verdict.DENY),)
    for target in (parse_connect_target(f"{spelling}:443".encode()),
                   parse_absolute_target(f"http://{spelling}/x".encode())):
        assert decide(EgressMode.LEARN, target.host, model_host=False, session=denied,
                      shared=()) is Decision.DENY, target.host


@pytest.mark.parametrize("spelling", ["::ffff:1.2.3.4", "::ffff:102:304",
                                      "0:0:0:0:0:ffff:0102:0304", "::FFFF:1.2.3.4"])
def test_an_ipv4_mapped_spelling_is_the_address_it_reaches(spelling: str) -> None:
    for target in (parse_connect_target(f"[{spelling}]:443".encode()),
                   parse_absolute_target(f"http://[{spelling}]/x".encode())):
        assert target.host == "1.2.3.4", spelling
