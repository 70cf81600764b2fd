"""The rules for each setting's value: the defaults, how a value from config.toml or the
environment is read as its field's type, and the checks made once all are loaded, so a bad
value stops the service when it starts, naming the file and the key. :mod:`appliance.config`
reads the sources and builds :class:`~appliance.config.Settings`.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.budgets import parse_budget_defaults
from appliance.egress import parse_egress_defaults
from appliance.errors import ConfigError, InvalidInput
from appliance.resources import parse_cpu, parse_memory
from appliance.usage import parse_prices

if TYPE_CHECKING:
    from appliance.config import Settings

DEFAULT_IMAGE = "clauderon-agent:latest"
#: Every session gets limits (DESIGN.md "Containment" 6); these apply when it asks for none.
DEFAULT_CPU = 2.0
DEFAULT_MEMORY = "4g"
DEFAULT_PIDS_LIMIT = 1024
#: Connections one session container may hold to the proxy and the hook endpoint at once
#: (the next is reset by the sessions' firewall): an agent opens a handful, a package
#: manager some tens; one agent cannot take every file descriptor from the others.
DEFAULT_CONNECTIONS = 256
#: ``[docker] network = "none"``: no sessions' network. The proxy and the API listen on
#: loopback only and the reconciler refuses to run (a proxy-only appliance, benchmarks).
NO_NETWORK = "none"
_NETWORK_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")


def coerce(name: str, kind: str, value: object, source: str) -> object:
    """A value from config.toml or the environment as the field ``name`` of type ``kind``
    (its annotation, as text) takes it."""
    if kind.startswith("tuple"):
        return _names(name, value, source)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
            return value.lower() in ("1", "true", "yes")
        raise ConfigError(f"{source}: {value!r} is not a valid value for {name} (true/false)")
    try:
        if "int" in kind and "float" not in kind:
            if isinstance(value, bool) or (isinstance(value, float)
                                           and not value.is_integer()):
                raise TypeError  # int(1.5) would be 1: a setting quietly not the one written
            return int(value)  # type: ignore[call-overload]
        if "float" in kind:
            if "None" in kind and value in (None, ""):
                return None
            if isinstance(value, bool):
                raise TypeError
            return float(value)  # type: ignore[arg-type]
        if value == "" and "None" in kind:
            return None
        if not isinstance(value, str):
            raise TypeError
        return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {value!r} is not a valid value for {name}") from exc


def _names(name: str, value: object, source: str) -> tuple[str, ...]:
    """A list of host names: a TOML array, or a comma-separated string (environment)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"{source}: {name} must be a list of host names, like "
                          '["box.tail1234.ts.net"]')
    out = tuple(i.strip().lower().rstrip(".") for i in items if i.strip())
    for item in out:
        if not HOSTNAME.fullmatch(item):
            raise ConfigError(f"{source}: {item!r} is not a host name (no scheme, port or "
                              "path: just box.tail1234.ts.net)")
    return out


