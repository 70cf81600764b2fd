"""The browser-session cookie: its names, attributes and reading (pure).

``HttpOnly`` (no script reads it), ``SameSite=Strict``, ``Path=/``, a 30-day ``Max-Age``
refreshed as the session slides, and ``Priority=High``: Chromium counts cookies per site, not
per host, and past 180 evicts the least recently used of every host of the site, so a
sibling host (another machine of the same tailnet) writing its own cookies evicted this one;
it now evicts ones of lower priority first (a sibling that marks its own ``High`` too still
can; a passkey signs the person in again). Over HTTPS (served here, or by a TLS-terminating proxy in
front) it is ``Secure`` and named with the ``__Host-`` prefix, which browsers accept only
from a secure origin, without ``Domain``, for ``Path=/``: no sibling host can plant or
overwrite it.

Cookies ignore ports: a browser sends this one to every port of the host, so a server on
another port (another local user's; another service behind the same ``tailscale serve``
name) receives it whenever the person's browser visits it. The cookie alone therefore signs
nothing in: a browser request must also present the sign-in's *bind* (:func:`bind_for`, a
MAC of the cookie's secret under the instance key), which the sign-in answer hands to the
page, the page keeps in ``localStorage`` (per origin, port included) and sends as the
:data:`BIND_HEADER` header, or on a WebSocket as the subprotocol ``clauderon.bind.<bind>``
beside :data:`PROTOCOL` (a page cannot set a WebSocket's headers).

The bind also tells the person's cookie from a planted one. A page on another port of a
loopback name (a secure context, so it may write ``Secure`` and ``__Host-`` cookies from
script) or, over plain HTTP, on a sibling host of the same site (``Domain=`` the parent) can
add a cookie of either name, which the browser sends beside the person's, before or after
it. So the session is the value, of either name, that the presented bind is the bind of
(:func:`bound_secret`); which value comes first or last decides nothing.
"""

from __future__ import annotations

import hashlib
import hmac

from appliance.auth import SESSION_IDLE

PLAIN = "clauderon_session"
SECURE = "__Host-clauderon_session"
MAX_AGE = int(SESSION_IDLE.total_seconds())


def set_cookie(secret: str, *, https: bool, max_age: int = MAX_AGE) -> str:
    name = SECURE if https else PLAIN
    attrs = (f"{name}={secret}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict; "
             "Priority=High")
    return attrs + ("; Secure" if https else "")


def clear_cookies(*, https: bool) -> list[str]:
    """Headers that remove the cookie (both names, so a scheme change leaves nothing)."""
    out = [set_cookie("", https=False, max_age=0)]
    if https:
        out.append(set_cookie("", https=True, max_age=0))
    return out


def _pairs(header: str | None) -> list[tuple[str, str]]:
    """The ``name=value`` pairs of a ``Cookie`` header in order, read as browsers write it
    (RFC 6265 5.4): split on ``;``, each at its first ``=``. Pairs this appliance never sets
    (a JSON value, a space, no ``=`` at all: any page on another port of this host can plant
    them) are skipped one by one, never taken for the end of the header. A repeated name is
    kept as often as it comes: which one is the person's is for the bind to say."""
    out: list[tuple[str, str]] = []
    for part in (header or "").split(";"):
        name, eq, value = part.partition("=")
        if eq:
            out.append((name.strip(), value.strip()))
    return out


#: At most this many values are tried against the bind: more than a browser keeps for one
#: host (Chromium: 180), so a neighbour filling the jar cannot push the person's out of reach.
MAX_CANDIDATES = 256


def candidates(header: str | None) -> list[str]:
    """Every value that could be a session secret, the ``__Host-`` name's first, each once."""
    pairs = _pairs(header)
    found = [v for name in (SECURE, PLAIN) for n, v in pairs
             if n == name and v and len(v) <= 200]
    return list(dict.fromkeys(found))[:MAX_CANDIDATES]


def bound_secret(key: bytes, header: str | None, presented: str | None) -> str | None:
    """The session secret of a ``Cookie`` header: the one value, of either name, that
    ``presented`` is the bind of; None when there is none (a cookie never counts alone)."""
    if presented is None:
        return None
    return next((s for s in candidates(header) if bound(key, s, presented)), None)


def sent_secure(header: str | None) -> bool:
    """Whether the browser sent the ``__Host-`` cookie, which it keeps only for a secure
    origin: then it is on HTTPS even when a TLS-terminating proxy hands the request on in
    plain HTTP without an ``Origin`` (a same-origin GET), and a refreshed cookie must keep
    that name and ``Secure``."""
    return any(name == SECURE for name, _ in _pairs(header))


BIND_HEADER = "x-clauderon-bind"
#: The subprotocol a browser's WebSocket asks for, and the one the appliance accepts.
PROTOCOL = "clauderon"
_BIND_PROTOCOL = "clauderon.bind."


def bind_for(key: bytes, secret: str) -> str:
    """The bind of the browser session whose cookie holds ``secret``: only the appliance,
    which holds ``key``, can make it from the cookie."""
    return hmac.new(key, b"browser-bind\0" + secret.encode(), hashlib.sha256).hexdigest()


def presented_bind(header: str | None, protocols: str | None) -> str | None:
    """The bind a request presents: its header, or a WebSocket's ``clauderon.bind.`` one."""
    if header:
        return header.strip()
    for offered in (p.strip() for p in (protocols or "").split(",")):
        if offered.startswith(_BIND_PROTOCOL):
            return offered[len(_BIND_PROTOCOL):]
    return None


def bound(key: bytes, secret: str, presented: str | None) -> bool:
    """Whether ``presented`` is the bind of ``secret`` (compared in constant time)."""
    return presented is not None and hmac.compare_digest(
        bind_for(key, secret).encode(), presented.encode("utf-8", "replace"))


def offers_protocol(protocols: str | None) -> bool:
    return PROTOCOL in (p.strip() for p in (protocols or "").split(","))
