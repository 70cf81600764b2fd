"""Serving the app with Hypercorn: one bind per listener, each behind its own layer.

* the Unix socket (0600) for the CLI and TUI: :func:`api.guard.trusted`; it runs the app's
  lifespan;
* TCP (``[server] host``/``port``) for browsers and scripts: :class:`api.guard.Guard`
  (sign-in, Host/Origin checks, security headers), HTTPS when ``tls_cert``/``tls_key`` are
  set;
* the hook listener on the sessions' network gateway: :func:`api.guard.hooks_only`
  (``POST /api/hooks`` and nothing else). It is the only API address a container can reach
  (the host firewall lets nothing else of the host through: :mod:`appliance.netplan`), and
  it starts once the gateway is known (``session_gateway``, which waits for the engine), so
  the CLI is served at once.

TCP may leave loopback now that every route behind it needs sign-in; without TLS that
sends session cookies in clear over the network, so it starts with a warning saying how to
fix it (certificates here, or ``tailscale serve`` in front).

Every bind closes a connection once it has answered a request that asked for that
(``Connection: close``, or HTTP/1.0): :func:`closes_when_asked`."""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from api.guard import Guard, hooks_only, trusted
from api.request_policy import Policy
from appliance.config import API_KEEP_ALIVE_SECONDS, Settings
from appliance.errors import ConfigError, cannot_listen, first_leaf
from appliance.store import AsyncStore

log = logging.getLogger(__name__)

#: The largest request head the TCP listener reads. Cookies are kept per host, not per port:
#: a page on another port of this host can fill the browser's jar for it (Chromium keeps 180
#: cookies of up to 4 KiB each, about 720 KiB, and sends them all with every request here).
#: Hypercorn's default (16 KiB) answered each such request with 431, so the web UI and its
#: sign-in did not load until the user cleared the neighbour's cookies. Still far below the
#: body a request may carry (:data:`api.guard.MAX_BODY`); the hook listener keeps the default.
MAX_HEAD = 1024 * 1024


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def exposure_warning(settings: Settings) -> str | None:
    """What to say when the TCP listener is reachable from the network without TLS."""
    if not settings.http_port or is_loopback(settings.http_host) or settings.tls_cert:
        return None
    return (f"the API listens on {settings.http_host}:{settings.http_port} over plain HTTP: "
            "sign-in is required, but session cookies and tokens cross the network in clear "
            "and passkeys do not work on a non-loopback http:// address. Set [server] "
            "tls_cert and tls_key, or keep host = 127.0.0.1 and publish it with "
            "`tailscale serve` (see README, \"Reach it from your phone\")")


def check_tls(settings: Settings) -> None:
    """Load the certificate and key once at start, so a bad pair is one clear line."""
    if not (settings.tls_cert and settings.tls_key):
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            settings.tls_cert, settings.tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"[server] tls_cert/tls_key cannot be used: {exc}") from exc


def _base(bind: str) -> Config:
    config = Config()
    config.bind = [bind]
    config.graceful_timeout = 5.0
    config.keep_alive_timeout = API_KEEP_ALIVE_SECONDS
    config.accesslog = None  # an access log would hold paths; tokens never travel in them
    config.errorlog = logging.getLogger("hypercorn.error")
    config.alpn_protocols = ["http/1.1"]  # one framing for the guard to reason about
    return config


def unix_config(settings: Settings) -> Config:
    config = _base(f"unix:{settings.socket_path}")
    config.umask = 0o177  # the socket is 0600: only the appliance's user drives it
    return config


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def loopback_binds(host: str, port: int, *, ipv6: bool) -> list[str]:
    """The addresses to listen on for ``host``. For a loopback or wildcard host the CLI
    sends the person to ``http://localhost:<port>``, which browsers resolve to ``::1``
    first, then 127.0.0.1: an address of the two left free was any local user's, whose
    server then *was* that origin (its cookie, its ``localStorage`` with the bind, its
    passkeys). So both are held; a neighbour holding one already stops the start."""
    name = host.strip("[]")
    extra: list[str] = []
    if name == "0.0.0.0":  # holds 127.0.0.1, not ::1
        extra = ["::1"]
    elif name in ("::1", "localhost") or name.startswith("127."):
        extra = ["127.0.0.1", "::1"]
    hosts = [h for h in (name, *extra) if h != "localhost" and (ipv6 or h != "::1")]
    return [f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h in dict.fromkeys(hosts)]


