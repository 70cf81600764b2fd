"""No way to the host's cloud identity: metadata services off link-local addresses.

A cloud host's metadata service answers the host's own identity (its role's credentials)
to anything that asks from the host. At 169.254.169.254 it is link-local, which the proxy
refuses; but the same services also answer at addresses that are not: AWS's over IPv6
(``fd00:ec2::254``, and EKS Pod Identity's ``fd00:ec2::23``), Google's over IPv6
(``fd20:ce::254``), Alibaba's (``100.100.100.200``) and Azure's WireServer
(``168.63.129.16``). A hostile agent asks the proxy for them.

The test stands the services up on this machine: a network namespace it creates holds
those addresses, joined to the host by a veth pair on a /30 of 198.18.0.0/15 (and a
unique local /64), with host routes to exactly those addresses through it, so no packet
leaves the machine. The host itself reaches every one (the positive control); through the
proxy each is refused, and the fake metadata service sees no request from it.
"""

from __future__ import annotations

import trio
from behind import authority, host_gets, service_at
from conftest import Proxy, override
from test_proxy_home import plain_get, tunnel_get

from appliance.audit import parse_line

V4 = ("100.100.100.200", "168.63.129.16")
V6 = ("fd00:ec2::254", "fd00:ec2::23", "fd20:ce::254")


async def test_a_cloud_metadata_service_is_home_too(proxy: Proxy) -> None:
    override(proxy, deny_unlisted=False)  # the destinations are the point
    auth = proxy.add_session("imds")
    body = '{"AccessKeyId": "ASIA-HOST-ROLE", "SecretAccessKey": "host-secret"}'
    async with service_at((*V4, *V6), body, prefix="clmeta", link="clm") as served:
        with trio.fail_after(60):
            # The positive control: from the host, every address answers.
            for address in (*V4, *V6):
                assert "ASIA-HOST-ROLE" in await host_gets(address, "/host-reaches-it"), address
            # The agent asks the proxy, in plain HTTP and through a tunnel.
            answers = []
            for address in (*V4, *V6):
                got = await plain_get(proxy, auth, authority(address))
                answers.append((address, got.split(b"\r\n", 1)[0], got))
            tunnelled = await tunnel_get(proxy, auth, V4[0], 80)
        for address, line, got in answers:
            assert b"ASIA-HOST-ROLE" not in got, (address, got)
            assert line == b"HTTP/1.1 403 ", (address, got[:400])
            assert b"cloud metadata service" in got, (address, got[:400])
        assert tunnelled == (403, "DESTINATION_FORBIDDEN")
    # The service was asked by the host only.
    assert served.paths == ["/host-reaches-it"] * len(V4 + V6)
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    assert [(r.session, r.status, r.error) for r in records] == [
        (auth[0], 403, "DESTINATION_FORBIDDEN")] * (len(V4 + V6) + 1)
