"""Credential substitution: placeholder out, real credential in. Pure, no I/O.

:func:`apply_rule` rewrites a request's headers for a matched :class:`~proxy.rules.Rule`.
The placeholder auth the agent sent is always removed before the real value is set, so a
placeholder never reaches the upstream next to the real value. When the credential the
rule needs is not loaded, the headers are returned unchanged (the upstream answers 401,
which the agent reports; nothing is invented). The person's ChatGPT login goes only into a
request that carries the session's own ChatGPT placeholder (``own``: the dummy access token
of the auth.json of a Codex signed in with it); another request goes as sent, as when the
login is not loaded: an agent never given the login gets none of it. The Codex token
refresh, which rewrites bodies rather than headers, lives in :mod:`proxy.token_refresh`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, quote_plus

from proxy.rules import Rule, Style

Headers = list[tuple[bytes, bytes]]

OAUTH_BETA = "oauth-2025-04-20"


class SecretValue(Protocol):
    @property
    def value(self) -> str: ...


class CredentialLookup(Protocol):
    """What the core needs from ``appliance.credentials.CredentialSet``."""

    def get(self, name: str) -> SecretValue | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Injection:
    headers: Headers
    #: The credential put in (its name only), or None when nothing was injected.
    credential: str | None
    #: What of it travels in the request, to be masked wherever the answer carries it back.
    secrets: tuple[bytes, ...] = ()


def without(headers: Headers, *names: bytes) -> Headers:
    drop = set(map(bytes.lower, names))
    return [(k, v) for k, v in headers if k.lower() not in drop]


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _beta(headers: Headers, *, add: bool) -> Headers:
    """``anthropic-beta`` with the OAuth flag added (or removed), other flags kept."""
    flags: list[str] = []
    seen = False
    for k, v in headers:
        if k.lower() == b"anthropic-beta":
            seen = True
            flags.extend(f.strip() for f in v.decode("latin-1").split(",") if f.strip())
    if not (seen or add):  # nothing to take out, nothing to put in (an API key, usually)
        return headers
    flags = [f for f in flags if f != OAUTH_BETA]
    if add:
        flags.append(OAUTH_BETA)
    out = without(headers, b"anthropic-beta")
    if flags:
        out.append((b"anthropic-beta", ",".join(flags).encode("latin-1")))
    return out


def _enc(value: str) -> bytes:
    # Header values must not carry CR/LF; a credential with one would split the request.
    return value.strip().replace("\r", "").replace("\n", "").encode("utf-8")


def body_forms(value: str) -> tuple[bytes, ...]:
    """A credential as a request body may carry it (``token_refresh.py`` writes it into a
    form or a JSON document): raw, URL-encoded, JSON-escaped; each masked in the answer."""
    forms = (value, quote_plus(value), quote(value, safe=""), json.dumps(value)[1:-1])
    return tuple(dict.fromkeys(f.encode("utf-8") for f in forms))


def placeholder_headers(rule: Rule) -> tuple[bytes, ...]:
    """The headers where the agent's placeholder for ``rule`` travels."""
    if rule.style is Style.ANTHROPIC:
        return (b"authorization", b"x-api-key")
    if rule.style is Style.CHATGPT:
        return (b"authorization", b"chatgpt-account-id")
    if rule.style is Style.CODEX_REFRESH:
        return ()  # in the body, which is only rewritten when the rule applies
    if rule.style is Style.HEADER:
        return (rule.header.encode("latin-1"),)
    return (b"authorization",)


def _bearer(headers: Headers, token: str) -> bool:
    """Whether the request's ``Authorization`` is ``Bearer <token>`` (``token`` not empty)."""
    scheme, _, sent = (header_value(headers, b"authorization") or b"").partition(b" ")
    return bool(token) and scheme.lower() == b"bearer" and sent.strip() == token.encode()


def apply_rule(rule: Rule, headers: Headers, creds: CredentialLookup, *,
               own: str = "") -> Injection:
    if rule.style is Style.ANTHROPIC:
        oauth = creds.get("anthropic_oauth_token")
        if oauth is not None:
            out = without(headers, b"authorization", b"x-api-key")
            out.append((b"authorization", b"Bearer " + (value := _enc(oauth.value))))
            return Injection(headers=_beta(out, add=True), credential="anthropic_oauth_token",
                             secrets=(value,))
        key = creds.get("anthropic_api_key")
        if key is not None:
            out = without(headers, b"authorization", b"x-api-key")
            out.append((b"x-api-key", value := _enc(key.value)))
            return Injection(headers=_beta(out, add=False), credential="anthropic_api_key",
                             secrets=(value,))
        return Injection(headers=headers, credential=None)
    if rule.style is Style.CHATGPT:
        access = creds.get("codex_access_token")
        if access is None or not _bearer(headers, own):
            return Injection(headers=headers, credential=None)
        out = without(headers, b"authorization")
        out.append((b"authorization", b"Bearer " + (value := _enc(access.value))))
        account = creds.get("codex_account_id")
        if account is not None:
            out = without(out, b"chatgpt-account-id")
            out.append((b"chatgpt-account-id", _enc(account.value)))
        return Injection(headers=out, credential="codex_access_token", secrets=(value,))
    if rule.style is Style.CODEX_REFRESH:
        # The body carries this credential; proxy.token_refresh swaps it (and the relay
        # drops the headers that name a client: refresh_relay.CLIENT_HEADERS).
        refresh = creds.get(rule.credential)
        if refresh is None:
            return Injection(headers=headers, credential=None)
        return Injection(headers=headers, credential=rule.credential,
                         secrets=body_forms(refresh.value))
    cred = creds.get(rule.credential)
    if cred is None:
        return Injection(headers=headers, credential=None)
    value = _enc(cred.value)
    secrets: tuple[bytes, ...] = (value,)
    if rule.style is Style.BEARER:
        name, rendered = b"authorization", b"Bearer " + value
    elif rule.style is Style.BASIC_X_ACCESS_TOKEN:
        basic = base64.b64encode(b"x-access-token:" + value)
        name, rendered, secrets = b"authorization", b"Basic " + basic, (value, basic)
    elif rule.style is Style.TOKEN_TOKEN:
        name, rendered = b"authorization", b"Token token=" + value
    else:
        name, rendered = rule.header.encode("latin-1"), value
    out = without(headers, name)
    out.append((name, rendered))
    return Injection(headers=out, credential=rule.credential, secrets=secrets)
