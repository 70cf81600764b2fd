"""Reading request heads: targets, proxy credentials, hop-by-hop headers. Pure, no I/O.

h11 turns bytes into events; this module turns an event's fields into the facts the policy
(:mod:`proxy.policy`) decides on: which host and port a CONNECT or absolute-form request
names, which session its ``Proxy-Authorization`` claims, and which headers belong to one hop
only and must not be forwarded. Every parser answers None (or raises :class:`BadRequest`)
on malformed input; none of them may crash on bytes an agent chose.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import socket
from dataclasses import dataclass

from proxy.inject import Headers

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$"
)

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
    }
)


#: Framing headers: a ``Connection`` header naming them does not drop them.
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})


class BadRequest(ValueError):
    """The request cannot be understood; the proxy answers 400 and closes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyCredentials:
    session_id: str
    token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    scheme: str  # "https" (CONNECT) or "http" (absolute-form)
    host: str  # lower case, IPv6 without brackets
    port: int
    path: str  # origin-form ("/" for CONNECT)

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


#: The longest session id and token a proxy URL can carry (a UUID and 64 hex digits are
#: the real ones): a longer claim is no credential, and is never looked up nor kept.
MAX_SESSION_ID = 64
MAX_TOKEN = 256


def parse_proxy_authorization(value: bytes | None) -> ProxyCredentials | None:
    """``Basic base64(session_id:token)``, or None when absent, malformed or too long."""
    if not value:
        return None
    scheme, _, param = value.strip().partition(b" ")
    if scheme.lower() != b"basic" or not param:
        return None
    if len(param.strip()) > 4 * (MAX_SESSION_ID + MAX_TOKEN + 1) // 3 + 4:
        return None
    try:
        decoded = base64.b64decode(param.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    session_id, sep, token = decoded.partition(":")
    if not sep or not session_id or not token:
        return None
    if len(session_id) > MAX_SESSION_ID or len(token) > MAX_TOKEN:
        return None
    return ProxyCredentials(session_id=session_id, token=token)


def normalize_host(raw: str) -> str:
    """A valid host name or IP literal in canonical lower case; :class:`BadRequest` if not."""
    host = raw.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        # ``::ffff:1.2.3.4`` is 1.2.3.4 to the socket that connects to it: named so, it is
        # judged, listed and asked about as the address a person knows.
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        return str(mapped or address)
    if not _HOSTNAME.match(host):
        raise BadRequest(f"not a valid host name: {raw[:80]!r}")
    host = host.rstrip(".")
    try:  # 16909060, 0x1020304, 1.2.772, 01.02.03.04: the resolver reads an IPv4 address
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return host


def split_authority(authority: str, default_port: int) -> tuple[str, int]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise BadRequest("unterminated IPv6 literal")
        host, rest = authority[: end + 1], authority[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise BadRequest("garbage after IPv6 literal")
    elif authority.count(":") == 1:
        host, port_text = authority.split(":")
    else:
        host, port_text = authority, ""
    port = default_port
    if port_text:
        if not port_text.isdigit() or len(port_text) > 5:
            raise BadRequest(f"not a valid port: {port_text[:10]!r}")
        port = int(port_text)
    if not 0 < port < 65536:
        raise BadRequest(f"port out of range: {port}")
    return normalize_host(host), port


def parse_connect_target(target: bytes) -> Target:
    try:
        text = target.decode("ascii")
    except UnicodeDecodeError as exc:
        raise BadRequest("CONNECT target is not ASCII") from exc
    if "/" in text or "@" in text:
        raise BadRequest("CONNECT target must be host:port")
    if not text.startswith("[") and text.count(":") > 1:
        # Some clients (httpx) name an IPv6 target without brackets; a CONNECT always
        # carries a port, so the last group is it.
        text = "[{}]:{}".format(*text.rsplit(":", 1))
    host, port = split_authority(text, 443)
    return Target(scheme="https", host=host, port=port, path="/")


def parse_absolute_target(target: bytes) -> Target:
    """``http://host[:port]/path`` as sent to a forward proxy."""
    scheme, sep, rest = _ascii(target).partition("://")
    if not sep or scheme.lower() != "http":
        raise BadRequest("a plain request to the proxy needs an absolute http:// URL")
    return _url_target("http", rest)


def parse_inner_target(raw: bytes, tunnel: Target) -> Target:
    """A request target read inside a CONNECT tunnel, as a :class:`Target` for it.

    Origin form (``/path``) takes the tunnel's authority. Absolute form must name the
    tunnel's own ``https`` authority (:func:`misdirection` says so when it does not);
    anything else is a :class:`BadRequest`.
    """
    text = _ascii(raw)
    if text.startswith("/"):
        return Target(scheme="https", host=tunnel.host, port=tunnel.port, path=text)
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise BadRequest("a request in the tunnel needs a /path or an https:// URL")
    return _url_target(scheme.lower(), rest)


def _ascii(target: bytes) -> str:
    try:
        text = target.decode("ascii")
    except UnicodeDecodeError as exc:
        raise BadRequest("request target is not ASCII") from exc
    if "#" in text:
        # A fragment never belongs in a request (RFC 9112 3.2); a server that drops it
        # would read ``/issues#/git-upload-pack`` as ``/issues``, a rule the whole of it.
        raise BadRequest("a request target carries no fragment (#)")
    return text


def _url_target(scheme: str, rest: str) -> Target:
    """What follows ``scheme://`` (authority, then path and query) as a target; the path is
    ``/`` when there is none, and user info is refused."""
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:]
    if "@" in authority or not authority:
        raise BadRequest("user info in the request target is not allowed")
    host, port = split_authority(authority, 443 if scheme == "https" else 80)
    return Target(scheme=scheme, host=host, port=port,
                  path=path if path.startswith("/") else "/" + path)


def misdirection(headers: Headers, target: Target, connect: Target | None) -> str | None:
    """Why the request names another authority than the one it travels to, or None.

    A credential is chosen by the CONNECT target (or the absolute URL of a plain request);
    a ``Host`` header, or an absolute URL inside the tunnel, that names another host or
    port would take it elsewhere (domain fronting). Names compare case-insensitively, with
    the scheme's default port filled in.
    """
    if connect is not None and (target.scheme, target.host, target.port) != (
        connect.scheme, connect.host, connect.port
    ):
        return (f"the request names {target.scheme}://{target.authority} inside a tunnel "
                f"to {connect.authority}")
    default = 443 if target.scheme == "https" else 80
    for name, value in headers:
        if name.lower() != b"host":
            continue
        if value == target.authority.encode():  # the usual spelling: no parsing needed
            continue
        try:
            found = split_authority(value.decode("ascii").strip(), default)
        except (UnicodeDecodeError, BadRequest):
            return f"the Host header {value[:80]!r} is not a valid authority"
        if found != (target.host, target.port):
            return f"the Host header names {value[:80].decode('ascii')}, not {target.authority}"
    return None


def forwardable(headers: Headers, *, upgrade: bool) -> Headers:
    """Headers minus the hop-by-hop ones (and any the ``Connection`` header names).

    For a WebSocket upgrade the ``Connection: upgrade`` and ``Upgrade`` pair is kept: the
    upgrade must reach the upstream for the 101 to come back.
    """
    # One pass to find what the Connection headers name (framing is never theirs to drop)
    # and the first Upgrade value; the fixed set serves when there is no Connection header.
    named: set[bytes] = set()  # one set for every Connection header (an agent sends many)
    value: bytes | None = None
    for k, v in headers:
        name = k.lower()
        if name == b"connection":
            named.update(token.strip().lower() for token in v.split(b","))
        elif name == b"upgrade" and value is None:
            value = v
    drop = HOP_BY_HOP | (named - _FRAMING) if named else HOP_BY_HOP
    out = [(k, v) for k, v in headers if k.lower() not in drop]
    if upgrade and value is not None:
        out += [(b"connection", b"upgrade"), (b"upgrade", value)]
    return out


def is_upgrade(headers: Headers) -> bool:
    connection: list[bytes] = []
    has_upgrade = False
    for k, v in headers:
        name = k.lower()
        if name == b"connection":
            connection.append(v)
        elif name == b"upgrade":
            has_upgrade = True
    if not (has_upgrade and connection):
        return False
    tokens = b",".join(connection).lower().split(b",")
    return b"upgrade" in [t.strip() for t in tokens]


def is_websocket(headers: Headers) -> bool:
    """Whether the ``Upgrade`` asked for is WebSocket (the first protocol it names)."""
    for k, v in headers:
        if k.lower() == b"upgrade":
            first = v.split(b",", 1)[0].strip().lower()
            return first == b"websocket" or first.startswith(b"websocket/")
    return False
