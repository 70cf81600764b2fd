"""The sessions' network and firewall as data: names, the checks on a found network, rules."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.backends.base import LABEL_INSTANCE, LABEL_MANAGED
from appliance.netplan import (
    BRIDGE_NAME_OPTION,
    ICC_OPTION,
    jump_rule,
    network_info,
    network_problem,
    plan_network,
    restore_input,
)

PLAN = plan_network(instance="0123456789ab", name=None, subnet=None)


def attrs(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "Name": PLAN.name, "Driver": "bridge", "Internal": True,
        "Labels": {LABEL_MANAGED: "true", LABEL_INSTANCE: "0123456789ab"},
        "Options": {BRIDGE_NAME_OPTION: PLAN.bridge, ICC_OPTION: "false"},
        "IPAM": {"Config": [{"Subnet": "172.29.0.0/16", "Gateway": "172.29.0.1"}]},
    }
    found.update(changes)
    return found


def test_names_fit_the_kernel_and_iptables_and_are_stable() -> None:
    assert PLAN.name == "clauderon-0123456789ab"
    assert len(PLAN.bridge) <= 15 and PLAN.bridge.startswith("cl-")
    assert len(PLAN.chain) <= 28 and PLAN.chain.startswith("CLAUDERON-")
    assert plan_network(instance="0123456789ab", name=None, subnet=None) == PLAN
    other = plan_network(instance="0123456789ab", name="agents", subnet="10.9.0.0/24")
    assert other.name == "agents" and other.subnet == "10.9.0.0/24"
    assert other.bridge != PLAN.bridge and other.chain != PLAN.chain


def test_created_internal_without_icc_labelled_with_a_named_bridge() -> None:
    assert PLAN.labels == {LABEL_MANAGED: "true", LABEL_INSTANCE: "0123456789ab"}
    assert PLAN.options == {BRIDGE_NAME_OPTION: PLAN.bridge, ICC_OPTION: "false"}


def test_a_locked_down_network_of_ours_is_accepted() -> None:
    assert network_problem(attrs(), PLAN) is None
    info = network_info(attrs(), PLAN)
    assert (info.gateway, info.subnet, info.bridge) == ("172.29.0.1", "172.29.0.0/16",
                                                        PLAN.bridge)


def test_an_ipv6_entry_is_skipped_for_the_ipv4_gateway() -> None:
    found = attrs(IPAM={"Config": [{"Subnet": "fd00::/64", "Gateway": "fd00::1"},
                                   {"Subnet": "172.29.0.0/16", "Gateway": "172.29.0.1"}]})
    assert network_info(found, PLAN).gateway == "172.29.0.1"


@pytest.mark.parametrize(("changes", "expected"), [
    ({"Labels": {}}, "is not this appliance's"),
    ({"Labels": {LABEL_MANAGED: "true", LABEL_INSTANCE: "someone-else"}},
     "is not this appliance's"),
    ({"Internal": False}, "not internal"),
    ({"Options": {BRIDGE_NAME_OPTION: PLAN.bridge}}, "ICC on"),
    ({"Options": {BRIDGE_NAME_OPTION: "br-x", ICC_OPTION: "false"}}, "bridge 'br-x'"),
    ({"Driver": "macvlan"}, "driver 'macvlan'"),
    ({"IPAM": {"Config": []}}, "no IPv4 subnet and gateway"),
])
def test_a_network_that_is_not_locked_down_is_refused_with_what_to_do(
    changes: dict[str, Any], expected: str
) -> None:
    problem = network_problem(attrs(**changes), PLAN)
    assert problem is not None and expected in problem
    assert f"docker network rm {PLAN.name}" in problem


def test_a_configured_subnet_must_match() -> None:
    pinned = plan_network(instance="0123456789ab", name=None, subnet="10.9.0.0/24")
    problem = network_problem(attrs(), pinned)
    assert problem is not None and "not the configured 10.9.0.0/24" in problem
    assert network_problem(attrs(IPAM={"Config": [{"Subnet": "10.9.0.0/24",
                                                    "Gateway": "10.9.0.1"}]}), pinned) is None


def test_ipv4_rules_let_only_the_two_ports_on_the_gateway_through() -> None:
    text = restore_input(PLAN, family=4, gateway="172.29.0.1", ports=(3128, 3031, 0),
                         max_connections=64)
    c = PLAN.chain
    assert text.splitlines() == [
        "*filter",
        f":{c} - [0:0]",  # declaring it empties it: a re-run replaces, never appends
        f"-A {c} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        # A new connection beyond 64 from one container address is reset, before any accept.
        f"-A {c} -p tcp -m tcp --syn -m connlimit --connlimit-above 64 --connlimit-mask 32 "
        "--connlimit-saddr -j REJECT --reject-with tcp-reset",
        f"-A {c} -d 172.29.0.1/32 -p tcp -m tcp --dport 3031 -j ACCEPT",
        f"-A {c} -d 172.29.0.1/32 -p tcp -m tcp --dport 3128 -j ACCEPT",
        f"-A {c} -j DROP",
        "COMMIT",
    ]


def test_ipv6_drops_everything() -> None:
    text = restore_input(PLAN, family=6, gateway="172.29.0.1", ports=(3128, 3031),
                         max_connections=64)
    assert [line for line in text.splitlines() if line.startswith("-A")] == [
        f"-A {PLAN.chain} -j DROP"]


def test_jumps_name_the_bridge_and_the_chain() -> None:
    assert jump_rule(PLAN, "INPUT") == ["INPUT", "-i", PLAN.bridge, "-j", PLAN.chain]
    assert jump_rule(PLAN, "FORWARD")[0] == "FORWARD"
