"""What the TCP listener lets through, decided from a request's facts alone (pure).

Theory of operation. A browser can be made to send requests to this listener by any page it
visits, and a rebinding DNS name can make a page same-origin with it. So every request is
judged, signed in or not, before any route runs (:mod:`api.guard` is the I/O shell):

1. ``Host`` must name this appliance: loopback names, the bind address, ``public_names``.
   A rebinding page's requests carry its own name and stop here (421).
2. ``Origin``, when present, must be this appliance as the browser sees it: the scheme and
   ``Host`` it was reached at, or ``https://<public name>`` behind a TLS-terminating proxy.
   Every state-changing request and every WebSocket needs one, unless it authenticates with
   a bearer token (browsers cannot attach one cross-origin without a CORS preflight, which
   is never answered). ``Sec-Fetch-Site`` refuses cross-site and same-site subresource
   requests too: ``localhost:8080`` is *same-site* with ``localhost:3030``, and cookies
   (even ``SameSite=Strict``) go along.
3. Bodies are JSON with ``Content-Type: application/json`` (multipart only for uploads):
   the types a page can send without a preflight (``text/plain``, forms) get 415.
4. Routes other than health, the web UI's files and sign-in need a caller (``/metrics``
   too, though it lives outside ``/api``); read-only tokens reach GET routes and the events
   WebSocket only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from appliance.auth import Caller
from appliance.config import Settings
from appliance.errors import (
    ClauderonError,
    Forbidden,
    MisdirectedHost,
    NotFound,
    Unauthorized,
    UnsupportedMediaType,
)
from appliance.methods import READS

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SIGN_IN_ROUTES = frozenset({
    ("GET", "/api/auth/me"),
    ("POST", "/api/auth/link"),
    ("POST", "/api/auth/passkey/login/options"),
    ("POST", "/api/auth/passkey/login"),
})
READ_ONLY_SOCKETS = frozenset({"/ws/events"})
UPLOAD = re.compile(r"/api/sessions/[^/]+/uploads")
WILDCARDS = frozenset({"0.0.0.0", "::", ""})

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' blob: data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
)
HSTS = ("strict-transport-security", "max-age=31536000")


def media_type(content_type: str | None) -> str:
    """The media type a ``Content-Type`` header names, lower-case, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def not_json(content_type: str | None) -> UnsupportedMediaType:
    """The refusal of a body not declared as JSON (here, and by the API's JSON reader)."""
    return UnsupportedMediaType("send the body as JSON with Content-Type: application/json "
                                f"(got {(content_type or 'none')[:80]})")


class Access(StrEnum):
    OPEN = "open"  # health, the web UI's files
    SIGN_IN = "sign-in"
    READ = "read"
    WRITE = "write"


#: Routes outside ``/api`` and ``/ws`` that still need a caller (everything else out there is
#: the web UI's files). Matched on the path with its slashes collapsed, and on every path
#: below it, so ``//metrics`` or ``/metrics/`` cannot pass for the web UI's.
PRIVATE_PREFIXES = ("/metrics",)


def _private(path: str) -> bool:
    collapsed = re.sub(r"/+", "/", path)
    return any(collapsed == p or collapsed.startswith(p + "/") for p in PRIVATE_PREFIXES)


def canonical(path: str) -> bool:
    """Whether ``path`` is spelt the one way the router and this policy read alike: a single
    leading slash and no empty segment (no absolute-form target, no ``//``)."""
    return path.startswith("/") and "//" not in path


def classify(method: str, path: str, *, websocket: bool) -> Access:
    if websocket:
        return Access.READ if path in READ_ONLY_SOCKETS else Access.WRITE
    if (method, path) in SIGN_IN_ROUTES:
        return Access.SIGN_IN
    safe = method in READS
    if safe and path == "/api/health":
        return Access.OPEN
    if safe and not (path.startswith(("/api/", "/ws/")) or path in ("/api", "/ws")
                     or _private(path)):
        return Access.OPEN
    return Access.READ if safe else Access.WRITE


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Origin | None:
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in (
                "", "/") or parts.query or parts.fragment or parts.username:
            return None
        return cls(parts.scheme, parts.hostname.rstrip("."),
                   port or (443 if parts.scheme == "https" else 80))


