"""The Codex token refresh, seen from the middle. Pure, no I/O.

Codex in a container holds a dummy ``auth.json``. When it refreshes, it POSTs its dummy
refresh token (its session's ChatGPT placeholder) to ``auth.openai.com/oauth/token``. The
proxy buffers that small body and :func:`rewrite_refresh_request` puts the real refresh
token in, for that dummy alone (an agent never given the login refreshes it not); the
answer carries new real tokens, which :func:`capture_refresh_response` takes out (for the
proxy to inject from now on and to write back to the host's ``auth.json`` through a
:class:`TokenSink`) and replaces with placeholders before the container sees it: the
container keeps its dummy refresh token, gets it for the access token too, and an unsigned
copy of the id_token's claims (Codex reads the account id and plan from it; a signature
would make it a credential).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

from appliance.credentials.chatgpt import (  # noqa: F401 - the proxy's names for them
    PLACEHOLDER_TOKEN,
    UNSIGNED,
    unsigned_copy,
)

#: Bodies larger than this are not a token refresh; they are passed on untouched.
MAX_REFRESH_BODY = 64 * 1024


class TokenSink(Protocol):
    """Receives refreshed tokens (auth.json keys); writes them back to the host's file."""

    def __call__(self, tokens: Mapping[str, str | None]) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshRequest:
    body: bytes
    #: The dummy refresh token the container sent (it gets this one back).
    placeholder: str | None
    #: The type the body is sent as (rewritten: its own alone), or empty (untouched).
    content_type: bytes = b""
    #: Why the refresh is not sent at all (it asks for another client or scope), or empty.
    refused: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshResponse:
    body: bytes
    #: The real tokens from the answer (auth.json keys), empty when there were none.
    tokens: Mapping[str, str]
    #: Any other token taken out of it (not kept: not where Codex reads one).
    hidden: tuple[str, ...] = ()
    #: Whether the answer was JSON or a form (another may hold a token the proxy missed).
    readable: bool = True


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


#: The one grant the real refresh token goes in for: a refresh. Another (a token exchange
#: for an API key, say) is the person's to make, and goes with the container's dummy.
GRANT = "refresh_token"
#: The names a refresh's body holds (Codex sends these), each once. A body with another
#: goes with the dummy: a server may read it as a second grant (PHP reads ``grant.type``
#: as ``grant_type``, others ``grant_type[]`` as a list) and run the agent's own code.
NAMES = frozenset({"grant_type", "refresh_token", "client_id", "scope", "refresh_reason"})
#: The client the Codex CLI refreshes its login as (the person's refresh token was issued
#: to it), and the scope its earlier versions named; today's names none, and the endpoint
#: keeps the scope the login was granted.
CODEX_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
CODEX_SCOPE = "openid profile email"
#: Why Codex refreshes (``proactive_expiry``): a word, passed on as it says.
_REASON = re.compile(r"[a-z_]{1,40}")


def _params(body: bytes, media: str) -> dict[str, str] | None:
    """A refresh's parameters as its declared type reads them, or None: another type,
    another grant, another name, a name twice, a value not a string."""
    doc: Any
    if media == FORM:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        doc = dict(pairs)
        if len(doc) != len(pairs):
            return None
    elif media == JSON:
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            return None
    else:
        return None
    if not isinstance(doc, dict) or not set(doc) <= NAMES or "refresh_token" not in doc \
            or doc.get("grant_type") != GRANT:
        return None
    if not all(isinstance(value, str) for value in doc.values()):
        return None
    return doc


def _unlike_codex(params: Mapping[str, str]) -> str:
    """What a refresh asks for otherwise than Codex does (``client``, ``scope``), or empty:
    another scope would have the person's login rotated into a narrowed one (kept and
    injected for every session), another client the endpoint refuse or revoke the chain."""
    if params.get("client_id", CODEX_CLIENT_ID) != CODEX_CLIENT_ID:
        return "client"
    if set(params.get("scope", CODEX_SCOPE).split()) != set(CODEX_SCOPE.split()):
        return "scope"
    if not _REASON.fullmatch(params.get("refresh_reason", "none")):
        return "refresh_reason"
    return ""


