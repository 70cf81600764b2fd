"""Building the :class:`CredentialSet` from every source, in order of precedence.

Theory of operation: for each known credential (:data:`SPECS`) the first source that has
it wins: the environment, then 1Password, then the file in ``CLAUDERON_HOME/secrets/``,
then (Codex credentials and the OpenAI key only) the host's Codex ``auth.json``. An
environment value that is an ``op://`` reference counts as a 1Password source and, if it
cannot be read, the lower sources still get their turn. Every 1Password reference is read
in one batch. Problems (``op`` missing, one item failing, a file others can read, a broken
auth.json) become warnings naming the credential; the rest still load. Only a proxy.toml
that is not valid TOML, or whose credential keys have the wrong type, is an error.

The keys read from ``proxy.toml`` here are ``codex_auth_json_path``, ``secrets_dir`` (default
``CLAUDERON_HOME/secrets``) and ``[onepassword]``
(``enabled`` default true, ``op_path`` default ``"op"``, ``timeout_seconds`` default 10,
``[onepassword.credentials]`` name -> ``op://vault/item/field``); the proxy owns the rest
of that file.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.config import Settings
from appliance.config_values import boolean, seconds
from appliance.credentials import chatgpt, files, onepassword
from appliance.credentials.model import (
    CREDENTIAL_NAMES,
    SPECS,
    Credential,
    CredentialSet,
    Source,
)
from appliance.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialConfig:
    """The credential-related part of proxy.toml."""

    codex_auth_json_path: str | None = None
    #: Overrides ``CLAUDERON_HOME/secrets`` when set.
    secrets_dir: Path | None = None
    op_enabled: bool = True
    op_path: str = "op"
    op_timeout_seconds: float = onepassword.DEFAULT_TIMEOUT_SECONDS
    op_refs: Mapping[str, str] = field(default_factory=dict)


def read_credential_config(path: Path) -> CredentialConfig:
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return CredentialConfig()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    return parse_credential_config(doc, origin=str(path))


def parse_credential_config(doc: Mapping[str, Any], *, origin: str) -> CredentialConfig:
    codex_path = doc.get("codex_auth_json_path")
    if codex_path is not None and not isinstance(codex_path, str):
        raise ConfigError(f"{origin}: codex_auth_json_path must be a string")
    secrets_dir = doc.get("secrets_dir")
    if secrets_dir is not None and (not isinstance(secrets_dir, str) or not secrets_dir):
        raise ConfigError(f"{origin}: secrets_dir must be a non-empty string")
    table = doc.get("onepassword", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{origin}: [onepassword] must be a table")
    enabled = boolean(table.get("enabled", True), f"{origin}: [onepassword] enabled")
    op_path = table.get("op_path", "op")
    timeout = seconds(table.get("timeout_seconds", onepassword.DEFAULT_TIMEOUT_SECONDS),
                      f"{origin}: [onepassword] timeout_seconds")
    refs = table.get("credentials", {})
    if not isinstance(op_path, str) or not op_path:
        raise ConfigError(f"{origin}: [onepassword] op_path must be a non-empty string")
    if not isinstance(refs, dict) or not all(isinstance(v, str) for v in refs.values()):
        raise ConfigError(f'{origin}: [onepassword.credentials] must map names to '
                          '"op://vault/item/field"')
    return CredentialConfig(
        codex_auth_json_path=codex_path,
        secrets_dir=Path(secrets_dir).expanduser() if secrets_dir else None,
        op_enabled=enabled, op_path=op_path, op_timeout_seconds=timeout, op_refs=dict(refs))


def load_credentials(settings: Settings, env: Mapping[str, str]) -> tuple[CredentialSet, list[str]]:
    """Every credential the sources hold, and the warnings met on the way. The sources in
    order, a higher one winning: the environment, 1Password, secret files, the host's
    Codex auth.json."""
    config = read_credential_config(settings.proxy_config_path)
    found, refs = _from_env(env)
    warnings = _onepassword_refs(config, found, refs)
    resolved = onepassword.resolve(refs, op_path=config.op_path, env=env,
                                   timeout=config.op_timeout_seconds)
    warnings.extend(resolved.warnings)
    for name, value in resolved.values.items():
        found[name] = Credential(name=name, value=value, source=Source.ONEPASSWORD)
    warnings += _from_files(config.secrets_dir or settings.secrets_dir, found)
    # An id_token from a higher source names its own account: never pair it with another.
    _account_from_id_token(found)
    codex_path = chatgpt.default_codex_auth_path(env, config.codex_auth_json_path)
    warnings += _from_codex_auth(codex_path, found)

    creds = CredentialSet.of(found.values(), codex_auth_path=codex_path)
    log.info("credentials loaded: %s",
             ", ".join(f"{c.name} ({c.source})" for c in creds) or "none")
    for warning in warnings:
        log.warning("credentials: %s", warning)
    return creds, warnings


def _from_env(env: Mapping[str, str]) -> tuple[dict[str, Credential], dict[str, str]]:
    """The environment's credentials, and its op:// values as 1Password references."""
    found: dict[str, Credential] = {}
    refs: dict[str, str] = {}
    for spec in SPECS:
        for var in spec.env_vars:
            value = env.get(var, "").rstrip()
            if not value:
                continue
            if onepassword.is_reference(value):
                refs[spec.name] = value
            else:
                found[spec.name] = Credential(name=spec.name, value=value, source=Source.ENV)
            break
    return found, refs


