"""The credential records: what a credential is, where it came from, how it is shown.

Neighbours: :mod:`appliance.credentials.loader` builds a :class:`CredentialSet` from the
sources; the proxy reads it to inject real values and publishes
:meth:`CredentialSet.summary` for ``clauderon status`` (:mod:`appliance.credentials.doctor`).
A value never appears in a ``repr``, a log line or a summary: only
:meth:`Credential.masked` is ever shown to a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Source(StrEnum):
    ENV = "env"
    ONEPASSWORD = "1password"
    FILE = "file"
    CODEX_AUTH_JSON = "codex-auth.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialSpec:
    """One credential the appliance knows: its name (its secret file's too) and env
    variables."""

    name: str
    env_vars: tuple[str, ...]
    #: True when the host's Codex ``auth.json`` can supply it (after env, 1Password, file).
    from_codex_auth: bool = False


SPECS: tuple[CredentialSpec, ...] = (
    CredentialSpec(name="anthropic_oauth_token", env_vars=("CLAUDE_CODE_OAUTH_TOKEN",)),
    CredentialSpec(name="anthropic_api_key", env_vars=("ANTHROPIC_API_KEY",)),
    CredentialSpec(
        name="openai_api_key", env_vars=("OPENAI_API_KEY", "CODEX_API_KEY"), from_codex_auth=True
    ),
    CredentialSpec(
        name="codex_access_token", env_vars=("CODEX_ACCESS_TOKEN",), from_codex_auth=True
    ),
    CredentialSpec(
        name="codex_refresh_token", env_vars=("CODEX_REFRESH_TOKEN",), from_codex_auth=True
    ),
    CredentialSpec(name="codex_id_token", env_vars=("CODEX_ID_TOKEN",), from_codex_auth=True),
    CredentialSpec(name="codex_account_id", env_vars=("CODEX_ACCOUNT_ID",), from_codex_auth=True),
    CredentialSpec(name="gemini_api_key", env_vars=("GEMINI_API_KEY", "GOOGLE_API_KEY")),
    CredentialSpec(name="github_token", env_vars=("GITHUB_TOKEN", "GH_TOKEN")),
    CredentialSpec(name="npm_token", env_vars=("NPM_TOKEN",)),
    CredentialSpec(name="docker_token", env_vars=("DOCKER_TOKEN",)),
    CredentialSpec(name="sentry_auth_token", env_vars=("SENTRY_AUTH_TOKEN",)),
    CredentialSpec(name="pagerduty_token", env_vars=("PAGERDUTY_TOKEN", "PAGERDUTY_API_KEY")),
    CredentialSpec(name="grafana_api_key", env_vars=("GRAFANA_API_KEY",)),
)

CREDENTIAL_NAMES: tuple[str, ...] = tuple(spec.name for spec in SPECS)

#: Shorter values are masked completely: showing 6 characters of them would show too much.
_PARTIAL_MASK_MIN_LEN = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Credential:
    name: str
    value: str = field(repr=False)
    source: str  # "env" | "1password" | "file" | "codex-auth.json"

    def masked(self) -> str:
        """First 4 characters (a vendor's prefix, mostly), an ellipsis, the last 2: enough
        to tell two keys apart, not to guess one. Short values are fully masked."""
        if len(self.value) < _PARTIAL_MASK_MIN_LEN:
            return "…"
        return f"{self.value[:4]}…{self.value[-2:]}"

    def __repr__(self) -> str:
        return f"Credential(name={self.name!r}, source={self.source!r}, value={self.masked()!r})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class CredentialSet:
    """The credentials in effect, by name; immutable (a reload builds a new set)."""

    _by_name: dict[str, Credential] = field(default_factory=dict)
    #: Where the host's Codex ``auth.json`` lives (refreshed tokens are written back there).
    codex_auth_path: Path | None = None

    @classmethod
    def of(
        cls, creds: Iterable[Credential], *, codex_auth_path: Path | None = None
    ) -> CredentialSet:
        return cls({c.name: c for c in creds}, codex_auth_path)

    def get(self, name: str) -> Credential | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        """Names in the canonical order, then any unknown ones sorted."""
        known = [n for n in CREDENTIAL_NAMES if n in self._by_name]
        return known + sorted(set(self._by_name) - set(CREDENTIAL_NAMES))

    def summary(self) -> list[dict[str, str]]:
        """What ``clauderon status`` shows: name, source, masked value."""
        return [{"name": c.name, "source": c.source, "masked": c.masked()} for c in self]

    def __iter__(self) -> Iterator[Credential]:
        return (self._by_name[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __repr__(self) -> str:
        inner = ", ".join(f"{c.name}:{c.source}" for c in self)
        return f"CredentialSet({inner})"
