"""Per-session placeholder credentials: what an agent holds instead of each real secret.

Every session gets its own placeholders, derived from the instance key and the session id
with HMAC (like its proxy and hook tokens, :mod:`appliance.tokens`): the reconciler writes
them into the container's environment and agent settings, and the proxy derives the same
values to recognise them. Being unique, a placeholder is a honeytoken: when one turns up in
a request to a host that is not its rule's (``proxy/honeytoken.py``), the proxy knows which
session leaked which credential, and blocks it.

Each placeholder belongs to a :class:`Family`, which names the credentials the proxy swaps
in for it: a placeholder may travel to the hosts of those credentials' rules, and nowhere
else. The values keep each vendor's prefix (tools check it) and end in hex, so Claude
Code's approved-key suffix (its last 20 characters) is unique per session too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Family:
    name: str
    prefix: str
    length: int
    #: The credentials the proxy puts in for this placeholder (``proxy/rules.py`` names).
    credentials: tuple[str, ...]


FAMILIES: tuple[Family, ...] = (
    Family(name="anthropic", prefix="sk-ant-api03-clauderon-", length=40,
           credentials=("anthropic_api_key", "anthropic_oauth_token")),
    Family(name="openai", prefix="sk-clauderon-", length=40,
           credentials=("openai_api_key", "codex_access_token", "codex_account_id")),
    # The dummy tokens of a ChatGPT login's auth.json (no variable holds it): the login
    # goes only with requests that carry it (``proxy/inject.py``, ``token_refresh.py``).
    Family(name="chatgpt", prefix="clauderon-chatgpt-", length=40,
           credentials=("codex_access_token", "codex_account_id", "codex_refresh_token")),
    # Google's API keys are AIza + 35 characters; Gemini CLI checks none of it.
    Family(name="google", prefix="AIzaSy-clauderon-", length=40,
           credentials=("gemini_api_key",)),
    Family(name="github", prefix="ghp_", length=36, credentials=("github_token",)),
    Family(name="npm", prefix="npm_", length=36, credentials=("npm_token",)),
)
_BY_NAME = {f.name: f for f in FAMILIES}

#: Which placeholder each environment variable of the container holds. Claude gets one
#: Anthropic placeholder only (both set makes it warn on every start): the proxy puts
#: whichever real credential the host has (an OAuth token or an API key) in its own header.
ENV_FAMILIES: Mapping[str, str] = {
    "ANTHROPIC_API_KEY": "anthropic",
    "OPENAI_API_KEY": "openai",
    "CODEX_API_KEY": "openai",
    "GEMINI_API_KEY": "google",
    "GH_TOKEN": "github",
    "GITHUB_TOKEN": "github",
    "NPM_TOKEN": "npm",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Placeholder:
    family: Family
    value: str
    #: The same value as it looks base64-encoded (Basic auth, a JSON field, a data URL):
    #: the stable inner part of each of the three alignments.
    encoded: tuple[bytes, ...]


def _value(key: bytes, session_id: str, family: Family) -> str:
    mac = hmac.new(key, f"placeholder:{family.name}:{session_id}".encode(), hashlib.sha256)
    return family.prefix + mac.hexdigest()[: family.length]


def _base64_forms(value: bytes) -> tuple[bytes, ...]:
    """The part of ``base64(x + value + y)`` that is the same whatever ``x`` and ``y`` are,
    for each of the three offsets ``value`` can start at."""
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + value)
        # The first 4 chars mix the padding in; the last group may mix in what follows.
        start = 4 if shift else 0
        stop = (len(encoded) // 4 - 1) * 4
        if stop - start >= 16:
            forms.append(encoded[start:stop])
    return tuple(forms)


def session_placeholders(key: bytes, session_id: str) -> tuple[Placeholder, ...]:
    """The session's placeholders, one per family (what the proxy looks for)."""
    out = []
    for family in FAMILIES:
        value = _value(key, session_id, family)
        out.append(Placeholder(family=family, value=value,
                               encoded=_base64_forms(value.encode())))
    return tuple(out)


def placeholder_env(key: bytes, session_id: str) -> dict[str, str]:
    """The container's placeholder variables (``appliance.contract``)."""
    return {var: _value(key, session_id, _BY_NAME[name]) for var, name in ENV_FAMILIES.items()}


def chatgpt_placeholder(key: bytes, session_id: str) -> str:
    """The session's stand-in for the tokens of the person's ChatGPT login: written only
    into the auth.json of a Codex that signs in with that login (``codex_setup``)."""
    return _value(key, session_id, _BY_NAME["chatgpt"])
