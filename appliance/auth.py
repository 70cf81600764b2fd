"""Sign-in records and their rules: one-time links, browser sessions, passkeys, API tokens.

Who may drive the appliance over TCP (DESIGN.md, "HTTP surface"): a browser signed in with a
passkey or a one-time link from the CLI, or a script holding a bearer token. Every secret is
random (256 bits), shown once, and stored only as its SHA-256 digest, so a copy of the
database signs nobody in. Each record has a short public id (``s-``, ``p-``, ``t-``, ``l-``
and eight hex digits) that lists show and ``revoke`` takes.

This module is pure: records, lifetimes and the decisions about them. The SQLite side is
:mod:`appliance.authstore`; the HTTP side (cookies, the guard) lives in ``api``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from appliance.errors import Unauthorized
from appliance.wire_fields import iso

#: A browser session ends after this long without a request (sliding expiry).
SESSION_IDLE = timedelta(days=30)
#: The last-seen time (and the cookie's Max-Age) is refreshed at most this often.
TOUCH_EVERY = timedelta(hours=1)
#: A one-time sign-in link works once, within this long of being made.
LINK_LIFETIME = timedelta(minutes=5)
#: Adding a passkey needs a sign-in at most this old (re-authentication before a change of
#: authenticators).
FRESH_FOR = timedelta(minutes=10)
#: A WebAuthn ceremony must finish within this long of its options.
CHALLENGE_LIFETIME = timedelta(minutes=5)
#: A name given to a passkey or a token, at most this long.
MAX_NAME = 80


class Kind(StrEnum):
    SESSION = "session"
    PASSKEY = "passkey"
    TOKEN = "token"  # noqa: S105 (a kind of record, not a secret)
    LINK = "link"


PREFIX: dict[Kind, str] = {Kind.SESSION: "s-", Kind.PASSKEY: "p-", Kind.TOKEN: "t-",
                           Kind.LINK: "l-"}


class Scope(StrEnum):
    """What a bearer token may do: read (GET routes, read-only WebSockets) or everything."""

    READ_ONLY = "read-only"
    READ_WRITE = "read-write"


class Method(StrEnum):
    """How a browser session was signed in."""

    LINK = "link"
    PASSKEY = "passkey"


def new_id(kind: Kind) -> str:
    return PREFIX[kind] + secrets.token_hex(4)


def kind_of(record_id: str) -> Kind | None:
    for kind, prefix in PREFIX.items():
        if record_id.startswith(prefix):
            return kind
    return None


def new_secret(prefix: str = "") -> str:
    """A bearer secret: 256 random bits, URL-safe (``crn_`` marks an API token)."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the database keeps of a secret, and what a presented one is looked up by."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same_digest(presented: str, stored: str) -> bool:
    return hmac.compare_digest(digest(presented), stored)


def label_for(user_agent: str) -> str:
    """A short, printable name for a browser, from its User-Agent (shown in device lists)."""
    ua = user_agent or ""
    browser = next((b for b in ("Edg", "Firefox", "Chrome", "Safari") if f"{b}/" in ua), "")
    system = next((s for s in ("Android", "iPhone", "iPad", "Mac OS X", "Windows", "Linux",
                               "CrOS") if s in ua), "")
    names = {"Edg": "Edge", "Mac OS X": "macOS", "CrOS": "ChromeOS"}
    words = [names.get(browser, browser), names.get(system, system)]
    text = " on ".join(w for w in words if w) or "a browser"
    return "".join(ch for ch in text if ch.isprintable())[:MAX_NAME]


def clean_name(raw: object, default: str) -> str:
    """A user-given record name: printable, trimmed, bounded; the default when empty."""
    text = "".join(ch for ch in str(raw or "") if ch.isprintable()).strip()[:MAX_NAME]
    return text or default


