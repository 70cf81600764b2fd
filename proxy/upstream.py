"""Connections to upstreams: resolve, refuse "home", connect, verify TLS, reuse.

The exchange code (``upload.py``) asks the :class:`Pool` for a connection to a request's
destination. The pool applies an upstream override from ``proxy.toml`` when there is one,
resolves the name once and checks the addresses with :func:`proxy.policy.address_refusal`
(connecting to exactly the addresses it checked, so a DNS answer cannot change in
between), verifies the upstream's certificate against the system store plus the optional
extra CA bundle, and keeps finished connections for reuse. Failures become
:class:`UpstreamError` with the ``X-Proxy-Error-Type`` the client is told.

Isolation. A kept connection is reused only by the session that opened it, for the same
target and the same injected credential: a connection is never shared between sessions,
so whatever one session's requests could do to a connection's framing cannot reach
another's. "This machine's own addresses" are asked of the kernel for every new
connection (``localaddrs.is_local_address``), so an address added after the start (a
new Docker network's gateway) is refused as soon as it exists.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import socket
import ssl
import struct
from collections import Counter, defaultdict
from enum import StrEnum

import h11
import trio

from appliance.errors import ClauderonError
from appliance.tokens import APPLIANCE_ID
from proxy.heads import Target
from proxy.localaddrs import is_local_address, on_container_bridge
from proxy.policy import IpAddress, address_refusal
from proxy.proxy_config import IpNetwork, ProxyConfig, Upstream
from proxy.sides import HttpSide
from proxy.tls import TlsStream

log = logging.getLogger(__name__)

MAX_IDLE_PER_KEY = 32
#: Idle connections kept across all sessions; beyond this, the session keeping the most
#: closes its longest idle (``Pool._evict``).
MAX_IDLE = 512

#: (session, credential, upstream scheme, host, port, target host, target port)
PoolKey = tuple[str, str, str, str, int, str, int]


#: Every address: the private networks the appliance's own identity may reach.
EVERY_NETWORK: tuple[IpNetwork, ...] = (ipaddress.ip_network("0.0.0.0/0"),
                                        ipaddress.ip_network("::/0"))

class ErrorType(StrEnum):
    DNS_RESOLUTION_FAILURE = "DNS_RESOLUTION_FAILURE"
    CONNECTION_REFUSED = "CONNECTION_REFUSED"
    CONNECTION_TIMEOUT = "CONNECTION_TIMEOUT"
    TLS_CERTIFICATE_ERROR = "TLS_CERTIFICATE_ERROR"
    UPSTREAM_PROTOCOL_ERROR = "UPSTREAM_PROTOCOL_ERROR"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    DESTINATION_FORBIDDEN = "DESTINATION_FORBIDDEN"
    REFRESH_REFUSED = "REFRESH_REFUSED"


class UpstreamError(ClauderonError):
    """The upstream could not be reached or spoke nonsense (502; 504 for timeouts)."""

    http_status = 502
    code = "upstream_error"

    def __init__(self, message: str, error_type: ErrorType, *, status: int = 502) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = status


def client_context(extra_ca_bundle: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if extra_ca_bundle:
        context.load_verify_locations(cafile=extra_ca_bundle)
    context.set_alpn_protocols(["http/1.1"])
    return context


class UpstreamConn(HttpSide):
    def __init__(self, stream: trio.abc.Stream, key: PoolKey) -> None:
        super().__init__(stream, h11.CLIENT)
        self.key = key
        self.idle_since = 0.0


class Pool:
    """Upstream connections kept alive between requests, one set per session and target."""

    def __init__(self, config: ProxyConfig, forbidden: frozenset[IpAddress]) -> None:
        self.config = config
        self.forbidden = forbidden
        self._ssl = client_context(str(config.extra_ca_bundle or "") or None)
        self._idle: defaultdict[PoolKey, list[UpstreamConn]] = defaultdict(list)
        self._count = 0

    def reconfigure(self, config: ProxyConfig) -> None:
        """A new proxy.toml: new TLS trust and overrides; idle connections are dropped."""
        self.config = config
        self._ssl = client_context(str(config.extra_ca_bundle or "") or None)
        self.close_all()

    def destination(self, target: Target) -> tuple[Upstream, bool]:
        override = self.config.override_for(target.host, target.port)
        if override is not None:
            return override, True
        return Upstream(scheme=target.scheme, host=target.host, port=target.port), False

    async def acquire(
        self, target: Target, *, session: str, credential: str | None
    ) -> tuple[UpstreamConn, bool]:
        """A connection for ``session``'s request to ``target``, and whether it was reused."""
        dest, overridden = self.destination(target)
        key = (session, credential or "", dest.scheme, dest.host, dest.port,
               target.host, target.port)
        idle = self._idle.get(key)
        now = trio.current_time()
        while idle:
            conn = idle.pop()
            self._count -= 1
            if not idle:
                del self._idle[key]
            if now - conn.idle_since < self.config.idle_timeout:
                return conn, True
            _close_now(conn)
        return await self._connect(dest, overridden, key), False

    def release(self, conn: UpstreamConn) -> None:
        """Keep ``conn`` for the next request if its last exchange ended cleanly."""
        if not conn.reusable():
            _close_now(conn)
            return
        conn.h11.start_next_cycle()
        conn.idle_since = trio.current_time()
        idle = self._idle[conn.key]
        idle.append(conn)
        self._count += 1
        if len(idle) > MAX_IDLE_PER_KEY:
            _close_now(idle.pop(0))
            self._count -= 1
        if self._count > MAX_IDLE:
            self._evict()

    def _evict(self) -> None:
        """Close any connection whose idle time is up; then, past :data:`MAX_IDLE`, the one
        idle the longest of the session that keeps the most. The longest idle of all would
        be a quiet neighbour's: one session finishing many requests at once closed the
        other sessions' kept connections, and made them connect anew."""
        now = trio.current_time()
        kept: Counter[str] = Counter()
        for key, conns in list(self._idle.items()):
            while conns and now - conns[0].idle_since >= self.config.idle_timeout:
                self._close_oldest(key)
            if conns:
                kept[key[0]] += len(conns)
        if self._count <= MAX_IDLE or not kept:
            return
        greediest = kept.most_common(1)[0][0]
        self._close_oldest(min((key for key in self._idle if key[0] == greediest),
                               key=lambda key: self._idle[key][0].idle_since))

    def _close_oldest(self, key: PoolKey) -> None:
        """Close the connection idle the longest of ``key``'s (one must be kept)."""
        conns = self._idle[key]
        _close_now(conns.pop(0))
        self._count -= 1
        if not conns:
            del self._idle[key]

    def close_all(self) -> None:
        old, self._idle, self._count = self._idle, defaultdict(list), 0
        for conns in old.values():
            for conn in conns:
                _close_now(conn)

    async def _resolve(self, dest: Upstream) -> list[IpAddress]:
        try:
            infos = await trio.socket.getaddrinfo(dest.host, dest.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise UpstreamError(
                f"cannot resolve {dest.host}: {exc.strerror}", ErrorType.DNS_RESOLUTION_FAILURE
            ) from exc
        except UnicodeError as exc:  # a label IDNA cannot encode
            raise UpstreamError(
                f"cannot resolve {dest.host[:80]}: not a valid name",
                ErrorType.DNS_RESOLUTION_FAILURE,
            ) from exc
        out: list[IpAddress] = []
        for info in infos:
            addr = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if addr not in out:
                out.append(addr)
        return out

    def _private_allowed(self, session: str) -> tuple[IpNetwork, ...]:
        """The private networks ``session`` may reach: those ``allow_networks`` lists; every
        one for the appliance's own identity, whose destinations are the person's (their
        repositories' remotes), never an agent's (it still reaches no way home)."""
        return EVERY_NETWORK if session == APPLIANCE_ID else self.config.allow_networks

    async def _connect(self, dest: Upstream, overridden: bool, key: PoolKey) -> UpstreamConn:
        timeout = self.config.connect_timeout
        try:
            with trio.fail_after(timeout):
                addresses = await self._resolve(dest)
                home = self.forbidden
                bridged: frozenset[IpAddress] = frozenset()
                if not overridden:  # asked now: the host's addresses change while we run
                    home = home | {a for a in addresses if is_local_address(a)}
                    bridged = frozenset(a for a in addresses if on_container_bridge(a))
                refusal = address_refusal(addresses, home, overridden=overridden,
                                          bridged=bridged,
                                          refused=self.config.refuse_networks,
                                          allowed=self._private_allowed(key[0]))
                if refusal is not None:
                    raise UpstreamError(
                        f"refusing {dest.host}: {refusal}",
                        ErrorType.DESTINATION_FORBIDDEN,
                        status=403,
                    )
                tcp = await _open_first(addresses, dest.port)
                stream: trio.abc.Stream = tcp
                if dest.scheme == "https":
                    tls = TlsStream(tcp, self._ssl, server_hostname=dest.host)
                    try:
                        await tls.do_handshake()
                    except trio.BrokenResourceError as exc:
                        await trio.aclose_forcefully(tcp)
                        raise _tls_error(dest, exc) from exc
                    stream = tls
        except trio.TooSlowError as exc:
            raise UpstreamError(
                f"no connection to {dest.host}:{dest.port} within {timeout:g}s",
                ErrorType.CONNECTION_TIMEOUT,
                status=504,
            ) from exc
        return UpstreamConn(stream, key)


async def _open_first(addresses: list[IpAddress], port: int) -> trio.SocketStream:
    last: OSError | None = None
    for addr in addresses:
        try:
            return await trio.open_tcp_stream(str(addr), port)
        except OSError as exc:
            last = exc
    refused = last is not None and _refused(last)
    detail = "refused" if refused else f"failed ({last})"
    raise UpstreamError(f"connection to port {port} {detail}", ErrorType.CONNECTION_REFUSED)


def _refused(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_refused(e) for e in exc.exceptions)
    return exc.__cause__ is not None and _refused(exc.__cause__)


def _tls_error(dest: Upstream, exc: BaseException) -> UpstreamError:
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return UpstreamError(
            f"{dest.host}: certificate not trusted ({cause.verify_message})",
            ErrorType.TLS_CERTIFICATE_ERROR,
        )
    return UpstreamError(f"{dest.host}: TLS handshake failed ({cause or exc})",
                         ErrorType.TLS_CERTIFICATE_ERROR)


def abort(conn: HttpSide) -> None:
    """Reset the connection: what is still queued to send is dropped, not delivered.

    For an upload the upstream refused and stopped reading: a plain close would leave the
    kernel trying to deliver the rest of it (and the end of stream after it) for minutes.
    """
    stream = conn.stream
    inner = stream.transport if isinstance(stream, TlsStream) else stream
    if isinstance(inner, trio.SocketStream):
        with contextlib.suppress(OSError):
            inner.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        inner.socket.close()


def _close_now(conn: HttpSide) -> None:
    """Close without waiting (a TLS close_notify is a courtesy an idle peer can miss)."""
    stream = conn.stream
    inner = stream.transport if isinstance(stream, TlsStream) else stream
    if isinstance(inner, trio.SocketStream):
        inner.socket.close()