def rewrite_refresh_request(body: bytes, content_type: str, real: str, *, own: str,
                            query: str = "") -> RefreshRequest:
    """The request body with the real refresh token in place of the container's dummy
    (``own``, the session's ChatGPT placeholder: another, or none, goes untouched: an agent
    never given the login rotates it not), for a refresh (:data:`GRANT`) only, and only
    where the body alone names the grant: a server may read parameters from the URL's
    ``query`` too (another grant, the agent's code), and run that grant with the answer
    kept as the person's. The body is written anew in its type alone (``content_type``: a
    second one the agent sent goes), with Codex's client and scope (``refused``: the agent
    asked for others)."""
    media = _media(content_type)
    params = None if query else _params(body, media)
    if params is None or not own or params["refresh_token"] != own:
        return RefreshRequest(body=body, placeholder=None)
    if unlike := _unlike_codex(params):
        return RefreshRequest(body=body, placeholder=None, refused=(
            f"this refresh of the person's Codex login asks for another {unlike} than Codex "
            f"does (client_id {CODEX_CLIENT_ID}, scope {CODEX_SCOPE!r} or none, a "
            "refresh_reason of lower-case letters): the person's refresh token goes with "
            "those alone, as Codex sends it. Send the refresh with Codex's client_id and "
            "scope, or with neither."))
    old = params["refresh_token"]
    sent = {"client_id": CODEX_CLIENT_ID, "grant_type": GRANT}
    if "refresh_reason" in params:
        sent["refresh_reason"] = params["refresh_reason"]
    sent["refresh_token"] = real
    if "scope" in params:
        sent["scope"] = CODEX_SCOPE
    params = sent
    out = urlencode(params) if media == FORM else json.dumps(params)
    return RefreshRequest(body=out.encode(), placeholder=old, content_type=media.encode())


def _tokenish(name: str) -> bool:
    """Whether a name is a token's, in any spelling: ``accessToken``, ``Refresh-Token``."""
    return name.lower().replace("_", "").replace("-", "").endswith(("token", "secret", "key"))


def _hidden(node: Any, taken: list[str], *, under: bool) -> Any:
    """``node`` with each string under a token's name (at any depth) taken out."""
    if isinstance(node, dict):
        return {k: _hidden(v, taken, under=under or _tokenish(str(k))) for k, v in node.items()}
    if isinstance(node, list):
        return [_hidden(v, taken, under=under) for v in node]
    if under and isinstance(node, str) and node:
        taken.append(node)
        return PLACEHOLDER_TOKEN
    return node


def _read_answer(body: bytes) -> tuple[Any, bool] | None:
    """An answer's document and whether it is a form (the query syntax; GitHub's token
    endpoint answers so), or None: neither JSON nor a form."""
    try:
        return json.loads(body), False
    except (ValueError, RecursionError):
        pass
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True), True
    except ValueError:
        return None


def capture_refresh_response(body: bytes, placeholder: str | None) -> RefreshResponse:
    """Take the real tokens out of a refresh answer; ``placeholder`` (the dummy the refresh
    carried) goes to the container for the access and refresh tokens.
    Those where Codex reads them (the top of the document) are kept; any other string
    under a token's name, at any depth, is taken out too (``hidden``)."""
    read = _read_answer(body)
    if read is None:
        return RefreshResponse(body=body, tokens={}, readable=False)
    doc, form = read
    pairs = doc if form else doc.items() if isinstance(doc, dict) else [("", doc)]
    stand_in = {"access_token": placeholder or PLACEHOLDER_TOKEN,
                "refresh_token": placeholder or PLACEHOLDER_TOKEN}
    tokens: dict[str, str] = {}
    taken: list[str] = []
    out: list[tuple[str, Any]] = []
    try:
        for key, value in pairs:
            if key in CREDENTIAL_FOR_TOKEN and isinstance(value, str) and value:
                tokens[key] = value
                out.append((key, stand_in.get(key) or unsigned_copy(value)))
            else:
                out.append((key, _hidden(value, taken, under=_tokenish(key))))
    except RecursionError:
        return RefreshResponse(body=body, tokens={}, readable=False)
    if not tokens and not taken:
        return RefreshResponse(body=body, tokens={})
    text = urlencode(out) if form else json.dumps(dict(out) if isinstance(doc, dict) else out[0][1])
    return RefreshResponse(body=text.encode(), tokens=tokens, hidden=tuple(taken))


#: auth.json token key -> the credential name the proxy injects it under
CREDENTIAL_FOR_TOKEN: dict[str, str] = {
    "access_token": "codex_access_token",
    "refresh_token": "codex_refresh_token",
    "id_token": "codex_id_token",
}