@dataclass(frozen=True, slots=True, kw_only=True)
class BrowserSession:
    id: str
    method: Method
    passkey_id: str | None
    label: str
    created_at: datetime
    last_seen_at: datetime

    @property
    def expires_at(self) -> datetime:
        return self.last_seen_at + SESSION_IDLE

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def needs_touch(self, now: datetime) -> bool:
        return now - self.last_seen_at >= TOUCH_EVERY

    def fresh(self, now: datetime) -> bool:
        """Signed in recently enough to add a passkey."""
        return now - self.created_at < FRESH_FOR

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "kind": str(Kind.SESSION), "method": str(self.method),
                "passkey_id": self.passkey_id, "name": self.label,
                "created_at": self.created_at.isoformat(),
                "last_used_at": self.last_seen_at.isoformat(),
                "expires_at": self.expires_at.isoformat()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Passkey:
    id: str
    credential_id: str  # base64url, as the browser names it
    public_key: bytes  # COSE
    sign_count: int
    rp_id: str
    name: str
    backed_up: bool
    created_at: datetime
    last_used_at: datetime | None

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "kind": str(Kind.PASSKEY), "name": self.name,
                "rp_id": self.rp_id, "backed_up": self.backed_up,
                "created_at": self.created_at.isoformat(),
                "last_used_at": iso(self.last_used_at)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiToken:
    id: str
    scope: Scope
    name: str
    created_at: datetime
    last_used_at: datetime | None

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "kind": str(Kind.TOKEN), "scope": str(self.scope),
                "name": self.name, "created_at": self.created_at.isoformat(),
                "last_used_at": iso(self.last_used_at)}


@dataclass(frozen=True, slots=True, kw_only=True)
class SignInLink:
    id: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "kind": str(Kind.LINK), "created_at": self.created_at.isoformat(),
                "expires_at": self.expires_at.isoformat(),
                "used_at": iso(self.used_at)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """A pending WebAuthn ceremony: single use, bound to the origin it was asked from."""

    id: str
    kind: str  # "register" | "login"
    challenge: bytes
    rp_id: str
    origin: str
    session_id: str | None  # the browser session adding a passkey
    expires_at: datetime


class Principal(StrEnum):
    """Who a request comes from, as the HTTP layer established it."""

    LOCAL = "local"  # the Unix socket: the appliance's owner
    BROWSER = "browser"
    TOKEN = "token"  # noqa: S105 (a kind of record, not a secret)


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """The authenticated caller of one request (``api`` puts it in the request's scope)."""

    principal: Principal
    scope: Scope
    session: BrowserSession | None = None
    token_id: str | None = None

    @property
    def can_write(self) -> bool:
        return self.scope is Scope.READ_WRITE


LOCAL = Caller(principal=Principal.LOCAL, scope=Scope.READ_WRITE)


# --- the passkey sign-in ceremony, carried by its token -----------------------------------
# Asking for sign-in options writes nothing: the challenge, its expiry and a MAC over them,
# the relying party and the origin travel in the ceremony's token. Only an answer that
# verified is recorded (once: ``AuthStore.answer_login``), so no flood of unauthenticated
# requests can fill the database or crowd out the person's own ceremony.
_LOGIN_LABEL = b"clauderon passkey sign-in\0"
_LOGIN_MAC_BYTES = 16
_UNKNOWN_LOGIN = ("this passkey request is unknown, or was made for another address; "
                  "start again")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _login_mac(key: bytes, body: str, rp_id: str, origin: str) -> bytes:
    message = _LOGIN_LABEL + "\0".join((body, rp_id, origin)).encode()
    return hmac.new(key, message, hashlib.sha256).digest()[:_LOGIN_MAC_BYTES]


def seal_login(key: bytes, *, challenge: bytes, rp_id: str, origin: str,
               expires_at: datetime) -> str:
    """The token of a sign-in ceremony for ``rp_id`` and ``origin`` (pure)."""
    body = f"{_b64(challenge)}.{int(expires_at.timestamp())}"
    return f"{body}.{_b64(_login_mac(key, body, rp_id, origin))}"


def open_login(key: bytes, token: str, *, rp_id: str, origin: str,
               now: datetime) -> tuple[bytes, datetime]:
    """The challenge a ceremony's token carries and when it expires; :class:`Unauthorized`
    for a token made elsewhere, altered, for another address, or expired (pure)."""
    parts = token.split(".")
    try:
        if len(parts) != 3 or not parts[1].isdigit():
            raise ValueError("not a ceremony token")
        challenge, mac = _unb64(parts[0]), _unb64(parts[2])
        expires_at = datetime.fromtimestamp(int(parts[1]), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise Unauthorized(_UNKNOWN_LOGIN) from exc
    if not hmac.compare_digest(mac, _login_mac(key, f"{parts[0]}.{parts[1]}", rp_id, origin)):
        raise Unauthorized(_UNKNOWN_LOGIN)
    if now >= expires_at:
        raise Unauthorized("the passkey request expired; start again")
    return challenge, expires_at
