"""Serving the app with Hypercorn: the Unix socket (0600) for the CLI, HTTP for browsers
(loopback only), and the hook listener on the sessions' network gateway.

The hook listener is the only API address a container can reach (the host firewall lets
nothing else of the host through: :mod:`appliance.netplan`). It is a separate bind whose
requests go through :func:`hooks_only`, which answers 404 to anything but
``POST /api/hooks``: no agent can drive the session API. It starts once the gateway is
known (``session_gateway``, which waits for the engine), so the CLI is served at once.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from appliance.config import Settings
from appliance.errors import ConfigError

log = logging.getLogger(__name__)

ASGIApp = Callable[..., Awaitable[None]]


def hooks_only(app: ASGIApp) -> ASGIApp:
    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            # The main bind runs the app's lifespan; this one only acknowledges.
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] == "http" and scope["path"] == "/api/hooks":
            await app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = b'{"error": "only /api/hooks is served on this address", "code": "not_found"}'
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return guarded


def check_exposure(settings: Settings) -> None:
    """Refuse to serve the session API beyond this machine without sign-in.

    The API drives containers that hold a repository's work; until passkey sign-in guards
    every route, only loopback is allowed. Reach it from a phone through a reverse proxy on
    the same machine that authenticates (``tailscale serve`` does).
    """
    try:
        loopback = ipaddress.ip_address(settings.http_host).is_loopback
    except ValueError:
        loopback = settings.http_host == "localhost"
    if settings.http_port and not loopback:
        raise ConfigError(
            f"[server] host = {settings.http_host!r} would expose the API without sign-in; "
            "keep 127.0.0.1 and publish it with an authenticating reverse proxy "
            "(for example `tailscale serve 3030`)"
        )


def main_config(settings: Settings) -> Config:
    check_exposure(settings)
    config = Config()
    binds = [f"unix:{settings.socket_path}"]
    if settings.http_port:
        binds.append(f"{settings.http_host}:{settings.http_port}")
    config.bind = binds
    config.umask = 0o177  # the socket is 0600: only the appliance's user drives it
    config.graceful_timeout = 5.0
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def hook_config(settings: Settings, gateway: str | None) -> Config | None:
    if not settings.hook_port or not gateway:
        return None
    config = Config()
    config.bind = [f"{gateway}:{settings.hook_port}"]
    config.graceful_timeout = 5.0
    config.accesslog = None
    return config


async def serve(
    app: Any,
    settings: Settings,
    shutdown: trio.Event,
    *,
    session_gateway: Callable[[], Awaitable[str | None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    settings.socket_path.unlink(missing_ok=True)
    async with trio.open_nursery() as nursery:
        bound: list[str] = list(await nursery.start(_serve_one, app, main_config(settings),
                                                    shutdown))
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


async def _serve_one(app: Any, config: Config, shutdown: trio.Event, *,
                     task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    await hypercorn_serve(app, config, shutdown_trigger=shutdown.wait,
                          task_status=task_status)