def host_name(host_header: str) -> str | None:
    """The name part of a ``Host`` header, lower-case (None when it is not one)."""
    found = Origin.parse(f"http://{host_header}") if host_header else None
    return found.host if found else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What the policy reads of one request (headers already decoded)."""

    method: str
    path: str
    websocket: bool
    scheme: str  # "http" | "https" as this listener serves it
    host: str
    origin: str | None
    content_type: str | None
    has_body: bool
    fetch_site: str | None
    fetch_mode: str | None
    bearer: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    hosts: frozenset[str]
    public_names: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        hosts = set(LOOPBACK_NAMES) | set(settings.public_names)
        bind = settings.http_host.strip("[]").lower()
        if bind not in WILDCARDS:
            hosts.add(bind)
        return cls(hosts=frozenset(hosts), public_names=frozenset(settings.public_names))

    def host_ok(self, host_header: str) -> bool:
        return host_name(host_header) in self.hosts

    def origin_ok(self, origin: str, host_header: str, scheme: str) -> bool:
        seen = Origin.parse(origin)
        if seen is None or seen.host not in self.hosts:
            return False
        if seen == Origin.parse(f"{scheme}://{host_header}"):
            return True  # the page came from exactly where this request went
        # Behind a TLS-terminating proxy (tailscale serve): the browser is on https://name.
        return seen.scheme == "https" and seen.port == 443 and seen.host in self.public_names

    def check(self, f: Facts) -> ClauderonError | None:
        """Refusals that do not depend on who is asking (steps 1-3)."""
        if not canonical(f.path):
            # The router takes ``//api/x``, ``api/x`` and ``http://h/api/x`` for ``/api/x``;
            # judged as written, they would pass for the web UI's open files.
            return NotFound(f"no route {f.path[:100]!r}: a path starts with one slash and "
                            "has no empty segment")
        if not self.host_ok(f.host):
            return MisdirectedHost(
                f"this appliance does not answer to the host {f.host[:100]!r}; if that is "
                "its name, add it to [server] public_names in config.toml")
        if f.origin is not None and not self.origin_ok(f.origin, f.host, f.scheme):
            return Forbidden(f"requests from {f.origin[:100]!r} are not accepted; open the "
                             "web UI at the appliance's own address")
        changes = f.websocket or f.method not in READS
        if changes and f.origin is None and not f.bearer:
            return Forbidden("a browser request that changes something must say its Origin; "
                             "scripts authenticate with a bearer token instead")
        navigation = f.method in READS and f.fetch_mode == "navigate" and not f.websocket
        if f.fetch_site in ("cross-site", "same-site") and not navigation:
            return Forbidden("requests from other sites are not accepted")
        if f.has_body and not self._body_type_ok(f):
            return not_json(f.content_type)
        return None

    @staticmethod
    def _body_type_ok(f: Facts) -> bool:
        media = media_type(f.content_type)
        if media == "application/json":
            return True
        return media == "multipart/form-data" and f.method == "POST" and bool(
            UPLOAD.fullmatch(f.path))


def check_caller(access: Access, caller: Caller | None) -> ClauderonError | None:
    """Step 4: may this caller use a route of this kind?"""
    if access in (Access.OPEN, Access.SIGN_IN):
        return None
    if caller is None:
        return Unauthorized("sign in first: run `clauderon web` on the appliance's machine "
                            "for a sign-in link, or use a passkey at /signin")
    if access is Access.WRITE and not caller.can_write:
        return Forbidden("this token is read-only; it may read (GET) but not change anything")
    return None


def security_headers(*, https: bool) -> list[tuple[bytes, bytes]]:
    pairs = [*HEADERS, HSTS] if https else list(HEADERS)
    return [(k.encode(), v.encode()) for k, v in pairs]
