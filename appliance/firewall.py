"""The host firewall of the sessions' network: the thin shell that runs iptables/ip6tables.

The rules themselves are data from :mod:`appliance.netplan`; this module only carries them
out. :func:`install` is idempotent (the chain is rewritten in one ``iptables-restore``
transaction, then one jump per hook is added when missing), :func:`remove` undoes it, and
:func:`check_access` fails early, saying what to do, when this process cannot change the
firewall (not root, no CAP_NET_ADMIN, no iptables): the appliance never runs sessions
without it.

Both families are handled: IPv4 lets the proxy and hook ports through, IPv6 drops all. A
kernel without IPv6 has no ip6tables tables, and no container can speak IPv6 either.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from appliance.errors import BackendError, ConfigError
from appliance.netplan import HOOKS, NetworkPlan, jump_rule, restore_input

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 30.0
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


def _families() -> tuple[int, ...]:
    return (4, 6) if Path("/proc/net/if_inet6").exists() else (4,)


def _binary(name: str) -> str:
    # Services may run with a PATH lacking the sbin folders (supervisord, nix).
    found = shutil.which(name) or shutil.which(name, path=_SBIN)
    if found is None:
        raise ConfigError(
            f"{name} is not installed: the sessions' firewall needs it "
            "(Debian: apt-get install iptables)")
    return found


def _tool(family: int, restore: bool = False) -> str:
    base = "iptables" if family == 4 else "ip6tables"
    return _binary(f"{base}-restore" if restore else base)


def _run(argv: list[str], *, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True,
                              timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BackendError(f"{argv[0]} took more than {TIMEOUT_SECONDS:.0f}s") from exc


def _said(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (proc.stderr or proc.stdout).splitlines()
             if not line.startswith("# Warning")]
    return " ".join(lines).strip()[-300:] or f"exit status {proc.returncode}"


def check_access() -> None:
    """Raise :class:`ConfigError` saying what to do when the firewall cannot be changed."""
    for family in _families():
        proc = _run([_tool(family), "-w", "5", "-S", "INPUT"])
        if proc.returncode != 0:
            raise ConfigError(
                "the sessions' network needs a host firewall and this process cannot "
                f"install it ({_tool(family)}: {_said(proc)}; running as uid "
                f"{os.geteuid()}). Run the appliance's services as root (or with "
                "CAP_NET_ADMIN); sessions never run without the firewall")


def install(plan: NetworkPlan, *, gateway: str, ports: tuple[int, ...],
            max_connections: int) -> None:
    """Make the instance's chain hold exactly the planned rules, with one jump per hook."""
    for family in _families():
        text = restore_input(plan, family=family, gateway=gateway, ports=ports,
                             max_connections=max_connections)
        proc = _run([_tool(family, restore=True), "-w", "5", "--noflush"], stdin=text)
        if proc.returncode != 0:
            said = _said(proc)
            hint = ("; the kernel lacks the connlimit match that holds each session to its "
                    "share of connections: load it (modprobe xt_connlimit)"
                    if "connlimit" in said else "")
            raise BackendError(f"could not install the firewall chain {plan.chain}: "
                               f"{said}{hint}", retryable=False)
        for hook in HOOKS:
            rule = jump_rule(plan, hook)
            if _run([_tool(family), "-w", "5", "-C", *rule]).returncode == 0:
                continue
            proc = _run([_tool(family), "-w", "5", "-I", hook, "1", *rule[1:]])
            if proc.returncode != 0:
                raise BackendError(f"could not add the jump to {plan.chain} in {hook}: "
                                   f"{_said(proc)}", retryable=False)
    log.info("firewall %s installed for bridge %s (gateway %s, ports %s, %d connections "
             "per container)", plan.chain, plan.bridge, gateway,
             ", ".join(str(p) for p in ports if p), max_connections)


def remove(plan: NetworkPlan) -> None:
    """Remove the jumps and the chain; what is already gone is not an error."""
    for family in _families():
        tool = _tool(family)
        for hook in HOOKS:
            for _ in range(100):  # every copy, should something have added more than one
                if _run([tool, "-w", "5", "-D", *jump_rule(plan, hook)]).returncode != 0:
                    break
        _run([tool, "-w", "5", "-F", plan.chain])
        _run([tool, "-w", "5", "-X", plan.chain])
