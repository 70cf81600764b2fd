"""The host's Codex ``auth.json``: reading its tokens, and writing refreshed ones back.

Codex's ChatGPT login keeps ``{"OPENAI_API_KEY": ..., "tokens": {"id_token", "access_token",
"refresh_token", "account_id"}, "last_refresh": ...}`` in ``~/.codex/auth.json``. The loader
(:mod:`appliance.credentials.loader`) takes Codex credentials from here when the environment,
1Password and secret files have none; the proxy calls :func:`write_codex_auth` when it
captures refreshed tokens, so the host's own ``codex`` keeps working with the new ones.
The account id, when the file lacks it, comes from the id_token's claims (the JWT is read,
not verified: it is our own file, and only the account id is taken from it).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError

#: auth.json token field -> credential name
TOKEN_FIELDS: dict[str, str] = {
    "access_token": "codex_access_token",
    "refresh_token": "codex_refresh_token",
    "id_token": "codex_id_token",
    "account_id": "codex_account_id",
}
_AUTH_CLAIMS = "https://api.openai.com/auth"

#: What a container gets for a token a refresh's answer held elsewhere than where Codex
#: reads one (for the login's own tokens it holds its session's placeholder,
#: ``appliance.placeholders.chatgpt_placeholder``).
PLACEHOLDER_TOKEN = "clauderon-placeholder-token"  # noqa: S105 - no token
#: What stands in the third part of the id_token's copy: not a signature, but not empty
#: (the Codex CLI takes a JWT with an empty one for no id_token, and fails its refresh).
UNSIGNED = "clauderon-unsigned"


def unsigned_copy(jwt: str) -> str:
    """The JWT's header and claims with ``alg: none`` and :data:`UNSIGNED` for a signature."""
    parts = jwt.split(".")
    if len(parts) < 2:
        return ""
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return f"{header}.{parts[1]}.{UNSIGNED}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CodexAuth:
    """What auth.json holds, by credential name (values never logged)."""

    values: Mapping[str, str]


def default_codex_auth_path(env: Mapping[str, str], configured: str | None) -> Path:
    """``CODEX_AUTH_JSON_PATH`` > proxy.toml ``codex_auth_json_path`` > ``~/.codex/auth.json``."""
    raw = env.get("CODEX_AUTH_JSON_PATH") or configured
    if raw:
        return Path(os.path.expanduser(raw))
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".codex" / "auth.json"


def account_id_from_id_token(id_token: str) -> str | None:
    """The ChatGPT account id in an id_token's claims, or None when it has none."""
    parts = id_token.split(".")
    if len(parts) < 2:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(claims, dict):
        return None
    auth = claims.get(_AUTH_CLAIMS)
    candidates = [auth.get("chatgpt_account_id")] if isinstance(auth, dict) else []
    candidates.append(claims.get("chatgpt_account_id"))
    for value in candidates:
        if isinstance(value, str) and value:
            return value
    return None


def parse_codex_auth(text: str, *, origin: str) -> CodexAuth:
    """Credentials from auth.json text; :class:`ConfigError` naming ``origin`` if malformed."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{origin}: not valid JSON ({exc.__class__.__name__})") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{origin}: expected a JSON object")
    values: dict[str, str] = {}
    api_key = doc.get("OPENAI_API_KEY")
    if isinstance(api_key, str) and api_key.strip():
        values["openai_api_key"] = api_key.strip()
    tokens = doc.get("tokens")
    if tokens is not None and not isinstance(tokens, dict):
        raise ConfigError(f"{origin}: 'tokens' must be an object")
    for key, name in TOKEN_FIELDS.items():
        value = (tokens or {}).get(key)
        if isinstance(value, str) and value.strip():
            values[name] = value.strip()
    if "codex_account_id" not in values and "codex_id_token" in values:
        account = account_id_from_id_token(values["codex_id_token"])
        if account:
            values["codex_account_id"] = account
    return CodexAuth(values=values)


def read_codex_auth(path: Path) -> CodexAuth | None:
    """None when the file does not exist; :class:`ConfigError` when it cannot be used."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    return parse_codex_auth(text, origin=str(path))


def write_codex_auth(path: Path, tokens: Mapping[str, str | None]) -> None:
    """Atomically merge refreshed ``tokens`` into auth.json, keeping every other field.

    ``tokens`` uses auth.json's own keys (``access_token``, ``refresh_token``, ``id_token``,
    ``account_id``); None values are left as they were. The new file is written beside the
    old one, fsynced, renamed over it with ``os.replace`` and left mode 0600, so a reader
    sees either the old file or the new one, never a torn one.
    """
    unknown = set(tokens) - set(TOKEN_FIELDS)
    if unknown:
        raise ValueError(f"unknown auth.json token fields: {sorted(unknown)}")
    doc: dict[str, Any]
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        doc = {"OPENAI_API_KEY": None, "tokens": {}}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror}); not writing it") from exc
    except ValueError as exc:
        # Never clobber a file we cannot understand: the user may have edited it by hand.
        raise ConfigError(f"{path}: not valid JSON; refusing to overwrite it") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a JSON object; refusing to overwrite it")
    current = doc.get("tokens")
    merged: dict[str, Any] = dict(current) if isinstance(current, dict) else {}
    merged.update({k: v for k, v in tokens.items() if v is not None})
    doc["tokens"] = merged
    doc["last_refresh"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    _atomic_write(path, json.dumps(doc, indent=2) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise ConfigError(f"{path}: cannot write ({exc.strerror})") from exc
    # The rename is durable only once the directory entry is.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
