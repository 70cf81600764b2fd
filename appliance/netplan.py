"""The sessions' network and its host firewall, as data (pure; no Docker, no iptables).

Theory of operation
-------------------
A session container must reach the proxy and the hook endpoint and nothing else (DESIGN.md,
"Containment" 3). Three layers give that, each named here and carried out by
:mod:`appliance.backends.docker_network` and :mod:`appliance.firewall`:

1. **One network per appliance instance**, a Docker bridge that is *internal* (the engine
   drops forwarding to anything outside its subnet: no route to the internet or to other
   networks) with *ICC off* (no traffic between its containers), labelled as ours, with a
   bridge interface name derived from the network's name so firewall rules can name it.
   Session containers join this network only.
2. **A host firewall.** An internal network still leaves every address of the host itself
   reachable (the gateway on the bridge, ``docker0``, ``eth0``...): such packets go through
   the host's INPUT chain, which the engine leaves open. One chain per instance, jumped to
   from INPUT (and FORWARD, against anything the engine would forward: a port another
   container publishes is DNAT-ed to its address) for packets *coming in on the bridge*:
   accept TCP to the proxy and hook ports on the gateway address, and replies, drop the
   rest. IPv6 (the bridge has a link-local address) drops everything. A container holding
   ``max_connections`` connections to those ports has the next one reset: the kernel
   counts them per source address, so one agent cannot take every file descriptor of the
   proxy or the API from the others (and from the user's web UI).
3. **No name resolution.** The engine's embedded DNS (127.0.0.11 in every container on a
   user-defined network) forwards unknown names to the container's ``dns`` servers; we
   name the container's own loopback, where nothing of ours listens. Agents need no DNS:
   the proxy resolves.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from appliance.backends.base import LABEL_INSTANCE, LABEL_MANAGED

NETWORK_PREFIX = "clauderon-"
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
ICC_OPTION = "com.docker.network.bridge.enable_icc"
#: The embedded DNS forwards to these: the container's own loopback (never the host's).
CONTAINER_DNS = ("127.0.0.1",)
#: Fail a lookup in about a second instead of twenty (nothing will ever answer).
CONTAINER_DNS_OPTIONS = ("timeout:1", "attempts:1")
#: Filter-table hooks that jump to the instance's chain for packets from its bridge.
HOOKS = ("INPUT", "FORWARD")


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkPlan:
    """Names and settings of one instance's sessions' network."""

    name: str
    instance: str
    bridge: str  # the host interface (<= 15 characters)
    chain: str  # the iptables/ip6tables chain (<= 28 characters)
    subnet: str | None = None

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_MANAGED: "true", LABEL_INSTANCE: self.instance}

    @property
    def options(self) -> dict[str, str]:
        return {BRIDGE_NAME_OPTION: self.bridge, ICC_OPTION: "false"}


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkInfo:
    """The network as it is: what the services listen on and containers are given."""

    name: str
    gateway: str
    bridge: str
    subnet: str


def plan_network(*, instance: str, name: str | None, subnet: str | None) -> NetworkPlan:
    name = name or f"{NETWORK_PREFIX}{instance}"
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return NetworkPlan(name=name, instance=instance, bridge=f"cl-{digest}",
                       chain=f"CLAUDERON-{digest}", subnet=subnet)


def _ipv4_config(attrs: Mapping[str, Any]) -> tuple[str, str] | None:
    for entry in (attrs.get("IPAM") or {}).get("Config") or []:
        subnet, gateway = entry.get("Subnet", ""), entry.get("Gateway", "")
        try:
            if subnet and gateway and ipaddress.ip_network(subnet).version == 4:
                return subnet, gateway
        except ValueError:
            continue
    return None


def network_problem(attrs: Mapping[str, Any], plan: NetworkPlan) -> str | None:
    """Why an existing network of that name cannot be the sessions' network, or None."""
    labels = attrs.get("Labels") or {}
    options = attrs.get("Options") or {}
    remove = f"remove it (`docker network rm {plan.name}`, once no container uses it)"
    if labels.get(LABEL_MANAGED) != "true" or labels.get(LABEL_INSTANCE) != plan.instance:
        return (f"a Docker network named {plan.name} exists and is not this appliance's "
                f"(labels {dict(labels)}); {remove} or set another [docker] network")
    wrong = []
    if attrs.get("Driver") != "bridge":
        wrong.append(f"driver {attrs.get('Driver')!r}, not 'bridge'")
    if attrs.get("Internal") is not True:
        wrong.append("not internal")
    if options.get(ICC_OPTION) != "false":
        wrong.append("containers may talk to each other (ICC on)")
    if options.get(BRIDGE_NAME_OPTION) != plan.bridge:
        wrong.append(f"bridge {options.get(BRIDGE_NAME_OPTION)!r}, not {plan.bridge!r}")
    found = _ipv4_config(attrs)
    if found is None:
        wrong.append("no IPv4 subnet and gateway")
    elif plan.subnet is not None and ipaddress.ip_network(found[0]) != ipaddress.ip_network(
            plan.subnet):
        wrong.append(f"subnet {found[0]}, not the configured {plan.subnet}")
    if wrong:
        return (f"the sessions' network {plan.name} is not locked down as it must be "
                f"({'; '.join(wrong)}); {remove} and start the appliance again")
    return None


def network_info(attrs: Mapping[str, Any], plan: NetworkPlan) -> NetworkInfo:
    """The facts of a network :func:`network_problem` accepted."""
    found = _ipv4_config(attrs)
    if found is None:  # pragma: no cover - network_problem refused it already
        raise ValueError(f"{plan.name} has no IPv4 gateway")
    subnet, gateway = found
    return NetworkInfo(name=plan.name, gateway=gateway, bridge=plan.bridge, subnet=subnet)


def restore_input(plan: NetworkPlan, *, family: int, gateway: str,
                  ports: tuple[int, ...], max_connections: int) -> str:
    """``iptables-restore --noflush`` input that (re)creates the chain in one transaction:
    declaring the chain empties it, so re-running replaces its rules and never adds to
    them, and no packet ever sees it half-written."""
    chain = plan.chain
    lines = ["*filter", f":{chain} - [0:0]"]
    if family == 4:
        lines.append(f"-A {chain} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
        # Counted per container address; closed (TIME_WAIT) connections do not count.
        lines.append(f"-A {chain} -p tcp -m tcp --syn -m connlimit --connlimit-above "
                     f"{max_connections} --connlimit-mask 32 --connlimit-saddr "
                     "-j REJECT --reject-with tcp-reset")
        lines += [f"-A {chain} -d {gateway}/32 -p tcp -m tcp --dport {port} -j ACCEPT"
                  for port in sorted(set(ports)) if port]
    lines += [f"-A {chain} -j DROP", "COMMIT", ""]
    return "\n".join(lines)


def jump_rule(plan: NetworkPlan, hook: str) -> list[str]:
    """The rule in ``hook`` sending the bridge's packets to the chain (for -C/-I/-D)."""
    return [hook, "-i", plan.bridge, "-j", plan.chain]
