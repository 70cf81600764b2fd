"""The browser-session cookie: its names, attributes and reading (pure).

``HttpOnly`` (no script reads it), ``SameSite=Strict``, ``Path=/``, a 30-day ``Max-Age``
refreshed as the session slides. Over HTTPS (served here, or by a TLS-terminating proxy in
front) it is ``Secure`` and named with the ``__Host-`` prefix, which browsers accept only
from a secure origin, without ``Domain``, for ``Path=/``: no sibling host can plant or
overwrite it.
"""

from __future__ import annotations

from appliance.auth import SESSION_IDLE

PLAIN = "clauderon_session"
SECURE = "__Host-clauderon_session"
MAX_AGE = int(SESSION_IDLE.total_seconds())


def set_cookie(secret: str, *, https: bool, max_age: int = MAX_AGE) -> str:
    name = SECURE if https else PLAIN
    attrs = f"{name}={secret}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    return attrs + ("; Secure" if https else "")


def clear_cookies(*, https: bool) -> list[str]:
    """Headers that remove the cookie (both names, so a scheme change leaves nothing)."""
    out = [set_cookie("", https=False, max_age=0)]
    if https:
        out.append(set_cookie("", https=True, max_age=0))
    return out


def _pairs(header: str | None) -> dict[str, str]:
    """The ``name=value`` pairs of a ``Cookie`` header, read as browsers write it (RFC 6265
    5.4): split on ``;``, each at its first ``=``. Pairs this appliance never sets (a JSON
    value, a space, no ``=`` at all: any page on another port of this host can plant them)
    are skipped one by one, never taken for the end of the header. A repeated name: the last.
    """
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, eq, value = part.partition("=")
        if eq:
            out[name.strip()] = value.strip()
    return out


def read_cookie(header: str | None) -> str | None:
    """The session secret from a ``Cookie`` header (the ``__Host-`` one first)."""
    pairs = _pairs(header)
    for name in (SECURE, PLAIN):
        value = pairs.get(name)
        if value and len(value) <= 200:
            return value
    return None


def sent_secure(header: str | None) -> bool:
    """Whether the browser sent the ``__Host-`` cookie, which it keeps only for a secure
    origin: then it is on HTTPS even when a TLS-terminating proxy hands the request on in
    plain HTTP without an ``Origin`` (a same-origin GET), and a refreshed cookie must keep
    that name and ``Secure``."""
    return SECURE in _pairs(header)
