"""The credential rule table: which host gets which credential, in which header.

Pure data and matching, no I/O. :data:`DEFAULT_RULES` is the built-in table; ``proxy.toml``
adds ``[[rules]]`` entries and the Grafana host (``config.py`` builds the final table).
:mod:`proxy.inject` applies a matched rule to a request's headers; :mod:`proxy.policy`
decides whether it is applied at all.

Matching: an exact host matches itself; ``*.example.com`` matches every subdomain of
``example.com`` but not the apex. Exact rules win over wildcards; among rules of the same
kind the first in the table wins, so rules from ``proxy.toml`` (put first) override the
built-in ones. A rule with a ``path`` matches only requests whose path is it or below it
(whole segments: not ``/oauth/token-echo``), as sent and as a server may read it
(:func:`server_path`): ``/oauth/token/../../x`` is ``/x``.
A rule names its ``port`` (443 unless it says otherwise): the policy injects only over TLS
to that port, and strips the placeholder everywhere else (``policy.py``).
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

from appliance.errors import ConfigError, refuse_unknown


class Style(StrEnum):
    BEARER = "bearer"  # Authorization: Bearer <value>
    BASIC_X_ACCESS_TOKEN = "basic-x-access-token"  # noqa: S105 - a style name  # Basic base64(x-access-token:<value>)
    TOKEN_TOKEN = "token-token"  # noqa: S105 - a style name  # Authorization: Token token=<value> (PagerDuty)
    HEADER = "header"  # <header>: <value>
    ANTHROPIC = "anthropic"  # OAuth token as Bearer + beta flag, else API key as x-api-key
    CHATGPT = "chatgpt"  # Codex access token as Bearer + ChatGPT-Account-Id
    CODEX_REFRESH = "codex-refresh"  # real refresh token into the body, new tokens captured


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    host: str
    style: Style
    #: The credential name; the ANTHROPIC and CHATGPT styles use fixed pairs of names.
    credential: str = ""
    #: The header the HEADER style sets (and whose placeholder it removes).
    header: str = "authorization"
    path: str = ""
    #: The only port the credential is sent to (always over TLS).
    port: int = 443

    @property
    def credentials(self) -> tuple[str, ...]:
        if self.style is Style.ANTHROPIC:
            return ("anthropic_oauth_token", "anthropic_api_key")
        if self.style is Style.CHATGPT:
            return ("codex_access_token", "codex_account_id")
        return (self.credential,)


def _r(host: str, style: Style, credential: str = "", path: str = "") -> Rule:
    return Rule(host=host, style=style, credential=credential, path=path)


#: Where at ChatGPT the Codex CLI goes with the person's login (its Responses API and
#: models, its account check and usage, its plugins and apps; read from the CLI's requests
#: and the paths its binary names): the login goes to no other path there, for the rest
#: (``/backend-api/conversations``, memories, settings, shared links) is the person's own.
CODEX_AT_CHATGPT = ("/backend-api/codex", "/backend-api/wham", "/backend-api/plugins",
                    "/backend-api/ps", "/api/codex")

DEFAULT_RULES: tuple[Rule, ...] = (
    _r("api.anthropic.com", Style.ANTHROPIC),
    _r("api.openai.com", Style.BEARER, "openai_api_key"),
    *(_r(host, Style.CHATGPT, path=path) for host in ("chatgpt.com", "*.chatgpt.com",
                                                       "chat.openai.com")
      for path in CODEX_AT_CHATGPT),
    _r("auth.openai.com", Style.CODEX_REFRESH, "codex_refresh_token", path="/oauth/token"),
    # Gemini CLI (API-key mode) sends its key in x-goog-api-key.
    Rule(host="generativelanguage.googleapis.com", style=Style.HEADER,
         credential="gemini_api_key", header="x-goog-api-key"),
    _r("api.github.com", Style.BEARER, "github_token"),
    _r("github.com", Style.BASIC_X_ACCESS_TOKEN, "github_token"),
    _r("registry.npmjs.org", Style.BEARER, "npm_token"),
    _r("registry-1.docker.io", Style.BEARER, "docker_token"),
    _r("auth.docker.io", Style.BEARER, "docker_token"),
    _r("sentry.io", Style.BEARER, "sentry_auth_token"),
    _r("api.pagerduty.com", Style.TOKEN_TOKEN, "pagerduty_token"),
)

#: Model API hosts: read-only sessions may still POST here (the agent cannot work otherwise);
#: what is called here is metered and under the budgets. Every host a model credential goes
#: to is one (a test checks it): a host with the credential and not on this list spent it
#: unmetered, past any budget.
DEFAULT_MODEL_HOSTS: tuple[str, ...] = (
    "api.anthropic.com",
    "api.openai.com",
    "chatgpt.com",
    "*.chatgpt.com",
    "chat.openai.com",
    "auth.openai.com",
    "generativelanguage.googleapis.com",
)


def host_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower(), host.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


@functools.lru_cache(maxsize=4096)
def matches_any(patterns: tuple[str, ...], host: str) -> bool:
    """Whether ``host`` matches one of ``patterns`` (asked for every request: kept)."""
    return any(host_matches(pattern, host) for pattern in patterns)


def server_path(target: str) -> str:
    """A request target's path as a server may read it: without its query, escapes
    decoded (again, for one that decodes twice), a backslash as a slash, each segment's
    ``;`` parameters dropped (``..;`` is ``..`` to Tomcat), dot segments resolved; a
    trailing slash kept."""
    path = target.split("?", 1)[0]
    for _ in range(4):
        if "%" not in path:
            break
        path = unquote(path)
    path = path.replace("\\", "/")
    path = "/".join(segment.split(";", 1)[0] for segment in path.split("/"))
    read = "/" + posixpath.normpath("/" + path).lstrip("/")
    return read + "/" if path.endswith("/") and read != "/" else read


def under(prefix: str, path: str) -> bool:
    """Whether ``path`` is ``prefix`` or a path below it: whole segments, so that
    ``/oauth/token`` holds ``/oauth/token/x`` and not ``/oauth/token-echo``."""
    if not path.startswith(prefix):
        return False
    return len(path) == len(prefix) or prefix.endswith("/") or path[len(prefix)] in "/?;"


def plain(read: str) -> bool:
    """Whether a path as :func:`server_path` read it leaves no server another reading: no
    escape still there (IIS's ``%u002e``, a fifth level), nothing outside printable ASCII
    (an overlong ``%c0%ae`` some decoders take for a dot; a NUL or a tab some drop)."""
    return "%" not in read and read.isascii() and read.isprintable()


def _on_path(rule: Rule, path: str) -> bool:
    read = server_path(path)
    return under(rule.path, path) and plain(read) and under(rule.path, read)


def match_rule(rules: Iterable[Rule], host: str, path: str) -> Rule | None:
    """The rule for ``host`` and ``path``, or None (the request passes untouched)."""
    wildcard: Rule | None = None
    for rule in rules:
        if rule.path and not _on_path(rule, path):
            continue
        if not host_matches(rule.host, host):
            continue
        if not rule.host.startswith("*."):
            return rule
        if wildcard is None:
            wildcard = rule
    return wildcard


def rule_from_toml(entry: Mapping[str, object], origin: str) -> Rule:
    """One ``[[rules]]`` table of ``proxy.toml``; :class:`ConfigError` naming the key."""
    refuse_unknown(entry, ("host", "credential", "style", "header", "path", "port"),
                   f"{origin} [[rules]]")
    host = entry.get("host")
    if not isinstance(host, str) or not host:
        raise ConfigError(f"{origin}: a [[rules]] entry needs host = \"...\"")
    try:
        style = Style(str(entry.get("style", "bearer")))
    except ValueError as exc:
        names = ", ".join(s.value for s in Style)
        raise ConfigError(f"{origin}: rule for {host}: style must be one of {names}") from exc
    credential = entry.get("credential", "")
    if not isinstance(credential, str):
        raise ConfigError(f"{origin}: rule for {host}: credential must be a string")
    if style not in (Style.ANTHROPIC, Style.CHATGPT) and not credential:
        raise ConfigError(f"{origin}: rule for {host}: credential = \"<name>\" is required")
    header = str(entry.get("header", "authorization")).lower()
    port = entry.get("port", 443)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{origin}: rule for {host}: port must be a number from 1 to 65535")
    return Rule(
        host=host.lower(), style=style, credential=credential, header=header,
        path=str(entry.get("path", "")), port=port,
    )