def _onepassword_refs(config: CredentialConfig, found: Mapping[str, Credential],
                      refs: dict[str, str]) -> list[str]:
    """Add proxy.toml's 1Password map to ``refs`` (after the environment's references);
    the warnings for names that are no credential."""
    warnings: list[str] = []
    if not config.op_enabled:
        return warnings
    for name, ref in config.op_refs.items():
        if name not in CREDENTIAL_NAMES:
            known = ", ".join(CREDENTIAL_NAMES)
            warnings.append(f"{name}: unknown credential in [onepassword.credentials] "
                            f"(known: {known})")
        elif name not in found and name not in refs:
            refs[name] = ref
    return warnings


def _from_files(secrets_dir: Path, found: dict[str, Credential]) -> list[str]:
    """Add the secret files' credentials not found yet; the warnings reading them."""
    warnings: list[str] = []
    for spec in SPECS:
        if spec.name in found:
            continue
        read = files.read_secret_file(secrets_dir, spec.name)
        if read.warning:
            warnings.append(read.warning)
        if read.value is not None:
            found[spec.name] = Credential(name=spec.name, value=read.value, source=Source.FILE)
    return warnings


def _from_codex_auth(codex_path: Path, found: dict[str, Credential]) -> list[str]:
    """Add the Codex credentials not found yet from the host's auth.json."""
    wanted = [s for s in SPECS if s.from_codex_auth and s.name not in found]
    if not wanted:
        return []
    try:
        auth = chatgpt.read_codex_auth(codex_path)
    except ConfigError as exc:
        return [f"codex: {exc.message}; Codex credentials from it skipped"]
    if auth is None:
        return []
    for spec in wanted:
        from_auth = auth.values.get(spec.name)
        if from_auth:
            found[spec.name] = Credential(name=spec.name, value=from_auth,
                                          source=Source.CODEX_AUTH_JSON)
    return []


def _account_from_id_token(found: dict[str, Credential]) -> None:
    """Fill ``codex_account_id`` from the claims of the id_token found so far, if any."""
    id_token = found.get("codex_id_token")
    if "codex_account_id" in found or id_token is None:
        return
    account = chatgpt.account_id_from_id_token(id_token.value)
    if account:
        found["codex_account_id"] = Credential(name="codex_account_id", value=account,
                                               source=id_token.source)
