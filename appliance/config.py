"""Settings: built once in each service's ``main()`` and passed down, never a global.

Everything lives under ``CLAUDERON_HOME`` (default ``~/.clauderon``); :class:`Settings` derives
every path from it so a whole appliance can be moved, or tested, by changing one variable.
``config.toml`` in that folder overrides the defaults; a few environment variables override
the file (documented in the README). Unknown keys are an error: a typo must not be silent.
The defaults and each value's rules are in :mod:`appliance.config_values`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from appliance import config_kubernetes
from appliance.agents.custom import CustomAgent, parse_custom_agents
from appliance.budgets import BudgetDefaults
from appliance.config_kubernetes import KubeSettings
from appliance.config_values import (
    CONTROL_TABLES,
    DEFAULT_CONNECTIONS,
    DEFAULT_CPU,
    DEFAULT_IMAGE,
    DEFAULT_MEMORY,
    DEFAULT_PIDS_LIMIT,
    check,
    coerce,
    control_table,
)
from appliance.egress import EgressDefaults
from appliance.errors import ConfigError, refuse_unknown
from appliance.limits import SessionLimits
from appliance.usage import DEFAULT_TABLE, PriceTable

#: How long the API keeps an idle connection open for the next request (Hypercorn's
#: ``keep_alive_timeout``). A client lets go of an idle connection well before this: one
#: that sends on a connection the API is closing at that moment gets no answer at all.
API_KEEP_ALIVE_SECONDS = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    home: Path
    # API
    http_host: str = "127.0.0.1"
    http_port: int = 3030
    # Names browsers may reach the API by besides loopback (a Tailscale name, a LAN name):
    # the Host allow-list and the trusted origins (https://<name>) are built from them.
    public_names: tuple[str, ...] = ()
    # Serve HTTPS on the TCP listener with this certificate chain and key (PEM files).
    tls_cert: str | None = None
    tls_key: str | None = None
    # Containers reach the hook endpoint on their network's gateway at this port; it serves
    # /api/hooks and nothing else. 0 disables the listener.
    hook_port: int = 3031
    # Proxy (127.0.0.1 and the sessions' network gateway)
    proxy_port: int = 3128
    # Docker
    docker_host: str | None = None
    default_image: str = DEFAULT_IMAGE
    default_cpu: float = DEFAULT_CPU
    default_memory: str = DEFAULT_MEMORY
    pids_limit: int = DEFAULT_PIDS_LIMIT
    # The sessions' network (internal, firewalled: see appliance.netplan); None names it
    # ``clauderon-<instance>``, NO_NETWORK runs without one. ``network_subnet`` pins its
    # IPv4 range (None: the engine's default address pool picks one).
    docker_network: str | None = None
    network_subnet: str | None = None
    # Connections one session container may hold to the proxy and hooks at once.
    container_connections: int = DEFAULT_CONNECTIONS
    # Agents: after a container starts, write the hooks and settings and start the agent
    # (claude/codex) in tmux. False runs plain containers (an image without an agent CLI).
    start_agents: bool = True
    #: The warm start (``appliance.agents.prestart``): the agent starts with its container.
    warm_start: bool = True
    # Limits: sessions with compute, and creates in progress, at once (429 beyond)
    max_sessions: int = 15
    max_concurrent_creates: int = 3
    #: The most a sync brings into the user's repository at once (new objects, their full
    #: size): an agent's branch is its to fill, the user's repository is not.
    max_sync_mib: int = 1024
    # Reconciler
    reconcile_poll_seconds: float = 0.02
    resync_seconds: float = 2.0
    max_attempts: int = 3
    backoff_seconds: float = 30.0
    backoff_max_seconds: float = 300.0
    stable_seconds: float = 120.0
    max_concurrent_ops: int = 3
    docker_timeout_seconds: float = 60.0
    # GitHub: how often the reconciler reads each session's pull request again (0: never)
    github_refresh_seconds: float = 60.0
    # The events journal keeps this many days (0: forever): every hook and change writes
    # one, so without a bound the database grows as long as the appliance is used.
    keep_events_days: float = 30.0
    # And of a session's hook events, the newest this many (0: all): an agent posting its
    # hook in a loop within its rate would otherwise write ~2 GB a day into the journal.
    keep_hook_events: int = 10_000
    # Kubernetes: the ``[kubernetes]`` table (its presence turns the backend on)
    kubernetes: KubeSettings | None = None
    # Shipper (audit.jsonl -> archive and an optional HTTP sink)
    shipper_rotate_bytes: int = 50 * 1024 * 1024
    shipper_keep_rotated: int = 5
    # The archive keeps this many days of audit lines besides today's (0: forever); the
    # shipper removes the daily files older than that, never by size.
    shipper_keep_days: int = 90
    shipper_poll_seconds: float = 0.5
    shipper_batch_lines: int = 500
    shipper_batch_bytes: int = 1024 * 1024
    shipper_http_url: str | None = None
    shipper_http_timeout_seconds: float = 10.0
    shipper_retry_max_seconds: float = 60.0
    shipper_writer_program: str = "proxy"
    # The proxy as the control point (``[prices]``, ``[budgets]``, ``[egress]``,
    # ``[honeytokens]``): what tokens cost, how much may be spent, where sessions may go,
    # and whether a leaked placeholder stops its session.
    prices: PriceTable = DEFAULT_TABLE
    budgets: BudgetDefaults = field(default_factory=BudgetDefaults)
    egress: EgressDefaults = field(default_factory=EgressDefaults)
    honeytoken_stops_session: bool = False
    # The daily workflow: whether a create plans first unless it says otherwise; the
    # custom agents (``[agents.custom.<name>]``); the title call (``[titles]``): which
    # vendor's API and small model, and how long a create waits for it (empty model: no
    # call, the name comes from the prompt's words).
    default_plan_mode: bool = False
    custom_agents: Mapping[str, CustomAgent] = field(default_factory=dict)
    titles_provider: str = "anthropic"
    titles_model: str = ""
    titles_timeout_seconds: float = 8.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def limits(self) -> SessionLimits:
        return SessionLimits(max_sessions=self.max_sessions,
                             max_concurrent_creates=self.max_concurrent_creates)

    # --- the CLAUDERON_HOME layout -------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.home / "db.sqlite"

    @property
    def socket_path(self) -> Path:
        return self.home / "clauderon.sock"

    @property
    def config_path(self) -> Path:
        return self.home / "config.toml"

    @property
    def proxy_config_path(self) -> Path:
        return self.home / "proxy.toml"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def ca_cert_path(self) -> Path:
        return self.home / "proxy-ca.pem"

    @property
    def ca_key_path(self) -> Path:
        return self.home / "proxy-ca-key.pem"

    @property
    def audit_path(self) -> Path:
        return self.home / "audit.jsonl"

    @property
    def shipper_dir(self) -> Path:
        """The shipper's own state: ``checkpoint.json``."""
        return self.home / "shipper"

    @property
    def archive_dir(self) -> Path:
        """Daily ``audit-YYYY-MM-DD.jsonl.gz`` files written by the shipper."""
        return self.home / "archive"

    @property
    def worktrees_dir(self) -> Path:
        return self.home / "worktrees"

    @property
    def shadows_dir(self) -> Path:
        """Scratch git directories through which the host reads workspaces
        (:mod:`appliance.shadow`), one folder per session, owned by its repository's owner."""
        return self.home / "shadows"

    @property
    def kept_dir(self) -> Path:
        """Workspaces of deleted sessions whose branch could not be brought into the user's
        repository: kept here rather than lost."""
        return self.home / "kept"

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    @property
    def homes_dir(self) -> Path:
        """Each session's agent home (``/home/agent``): agent state and transcripts, kept
        across container recreation, removed with the session."""
        return self.home / "homes"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def runtime_dir(self) -> Path:
        """Generated files mounted read-only into containers (agent settings, CA copy)."""
        return self.home / "runtime"

    @property
    def instance_secret_path(self) -> Path:
        return self.home / "instance.key"

    def paths(self) -> dict[str, Path]:
        """Every path of the layout, by name (``clauderon config paths``)."""
        return {
            "home": self.home,
            "config": self.config_path,
            "proxy_config": self.proxy_config_path,
            "database": self.db_path,
            "socket": self.socket_path,
            "secrets": self.secrets_dir,
            "ca_cert": self.ca_cert_path,
            "ca_key": self.ca_key_path,
            "audit": self.audit_path,
            "shipper": self.shipper_dir,
            "archive": self.archive_dir,
            "worktrees": self.worktrees_dir,
            "shadows": self.shadows_dir,
            "kept": self.kept_dir,
            "uploads": self.uploads_dir,
            "logs": self.logs_dir,
            "homes": self.homes_dir,
            "runtime": self.runtime_dir,
        }

    def public_dict(self) -> dict[str, Any]:
        """The effective settings as plain JSON values (``clauderon config show``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else value
        if self.kubernetes is not None:
            out["kubernetes"] = {f.name: getattr(self.kubernetes, f.name)
                                 for f in fields(self.kubernetes)}
        out["prices"] = {model: {"input": p.input, "output": p.output,
                                 "cache_read": p.cache_read, "cache_write": p.cache_write}
                         for model, p in self.prices.prices.items()}
        out["budgets"] = {"session": self.budgets.session.to_json(),
                          "global": self.budgets.all_sessions.to_json()}
        out["egress"] = {"mode": str(self.egress.mode), "allow": list(self.egress.allow),
                         "deny": list(self.egress.deny),
                         "ask_timeout_seconds": self.egress.ask_seconds}
        out["custom_agents"] = {name: {"command": list(a.command)}
                                for name, a in self.custom_agents.items()}
        out["extra"] = dict(self.extra)
        return out

    def ensure_layout(self) -> None:
        """Create the folders with safe modes; idempotent, called by each service on start.

        The home and the folders holding per-session trees are traverse-only (0711) when we
        run as root: git runs as each repository's owner and must reach that session's
        folders (each owned by the owner, 0700), but nobody may list them. Everything else
        is the appliance's alone (0700; the files in them 0600).
        """
        self.home.mkdir(parents=True, exist_ok=True)
        shared = 0o711 if os.geteuid() == 0 else 0o700
        os.chmod(self.home, shared)
        for d in (self.worktrees_dir, self.uploads_dir, self.homes_dir, self.shadows_dir):
            d.mkdir(exist_ok=True)
            os.chmod(d, shared)
        for d in (self.logs_dir, self.runtime_dir, self.secrets_dir, self.kept_dir):
            d.mkdir(exist_ok=True)
            os.chmod(d, 0o700)


def _same(*keys: str) -> dict[str, str]:
    """Keys named as their Settings field."""
    return {key: key for key in keys}


# config.toml: table -> key -> Settings field
_TOML_KEYS: dict[str, dict[str, str]] = {
    "server": {"host": "http_host", "port": "http_port",
               **_same("hook_port", "public_names", "tls_cert", "tls_key")},
    "proxy": {"port": "proxy_port"},
    "docker": {"host": "docker_host", "image": "default_image", "cpu": "default_cpu",
               "memory": "default_memory", "pids_limit": "pids_limit",
               "network": "docker_network", "subnet": "network_subnet",
               "max_connections": "container_connections",
               "timeout_seconds": "docker_timeout_seconds"},
    "agents": {"start": "start_agents", "warm": "warm_start",
               "plan_mode": "default_plan_mode"},
    "titles": {"provider": "titles_provider", "model": "titles_model",
               "timeout_seconds": "titles_timeout_seconds"},
    "limits": _same("max_sessions", "max_concurrent_creates", "max_sync_mib"),
    "reconciler": {"poll_seconds": "reconcile_poll_seconds", **_same(
        "resync_seconds", "max_attempts", "backoff_seconds", "backoff_max_seconds",
        "stable_seconds", "max_concurrent_ops", "keep_events_days", "keep_hook_events")},
    "github": {"refresh_seconds": "github_refresh_seconds"},
    "shipper": {key: f"shipper_{key}" for key in (
        "rotate_bytes", "keep_rotated", "keep_days", "poll_seconds", "batch_lines", "batch_bytes",
        "http_url", "http_timeout_seconds", "retry_max_seconds", "writer_program")},
}

_ENV_KEYS: dict[str, str] = {
    "CLAUDERON_BIND_ADDR": "http_host",
    "CLAUDERON_HTTP_PORT": "http_port",
    "CLAUDERON_PUBLIC_NAMES": "public_names",
    "CLAUDERON_HOOK_PORT": "hook_port",
    "CLAUDERON_PROXY_PORT": "proxy_port",
    "CLAUDERON_IMAGE": "default_image",
    "DOCKER_HOST": "docker_host",
}


def default_home(env: Mapping[str, str]) -> Path:
    raw = env.get("CLAUDERON_HOME")
    if raw:
        return Path(raw).expanduser().absolute()
    return Path(env.get("HOME", str(Path.home()))) / ".clauderon"


#: Each Settings field's declared type, as text (what :func:`coerce` reads a value as).
_KINDS = {f.name: str(f.type) for f in fields(Settings)}


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults < ``config.toml`` < environment < explicit ``overrides``."""
    env = os.environ if env is None else env
    home = default_home(env)
    values, extra = _from_toml(home / "config.toml")
    for var, name in _ENV_KEYS.items():
        if env.get(var):
            values[name] = coerce(name, _KINDS[name], env[var], f"${var}")
    if "default_cpu" not in values and "default_cpu" not in overrides:
        # The engine refuses more CPUs than the machine has: a small machine gets them all.
        values["default_cpu"] = min(DEFAULT_CPU, float(os.cpu_count() or 1))
    settings = Settings(home=home, extra=extra, **values)
    settings = replace(settings, **overrides) if overrides else settings
    check(settings)
    return settings


def _from_toml(config_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Settings values ``config_path`` sets, and its tables read by others (``extra``)."""
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if not config_path.exists():
        return values, extra
    try:
        doc = tomllib.loads(config_path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML ({exc})") from exc
    for table, body in doc.items():
        if table == "kubernetes":
            values["kubernetes"] = config_kubernetes.parse(body, str(config_path))
            continue
        if table in CONTROL_TABLES:
            values.update(control_table(table, body, str(config_path)))
            continue
        if table not in _TOML_KEYS:
            extra[table] = body
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"{config_path}: [{table}] must be a table")
        if table == "agents" and "custom" in body:
            values["custom_agents"] = parse_custom_agents(body["custom"], str(config_path))
        refuse_unknown(body, [*_TOML_KEYS[table], *(["custom"] if table == "agents" else [])],
                       f"{config_path} [{table}]")
        for key, value in body.items():
            if key not in _TOML_KEYS[table]:
                continue  # [agents] custom, read above
            name = _TOML_KEYS[table][key]
            values[name] = coerce(name, _KINDS[name], value, f"{config_path} [{table}] {key}")
    return values, extra