def tcp_config(settings: Settings) -> Config | None:
    if not settings.http_port:
        return None
    config = _base("")
    config.bind = loopback_binds(settings.http_host, settings.http_port,
                                 ipv6=has_ipv6_loopback())
    config.h11_max_incomplete_size = MAX_HEAD
    if settings.tls_cert and settings.tls_key:
        config.certfile = settings.tls_cert
        config.keyfile = settings.tls_key
    return config


def hook_config(settings: Settings, gateway: str | None) -> Config | None:
    if not settings.hook_port or not gateway:
        return None
    return _base(f"{gateway}:{settings.hook_port}")


async def serve(
    app: Any,
    settings: Settings,
    store: AsyncStore,
    shutdown: trio.Event,
    *,
    key: bytes,
    session_gateway: Callable[[], Awaitable[str | None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    settings.socket_path.unlink(missing_ok=True)
    async with trio.open_nursery() as nursery:
        bound: list[str] = list(await nursery.start(_serve_one, trusted(app),
                                                    unix_config(settings), shutdown))
        tcp = tcp_config(settings)
        if tcp is not None:
            guard = Guard(app, policy=Policy.from_settings(settings), store=store, key=key)
            try:
                bound += await nursery.start(_serve_one, guard, tcp, shutdown)
            except* OSError as group:  # Hypercorn binds inside a nursery of its own
                raise cannot_listen(first_leaf(group), ", ".join(tcp.bind),
                                    "[server] port (CLAUDERON_HTTP_PORT)") from None
            warning = exposure_warning(settings)
            if warning:
                log.warning("%s", warning)
        log.info("API listening on %s", ", ".join(bound))
        task_status.started(bound)
        if session_gateway is not None:
            await _serve_hooks(app, settings, shutdown, session_gateway)


async def _serve_hooks(app: Any, settings: Settings, shutdown: trio.Event,
                       session_gateway: Callable[[], Awaitable[str | None]]) -> None:
    gateway: str | None = None
    async with trio.open_nursery() as waiting:

        async def stop_waiting() -> None:
            await shutdown.wait()
            waiting.cancel_scope.cancel()

        waiting.start_soon(stop_waiting)
        gateway = await session_gateway()
        waiting.cancel_scope.cancel()
    hooks = hook_config(settings, gateway)
    if hooks is None or shutdown.is_set():
        return
    async with trio.open_nursery() as nursery:
        try:
            bound = await nursery.start(_serve_one, hooks_only(app), hooks, shutdown)
        except OSError as exc:
            log.warning("hook listener %s not started: %s", hooks.bind, exc)
            return
        log.info("hook listener on %s", ", ".join(bound))


def closes_when_asked(app: Any) -> Any:
    """``app`` with the last send of each HTTP response shielded from the app's own cancel.

    Hypercorn closes a connection whose request asked for it from inside that send (the
    response's end tells its HTTP/1.1 state machine the stream is over, and it shuts the
    socket there), but Quart-trio cancels the request's tasks as soon as the stream says it
    is over, so the close was cancelled half-done and the socket stayed open: no idle timer
    runs on it any more, and the client held it for as long as it liked, one descriptor of
    the API's each (a peer of the TCP listener, or an agent on the hook listener, at the
    cost of one request per connection). Shielded, the close completes; the send itself was
    already shielded by Hypercorn."""

    async def shielding(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_last_shielded(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                with trio.CancelScope(shield=True):
                    await send(message)
                return
            await send(message)

        await app(scope, receive, send_last_shielded)

    return shielding


async def _serve_one(app: Any, config: Config, shutdown: trio.Event, *,
                     task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    await hypercorn_serve(closes_when_asked(app), config, shutdown_trigger=shutdown.wait,
                          task_status=task_status)
