"""``proxy.toml``: upstream overrides, extra rules, model hosts, timeouts.

Read once at start and again on SIGHUP by ``__main__``/``server.py``; the result is a frozen
:class:`ProxyConfig` handed to the pure core. Example::

    deny_unlisted = false              # true: refuse every host without an override
    extra_ca_bundle = "/etc/corp-ca.pem"
    grafana_host = "grafana.example.com"
    model_hosts = ["api.anthropic.com", "api.openai.com", "chatgpt.com"]

    [upstreams]                        # a corporate gateway, or a fake upstream in tests
    "api.anthropic.com" = "https://127.0.0.1:8443"

    allow_writes = ["npm_token"]       # sessions may publish with these (``uses.py``)

    # Networks no request may reach, beside this machine's own ("no way home", ``policy.py``).
    refuse_networks = ["203.0.113.0/24"]
    # Private networks requests may reach (every other one is refused: your LAN, VPN,
    # tailnet, a cluster's): a registry or git server of your own, say.
    allow_networks = ["192.168.1.20/32"]

    tunnels_per_hour = 36000           # new tunnels each session may open (burst: 64)
    audit_bytes_per_day = 268435456    # one session's audit lines a day (0: no bound)

    [paces]                            # requests an hour each session may send with a
    github_token = 1200                # credential (0: no pace); see ``pace.py``

    [[rules]]
    host = "api.example.com"
    credential = "example_token"
    style = "bearer"                   # bearer | basic-x-access-token | token-token | header
    port = 443                         # injected only over TLS to this port (the default)

Unknown keys are an error, except the tables the credential loader reads from this file.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from appliance.config_values import boolean, seconds
from appliance.errors import ConfigError, refuse_unknown
from proxy.auditshare import AUDIT_BYTES_PER_DAY
from proxy.pace import Pace
from proxy.rules import DEFAULT_MODEL_HOSTS, DEFAULT_RULES, Rule, Style, rule_from_toml

# Read by appliance.credentials from the same file; we let them through.
_FOREIGN_KEYS = frozenset({"onepassword", "credentials", "codex_auth_json_path", "secrets_dir"})
_FLOATS = {
    "connect_timeout_seconds": "connect_timeout",
    "read_timeout_seconds": "read_timeout",
    "idle_timeout_seconds": "idle_timeout",
    "shutdown_grace_seconds": "shutdown_grace",
    "pace_hold_seconds": "pace_hold",
    "long_after_seconds": "long_after",
}
#: A GitHub token's quota is 5,000 requests an hour for the person and every session: one
#: session, however it loops, spends no more than a quarter of it.
DEFAULT_PACES = {"github_token": Pace(1200)}
#: New tunnels (CONNECTs) each session may open: each costs the proxy's one loop a TLS
#: handshake (and a certificate for a name it has not seen), so a session opening them as
#: fast as it can would hold every other session's requests. Ten a second, 64 at once,
#: is far above what an agent's tools open with keep-alive connections.
TUNNEL_PACE = Pace(36_000, 64)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    """Where requests for a host really go (an override), or the host itself."""

    scheme: str  # "https" | "http"
    host: str
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyConfig:
    upstreams: Mapping[str, Upstream] = field(default_factory=dict)
    extra_ca_bundle: Path | None = None
    deny_unlisted: bool = False
    rules: tuple[Rule, ...] = DEFAULT_RULES
    model_hosts: tuple[str, ...] = DEFAULT_MODEL_HOSTS
    connect_timeout: float = 10.0
    #: The longest silence tolerated while reading from either side mid-exchange.
    read_timeout: float = 600.0
    #: How long a kept-alive connection (client or upstream) may sit idle.
    idle_timeout: float = 120.0
    shutdown_grace: float = 10.0
    #: Requests an hour each session may send with a credential, by credential name.
    paces: Mapping[str, Pace] = field(default_factory=lambda: dict(DEFAULT_PACES))
    #: The longest a request sent ahead of its pace is held before it is refused instead.
    pace_hold: float = 30.0
    #: Registry credentials sessions may write with (publish) too (``uses.py``).
    allow_writes: frozenset[str] = frozenset()
    #: Networks refused as destinations like this machine's own.
    refuse_networks: tuple[IpNetwork, ...] = ()
    #: Private networks that are destinations all the same (none is, by default).
    allow_networks: tuple[IpNetwork, ...] = ()
    #: New tunnels each session may open (``server.py``), held or refused as ``paces`` are.
    tunnel_pace: Pace = TUNNEL_PACE
    #: An exchange still going this long after it started (a trickling download, a slow
    #: upload, a long poll) gets its opening line then, so it is in the audit log while it
    #: lasts; one that ends sooner has its one line.
    long_after: float = 5.0
    #: Bytes of one session's audit lines a day past which its requests are refused with
    #: a 429, counted one summary line a minute (``auditshare.py``; 0: no bound).
    audit_bytes_per_day: int = AUDIT_BYTES_PER_DAY

    def override_for(self, host: str, port: int) -> Upstream | None:
        return self.upstreams.get(f"{host}:{port}") or self.upstreams.get(host)


def parse_upstream(url: str, origin: str) -> Upstream:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{origin}: {url!r} must look like https://host[:port]")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ConfigError(f"{origin}: {url!r} has an invalid port") from exc
    return Upstream(scheme=parts.scheme, host=parts.hostname, port=port)


def _table(value: object, where: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be {what}")
    return value


def _strings(value: object, where: str, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be {what}")
    return value


def _ca_bundle(value: object, where: str) -> Path:
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise ConfigError(f"{where}: {path} is not a file")
    return path


def _whole(value: object, where: str, what: str, *, least: int = 0) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= least:
        return value
    raise ConfigError(f"{where} must be a whole number of {what}")


def config_from_dict(doc: Mapping[str, Any], origin: str) -> ProxyConfig:
    values: dict[str, Any] = {}
    extra_rules: list[Rule] = []
    for key, value in doc.items():
        where = f"{origin}: {key}"
        if key in _FOREIGN_KEYS:
            continue
        if key in _FIELDS:
            field_name, read = _FIELDS[key]
            values[field_name] = read(value, where)
        elif key == "grafana_host":
            extra_rules.append(
                Rule(host=str(value).lower(), style=Style.BEARER, credential="grafana_api_key")
            )
        elif key == "rules":
            if not isinstance(value, list):
                raise ConfigError(f"{where} must be an array of tables ([[rules]])")
            extra_rules.extend(rule_from_toml(entry, origin) for entry in value)
        elif key in _FLOATS:
            values[_FLOATS[key]] = seconds(value, where)
        else:
            refuse_unknown((key,), (*_FIELDS, "grafana_host", "rules", *_FLOATS), origin)
    # Rules from the file come first: they override built-in rules for the same host.
    rules = (*extra_rules, *DEFAULT_RULES)
    named = {name for rule in rules for name in rule.credentials}
    refuse_unknown(values.get("allow_writes", ()), named, f"{origin}: allow_writes")
    if "paces" in values:
        refuse_unknown(values["paces"], named, f"{origin}: paces")
        values["paces"] = _paces(values["paces"], f"{origin}: paces")
    return ProxyConfig(rules=rules, **values)


def _networks(value: object, where: str) -> tuple[IpNetwork, ...]:
    """``refuse_networks``, ``allow_networks``: addresses or networks in CIDR notation."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of networks such as \"10.96.0.0/12\"")
    try:
        return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


