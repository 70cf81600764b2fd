"""``clauderon-api``: the API service, run by supervisord."""

from __future__ import annotations

import logging
import signal
from functools import partial

import trio

from api.app import create_app
from api.context import ApiContext
from api.events import EventHub
from api.listeners import check_tls, serve
from appliance import backends
from appliance.audit_index import AuditIndex
from appliance.config import Settings, load_settings
from appliance.errors import BackendUnavailable, ClauderonError
from appliance.service import configure_logging, ends_clearly, raise_open_files
from appliance.store import AsyncStore, Store
from appliance.tokens import load_or_create_instance_key

log = logging.getLogger("clauderon.api")


def build_context(settings: Settings) -> ApiContext:
    settings.ensure_layout()
    store = AsyncStore(Store.open(settings.db_path))
    return ApiContext(
        settings=settings,
        store=store,
        backends=dict(backends.open_backends(settings)),
        hub=EventHub(store),
        instance_key=load_or_create_instance_key(settings.instance_secret_path),
        audit=AuditIndex(settings.audit_path),
    )


async def session_gateway(settings: Settings) -> str | None:
    """Where the hook listener goes: the sessions' network gateway, once it is ensured
    (whichever service starts first creates the network and its firewall).

    Waits as long as the engine is down (the CLI and the web UI are served meanwhile). When
    the network cannot be had at all, the API keeps serving without a hook listener and
    says why: the reconciler, which runs the sessions, refuses to start for the same
    reason, so no session runs without the lockdown either way.
    """
    delay = 0.5
    while True:
        try:
            return await trio.to_thread.run_sync(backends.ensure_gateway, settings,
                                                 abandon_on_cancel=True)
        except BackendUnavailable as exc:
            log.warning("%s; the hook listener waits (next try in %.0fs)", exc.message, delay)
            await trio.sleep(delay)
            delay = min(delay * 2, 10.0)
        except ClauderonError as exc:
            log.error("no hook listener (agents' status hooks will not arrive): %s",
                      exc.message)
            return None


async def run(settings: Settings) -> None:
    ctx = build_context(settings)
    app = create_app(ctx)
    shutdown = trio.Event()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve, app, settings, ctx.store, shutdown,
                                        key=ctx.instance_key,
                                        session_gateway=partial(session_gateway, settings)))

            async def wait_signal() -> None:
                async for signum in signals:
                    log.info("got %s; shutting down", signal.Signals(signum).name)
                    shutdown.set()
                    return

            nursery.start_soon(wait_signal)
            await shutdown.wait()
            # Hypercorn drains in-flight requests within its graceful_timeout; this bound
            # only guards against a stuck connection.
            nursery.cancel_scope.deadline = trio.current_time() + 8
    log.info("API stopped")


def main() -> None:
    configure_logging()
    raise_open_files()  # each connection a container holds is one of this process's files
    # A configuration the API cannot serve, a port held, a sessions' network it cannot
    # lock down: one clear line.
    with ends_clearly(log):
        settings = load_settings()
        check_tls(settings)
        trio.run(partial(run, settings))


if __name__ == "__main__":
    main()
