"""The browser-session cookie: its names, attributes and reading (pure).

``HttpOnly`` (no script reads it), ``SameSite=Strict``, ``Path=/``, a 30-day ``Max-Age``
refreshed as the session slides. Over HTTPS (served here, or by a TLS-terminating proxy in
front) it is ``Secure`` and named with the ``__Host-`` prefix, which browsers accept only
from a secure origin, without ``Domain``, for ``Path=/``: no sibling host can plant or
overwrite it.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

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


def read_cookie(header: str | None) -> str | None:
    """The session secret from a ``Cookie`` header (the ``__Host-`` one first)."""
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    for name in (SECURE, PLAIN):
        morsel = jar.get(name)
        if morsel is not None and morsel.value and len(morsel.value) <= 200:
            return morsel.value
    return None


def sent_secure(header: str | None) -> bool:
    """Whether the browser sent the ``__Host-`` cookie, which it keeps only for a secure
    origin: then it is on HTTPS even when a TLS-terminating proxy hands the request on in
    plain HTTP without an ``Origin`` (a same-origin GET), and a refreshed cookie must keep
    that name and ``Secure``."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header or "")
    except CookieError:
        return False
    return SECURE in jar
