"""Connections to upstreams: resolve, refuse "home", connect, verify TLS, reuse.

The exchange code (``exchange.py``) asks the :class:`Pool` for a connection to a request's
destination. The pool applies an upstream override from ``proxy.toml`` when there is one,
resolves the name once and checks the addresses with :func:`proxy.policy.address_refusal`
(connecting to exactly the addresses it checked, so a DNS answer cannot change in
between), verifies the upstream's certificate against the system store plus the optional
extra CA bundle, and keeps finished connections for reuse. Failures become
:class:`UpstreamError` with the ``X-Proxy-Error-Type`` the client is told.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import ssl
from collections import defaultdict
from enum import StrEnum

import h11
import trio

from appliance.errors import ClauderonError
from proxy.config import ProxyConfig, Upstream
from proxy.heads import Target
from proxy.policy import IpAddress, address_refusal
from proxy.tls import TlsStream
from proxy.wire import HttpSide

log = logging.getLogger(__name__)

MAX_IDLE_PER_KEY = 32


class ErrorType(StrEnum):
    DNS_RESOLUTION_FAILURE = "DNS_RESOLUTION_FAILURE"
    CONNECTION_REFUSED = "CONNECTION_REFUSED"
    CONNECTION_TIMEOUT = "CONNECTION_TIMEOUT"
    TLS_CERTIFICATE_ERROR = "TLS_CERTIFICATE_ERROR"
    UPSTREAM_PROTOCOL_ERROR = "UPSTREAM_PROTOCOL_ERROR"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    DESTINATION_FORBIDDEN = "DESTINATION_FORBIDDEN"


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
    def __init__(self, stream: trio.abc.Stream, key: tuple[str, str, int]) -> None:
        super().__init__(stream, h11.CLIENT)
        self.key = key
        self.idle_since = 0.0


class Pool:
    """Upstream connections by (scheme, host, port), kept alive between requests."""

    def __init__(
        self, config: ProxyConfig, forbidden: frozenset[IpAddress], *, reused_ok: bool = True
    ) -> None:
        self.config = config
        self.forbidden = forbidden
        self._ssl = client_context(str(config.extra_ca_bundle or "") or None)
        self._idle: defaultdict[tuple[str, str, int], list[UpstreamConn]] = defaultdict(list)
        self._reuse = reused_ok

    def reconfigure(self, config: ProxyConfig) -> None:
        """A new proxy.toml: new TLS trust and overrides; idle connections are dropped."""
        self.config = config
        self._ssl = client_context(str(config.extra_ca_bundle or "") or None)
        old, self._idle = self._idle, defaultdict(list)
        for conns in old.values():
            for conn in conns:
                _close_now(conn)

    def destination(self, target: Target) -> tuple[Upstream, bool]:
        override = self.config.override_for(target.host, target.port)
        if override is not None:
            return override, True
        return Upstream(scheme=target.scheme, host=target.host, port=target.port), False

    async def acquire(self, target: Target) -> tuple[UpstreamConn, bool]:
        """A connection for ``target`` and whether it was reused from the pool."""
        dest, overridden = self.destination(target)
        key = (dest.scheme, dest.host, dest.port)
        idle = self._idle.get(key)
        now = trio.current_time()
        while idle:
            conn = idle.pop()
            if now - conn.idle_since < self.config.idle_timeout:
                return conn, True
            _close_now(conn)
        return await self._connect(dest, overridden, key), False

    def release(self, conn: UpstreamConn) -> None:
        """Keep ``conn`` for the next request if its last exchange ended cleanly."""
        if not (self._reuse and conn.reusable()):
            _close_now(conn)
            return
        conn.h11.start_next_cycle()
        conn.idle_since = trio.current_time()
        idle = self._idle[conn.key]
        idle.append(conn)
        if len(idle) > MAX_IDLE_PER_KEY:
            _close_now(idle.pop(0))

    def close_all(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                _close_now(conn)
        self._idle.clear()

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

    async def _connect(
        self, dest: Upstream, overridden: bool, key: tuple[str, str, int]
    ) -> UpstreamConn:
        timeout = self.config.connect_timeout
        try:
            with trio.fail_after(timeout):
                addresses = await self._resolve(dest)
                refusal = address_refusal(addresses, self.forbidden, overridden=overridden)
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


def _close_now(conn: HttpSide) -> None:
    """Close without waiting (a TLS close_notify is a courtesy an idle peer can miss)."""
    stream = conn.stream
    inner = stream.transport if isinstance(stream, TlsStream) else stream
    if isinstance(inner, trio.SocketStream):
        inner.socket.close()