def boolean(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false")
    return value


def seconds(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where} must be a positive number of seconds")
    return float(value)


#: A DNS host name, lowercase (no scheme, port or path).
HOSTNAME = re.compile(r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                      r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")


CONTROL_TABLES = ("prices", "budgets", "egress", "honeytokens")


def control_table(table: str, body: object, origin: str) -> dict[str, Any]:
    """The proxy's control tables, each parsed by the module that owns its rules."""
    if table == "prices":
        return {"prices": parse_prices(body, origin)}
    if table == "budgets":
        return {"budgets": parse_budget_defaults(body, origin)}
    if table == "egress":
        return {"egress": parse_egress_defaults(body, origin)}
    if not isinstance(body, dict) or set(body) - {"stop_session"} \
            or not isinstance(body.get("stop_session", False), bool):
        raise ConfigError(f"{origin} [honeytokens]: the one key is stop_session = true|false "
                          "(stop a session whose placeholder is sent to a foreign host)")
    return {"honeytoken_stops_session": bool(body.get("stop_session", False))}


def check(settings: Settings) -> None:
    """The loaded settings, checked together."""
    _limits(settings)
    _retention(settings)
    _tls(settings)
    _titles(settings)


def _limits(settings: Settings) -> None:
    """Limits and the network are checked when loaded, not at every create that uses them."""
    for limit in ("max_sessions", "max_concurrent_creates", "max_sync_mib"):
        if getattr(settings, limit) < 1:
            raise ConfigError(f"{settings.config_path} [limits] {limit} must be 1 or more "
                              f"(it is {getattr(settings, limit)})")
    if not settings.keep_events_days >= 0:
        raise ConfigError(
            f"{settings.config_path} [reconciler] keep_events_days = "
            f"{settings.keep_events_days} must be a number of days, or 0 to keep every event")
    if settings.keep_hook_events < 0:
        raise ConfigError(
            f"{settings.config_path} [reconciler] keep_hook_events = "
            f"{settings.keep_hook_events} must be a number of events, or 0 to keep every one")
    _docker_limits(settings, f"{settings.config_path} [docker]")


def _retention(settings: Settings) -> None:
    """How long the audit archive is kept: whole days, or 0 for ever."""
    if settings.shipper_keep_days < 0:
        raise ConfigError(
            f"{settings.config_path} [shipper] keep_days = {settings.shipper_keep_days} "
            "must be a number of days to keep the audit archive, or 0 to keep it forever")


def _docker_limits(settings: Settings, where: str) -> None:
    """Each container's limits and the sessions' network."""
    try:
        parse_memory(settings.default_memory)
        parse_cpu(settings.default_cpu)
    except InvalidInput as exc:
        raise ConfigError(f"{where}: {exc.message}") from exc
    if settings.pids_limit <= 0:
        raise ConfigError(
            f"{where}: pids_limit = {settings.pids_limit} must be a positive number of "
            f"processes (the default is {DEFAULT_PIDS_LIMIT}; a limit is required: it stops "
            "a fork bomb)")
    if settings.container_connections < 1:
        raise ConfigError(
            f"{where}: max_connections = {settings.container_connections} must be a "
            f"positive number of connections (the default is {DEFAULT_CONNECTIONS})")
    name = settings.docker_network
    if name is not None and not _NETWORK_NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: network = {name!r} is not a Docker network name (letters, digits, "
            f"'_', '.', '-'); leave it out for clauderon-<instance>, or {NO_NETWORK!r}")
    if settings.network_subnet is not None:
        try:
            subnet = ipaddress.ip_network(settings.network_subnet)
        except ValueError as exc:
            raise ConfigError(
                f"{where}: subnet = {settings.network_subnet!r} is not a network like "
                f"10.213.0.0/24 ({exc})") from exc
        if subnet.version != 4 or subnet.prefixlen > 29:
            raise ConfigError(
                f"{where}: subnet = {settings.network_subnet!r} must be an IPv4 network of "
                "at least 8 addresses (/29 or wider), like 10.213.0.0/24")


TITLE_PROVIDERS = ("anthropic", "openai", "gemini")


def _titles(settings: Settings) -> None:
    where = f"{settings.config_path} [titles]"
    if settings.titles_provider not in TITLE_PROVIDERS:
        raise ConfigError(f"{where}: provider = {settings.titles_provider!r} is not one of "
                          f"{', '.join(TITLE_PROVIDERS)}")
    if not 0 < settings.titles_timeout_seconds <= 60:
        raise ConfigError(f"{where}: timeout_seconds must be more than 0 and at most 60 "
                          "(a create waits that long at most before it names the session "
                          "from the prompt)")


def _tls(settings: Settings) -> None:
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError(f"{settings.config_path} [server]: set both tls_cert and tls_key "
                          "(PEM files), or neither")
    for key in ("tls_cert", "tls_key"):
        value = getattr(settings, key)
        if value and not Path(value).expanduser().is_file():
            raise ConfigError(f"{settings.config_path} [server] {key}: {value} is not a file")