#: Each key of ``proxy.toml`` that sets one field: the field, and how its value is read.
_FIELDS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "upstreams": ("upstreams", lambda v, w: {
        str(h).lower(): parse_upstream(str(u), f"{w}.{h}")
        for h, u in _table(v, w, "a table").items()}),
    "extra_ca_bundle": ("extra_ca_bundle", _ca_bundle),
    "deny_unlisted": ("deny_unlisted", boolean),
    "model_hosts": ("model_hosts", lambda v, w: tuple(
        h.lower() for h in _strings(v, w, "a list of host names"))),
    "allow_writes": ("allow_writes", lambda v, w: frozenset(
        _strings(v, w, "a list of credential names"))),
    "tunnels_per_hour": ("tunnel_pace", lambda v, w: Pace(
        _whole(v, w, "tunnels an hour", least=1), TUNNEL_PACE.burst)),
    "refuse_networks": ("refuse_networks", _networks),
    "allow_networks": ("allow_networks", _networks),
    "paces": ("paces", lambda v, w: _table(v, w, "a table of credential = requests an hour")),
    "audit_bytes_per_day": ("audit_bytes_per_day", lambda v, w: _whole(
        v, w, "bytes (0: no bound)")),
}


_PACE = "requests an hour (0: no pace), or { per_hour = N, burst = M }"


def _paces(value: Mapping[str, object], where: str) -> dict[str, Pace]:
    """``[paces]`` over the defaults: a credential's requests an hour (0: no pace)."""
    paces = dict(DEFAULT_PACES)
    for name, given in value.items():
        table = given if isinstance(given, dict) else {"per_hour": given}
        refuse_unknown(table, ("per_hour", "burst"), f"{where}.{name}")
        per_hour = _whole(table.get("per_hour"), f"{where}.{name}", _PACE)
        burst = _whole(table.get("burst", 0), f"{where}.{name}", _PACE)
        paces.pop(name, None)
        if per_hour:
            paces[name] = Pace(per_hour, burst)
    return paces


def load_proxy_config(path: Path) -> ProxyConfig:
    """The config in ``path``; defaults when the file does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ProxyConfig()
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    return config_from_dict(doc, str(path))
