"""``clauderon-proxy``: the proxy service under supervisord.

Builds everything once (settings, proxy.toml, credentials, CA, store, audit log), ensures
the sessions' network (:mod:`appliance.backends.docker_network`: whichever service starts
first creates it and its firewall) and runs :func:`proxy.server.serve` on 127.0.0.1 and
that network's gateway, the one address of this machine a session can reach. SIGHUP re-reads
proxy.toml, the credentials and ``config.toml``'s control tables (prices, budgets, egress)
without dropping a connection (and reopens the audit log);
SIGTERM/SIGINT stop accepting, give requests in flight ``shutdown_grace_seconds``, then
cancel what is left.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
from collections.abc import Mapping
from datetime import UTC, datetime

import trio

from appliance.audit import AuditLog, record_run, started
from appliance.backends import session_gateway
from appliance.config import Settings, load_settings
from appliance.credentials import CredentialSet, doctor, load_credentials, write_codex_auth
from appliance.errors import ClauderonError
from appliance.service import configure_logging, ends_clearly, raise_open_files
from appliance.store import Store
from appliance.tokens import load_or_create_instance_key
from proxy.certs import CertStore, load_or_create_ca
from proxy.controls import Controls, ControlSettings
from proxy.directory import StoreDirectory, appliance_identity
from proxy.inject import CredentialLookup
from proxy.ledger import Ledger
from proxy.localaddrs import own_addresses
from proxy.proxy_config import ProxyConfig, load_proxy_config
from proxy.proxy_metrics import ProxyMetrics
from proxy.server import serve
from proxy.state import ProxyState
from proxy.token_refresh import TokenSink

log = logging.getLogger("proxy")


def _load(settings: Settings, env: Mapping[str, str], ledger: Ledger
          ) -> tuple[ProxyConfig, CredentialSet]:
    """proxy.toml and the credentials (on a worker thread); their summary -- names, sources,
    masked values, warnings -- goes to the database for ``clauderon status``, and the
    ChatGPT login a session's Codex may see (no token) for the reconciler."""
    config = load_proxy_config(settings.proxy_config_path)
    creds, warnings = load_credentials(settings, env)
    for warning in warnings:
        log.warning("credentials: %s", warning)
    log.info("credentials loaded: %s", ", ".join(creds.names()) or "none")
    summary = doctor.published(creds, warnings, datetime.now(UTC))
    login = doctor.published_login(creds)

    def publish() -> None:  # in one batch: the login is there once the summary is
        ledger.publish(doctor.META_KEY, summary)
        ledger.publish(doctor.CODEX_LOGIN_KEY, login)

    trio.from_thread.run_sync(publish)
    return config, creds


def _sink(creds: CredentialSet) -> TokenSink | None:
    if creds.codex_auth_path is None:
        return None
    return functools.partial(write_codex_auth, creds.codex_auth_path)


async def run(settings: Settings, env: Mapping[str, str], gateway: str | None) -> None:
    store = Store.open(settings.db_path)
    # The controls' own connection: the ledger's writes never wait on a session look-up.
    control_store = Store.open(settings.db_path)
    key = load_or_create_instance_key(settings.instance_secret_path)
    controls = Controls(control_store, key, ControlSettings.of(settings))
    config, creds = await trio.to_thread.run_sync(_load, settings, env, controls.ledger)
    certs = CertStore(load_or_create_ca(settings.ca_cert_path, settings.ca_key_path))
    metrics = ProxyMetrics(config)
    controls.ledger.attach_metrics(metrics.publisher)
    hosts = ("127.0.0.1", gateway) if gateway else ("127.0.0.1",)

    def reloader() -> tuple[ProxyConfig, CredentialLookup]:
        # config.toml's prices, budgets, egress and honeytoken tables too.
        controls.settings = ControlSettings.of(load_settings())
        return _load(settings, env, controls.ledger)

    with AuditLog(settings.audit_path) as audit:
        state = ProxyState(
            config=config, creds=creds, certs=certs,
            directory=StoreDirectory(store, appliance=appliance_identity(key)),
            audit=audit, forbidden=own_addresses(extra=(gateway,) if gateway else ()),
            token_sink=_sink(creds), reloader=reloader, controls=controls, metrics=metrics,
        )
        # Before any exchange: a view reads an earlier run's exchanges left open as cut off.
        line = started(state.run, datetime.now(UTC).isoformat(timespec="milliseconds")
                       .replace("+00:00", "Z"))
        state.write(line)
        try:  # and beside the log, where no bound of a view's index loses it
            record_run(settings.audit_path, line)
        except OSError:
            log.exception("cannot name the proxy's run beside the audit log")
        # Signals are caught before the port is announced, so none is lost in between.
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as sigs:
            async with trio.open_nursery() as nursery:
                await nursery.start(functools.partial(
                    serve, state, hosts=hosts, port=settings.proxy_port))
                async for signum in sigs:
                    if signum != signal.SIGHUP:
                        log.info("signal %d: stopping", signum)
                        state.stop()
                        break
                    try:
                        await state.reload()
                    except ClauderonError as exc:
                        log.error("reload failed, keeping the previous settings: %s", exc)
    store.close()
    control_store.close()


def main() -> None:
    configure_logging()
    raise_open_files()  # each connection a container holds is one of this process's files
    with ends_clearly(log):
        settings = load_settings()
        settings.ensure_layout()
        gateway = session_gateway(settings)
        trio.run(run, settings, dict(os.environ), gateway)


if __name__ == "__main__":
    main()
