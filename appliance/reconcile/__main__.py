"""``clauderon-reconciler``: the reconciler service, run by supervisord."""

from __future__ import annotations

import logging
from functools import partial

import trio

from appliance.admission import fill_github_repos
from appliance.backends import open_backends
from appliance.backends.docker_network import SessionNetwork, ensure_patiently
from appliance.config import load_settings
from appliance.config_values import NO_NETWORK
from appliance.contract import HostContext
from appliance.errors import ConfigError
from appliance.host import git_identity, instance_id
from appliance.reconcile.reconcile_loop import Reconciler
from appliance.service import configure_logging, ends_clearly, run_until_signalled
from appliance.store import AsyncStore, Store
from appliance.tokens import load_or_create_instance_key

log = logging.getLogger("clauderon.reconciler")


def build(settings_env: dict[str, str] | None = None) -> Reconciler:
    """The reconciler as its service runs it; ``settings_env``: the environment its
    settings are read from (``bench/fifty_sessions.py`` builds one for its appliance)."""
    settings = load_settings(settings_env)
    settings.ensure_layout()
    network = SessionNetwork.for_settings(settings)
    if network is None:
        raise ConfigError(
            f'{settings.config_path} [docker]: network = "{NO_NETWORK}" leaves sessions no '
            "locked-down way to the proxy, so the reconciler cannot run them; remove the key")
    # The services start in any order: whichever comes first creates the network.
    info = ensure_patiently(network)
    store = AsyncStore(Store.open(settings.db_path))
    name, email = git_identity()
    instance = instance_id(settings)
    host = HostContext(
        instance=instance,
        network=info.name,
        gateway=info.gateway,
        proxy_port=settings.proxy_port,
        hook_port=settings.hook_port,
        ca_cert_path=str(settings.ca_cert_path) if settings.ca_cert_path.exists() else None,
        uploads_root=str(settings.uploads_dir),
        git_name=name,
        git_email=email,
        default_cpu=settings.default_cpu,
        default_memory=settings.default_memory,
        pids_limit=settings.pids_limit,
    )
    return Reconciler(settings=settings, store=store,
                      backends=open_backends(settings, network=network), host=host,
                      instance_key=load_or_create_instance_key(settings.instance_secret_path))


def main() -> None:
    configure_logging()
    with ends_clearly(log):
        reconciler = build()
        filled = fill_github_repos(reconciler.store.sync)
        if filled:
            log.info("recorded the GitHub repositories of %d sessions made before they were "
                     "recorded: %s", len(filled), ", ".join(filled))
        trio.run(partial(run_until_signalled, reconciler.serve, drain=reconciler.drain,
                         grace=10.0, name="reconciler"))


if __name__ == "__main__":
    main()
