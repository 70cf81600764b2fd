"""The sessions' network on the Docker engine, and its firewall on this host (I/O shell).

:class:`SessionNetwork` carries out :mod:`appliance.netplan`: ``ensure`` creates the
instance's internal, ICC-off network when it is missing (or checks the one there is ours
and locked down), checks its bridge is an interface of *this* machine (the firewall is
installed here, so the engine must be local), installs the firewall, and returns the
gateway the services listen on. ``remove`` undoes both (tests; nothing in the appliance
removes a network its containers may use).

The proxy, the API and the reconciler each call ``ensure`` when they start, in any order;
a file lock in ``CLAUDERON_HOME`` serialises them. The Docker backend calls it again before
it starts a container, so none runs unless the lockdown is in place (before a create, the
network alone: a created container runs nothing until its start). Every call
is synchronous (SDK and subprocesses): trio callers run it on a worker thread.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from appliance import firewall
from appliance.config import Settings
from appliance.config_values import NO_NETWORK
from appliance.errors import BackendError, BackendUnavailable, ClauderonError, ConfigError
from appliance.host import instance_id
from appliance.netplan import (
    NetworkInfo,
    NetworkPlan,
    network_info,
    network_problem,
    plan_network,
)

log = logging.getLogger(__name__)

DEFAULT_URL = "unix:///var/run/docker.sock"
LOCK_SECONDS = 60.0


def unreachable(url: str) -> BackendUnavailable:
    """The engine at ``url`` did not answer: what to do about it."""
    return BackendUnavailable(f"Docker engine not reachable at {url}: start dockerd "
                              "(or set DOCKER_HOST / [docker] host in config.toml)")


class SessionNetwork:
    def __init__(self, *, url: str | None, plan: NetworkPlan, lock_path: Path,
                 ports: tuple[int, ...], max_connections: int,
                 timeout: float = 60.0) -> None:
        self.url = url or DEFAULT_URL
        self.plan = plan
        self.lock_path = lock_path
        self.ports = ports
        self.max_connections = max_connections
        self.timeout = timeout
        self._gateway: str | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> SessionNetwork | None:
        """The instance's network, or None when ``[docker] network = "none"``."""
        if settings.docker_network == NO_NETWORK:
            return None
        plan = plan_network(instance=instance_id(settings), name=settings.docker_network,
                            subnet=settings.network_subnet)
        return cls(url=settings.docker_host, plan=plan,
                   lock_path=settings.home / "network.lock",
                   ports=(settings.proxy_port, settings.hook_port),
                   max_connections=settings.container_connections,
                   timeout=settings.docker_timeout_seconds)

    # --- plumbing -------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as handle:
            deadline = time.monotonic() + LOCK_SECONDS
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise BackendError(
                            f"{self.lock_path} stayed locked for {LOCK_SECONDS:.0f}s: "
                            "another service of this appliance is stuck setting up the "
                            "sessions' network; restart it") from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _docker(self, what: str, fn: Callable[[docker.DockerClient], Any]) -> Any:
        try:
            with closing(docker.DockerClient(base_url=self.url,
                                             timeout=int(self.timeout))) as client:
                return fn(client)
        except ClauderonError:
            raise
        except docker.errors.APIError as exc:
            raise BackendError(f"{what}: {exc.explanation or exc}") from exc
        except (requests.exceptions.RequestException, docker.errors.DockerException,
                ConnectionError, FileNotFoundError) as exc:
            raise unreachable(self.url) from exc

    def _inspect(self, client: docker.DockerClient) -> dict[str, Any] | None:
        try:
            attrs: dict[str, Any] = client.api.inspect_network(self.plan.name)
        except docker.errors.NotFound:
            return None
        # Found by ID prefix rather than by name: not ours.
        return attrs if attrs.get("Name") == self.plan.name else None

    def _create(self, client: docker.DockerClient) -> dict[str, Any]:
        plan = self.plan
        ipam = None
        if plan.subnet:
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                subnet=plan.subnet)])
        client.networks.create(plan.name, driver="bridge", internal=True,
                               options=plan.options, labels=plan.labels, ipam=ipam,
                               check_duplicate=True)
        log.info("created the sessions' network %s (bridge %s)", plan.name, plan.bridge)
        attrs = self._inspect(client)
        if attrs is None:
            raise BackendError(f"the network {plan.name} vanished right after its creation")
        return attrs

    # --- the two operations ---------------------------------------------------------
    def ensure(self, *, firewall_too: bool = True) -> NetworkInfo:
        """The network and its firewall in place (idempotent); its facts. Without
        ``firewall_too``, the network alone (ours, locked down, on this machine): what a
        container's *create* needs, as nothing runs in it before its start, which
        installs the firewall again (an install is several iptables runs, ~50-130 ms on
        a create's critical path)."""
        if self._gateway is None:
            firewall.check_access()  # before anything is created: fail early, clearly
        with self._locked():

            def get(client: docker.DockerClient) -> dict[str, Any]:
                return self._inspect(client) or self._create(client)

            attrs = self._docker(f"set up the network {self.plan.name}", get)
            problem = network_problem(attrs, self.plan)
            if problem:
                raise ConfigError(problem)
            info = network_info(attrs, self.plan)
            if not Path(f"/sys/class/net/{info.bridge}").exists():
                raise ConfigError(
                    f"the bridge {info.bridge} of the sessions' network {info.name} is not "
                    "an interface of this machine: the appliance must run on the Docker "
                    "engine's host (in its network namespace) to firewall its sessions")
            if self._gateway is not None and info.gateway != self._gateway:
                raise BackendError(
                    f"the sessions' network {info.name} came back with gateway "
                    f"{info.gateway} (the services listen on {self._gateway}): restart "
                    "the appliance's services", retryable=False)
            if firewall_too:
                firewall.install(self.plan, gateway=info.gateway, ports=self.ports,
                                 max_connections=self.max_connections)
        self._gateway = info.gateway
        return info

    def remove(self) -> None:
        """The firewall chain and the network gone (the network's containers first)."""
        firewall.check_access()
        with self._locked():

            def rm(client: docker.DockerClient) -> None:
                if self._inspect(client) is not None:
                    with suppress(docker.errors.NotFound):
                        client.api.remove_network(self.plan.name)

            # The network first: the engine refuses while a container uses it, and then
            # the firewall must stay.
            self._docker(f"remove the network {self.plan.name}", rm)
            firewall.remove(self.plan)


def ensure_patiently(network: SessionNetwork) -> NetworkInfo:
    """``ensure``, waiting as long as it takes for an engine that is not up yet (a service
    may start with the machine, before dockerd): each attempt is bounded by the engine's
    timeout, and the waits between them grow to 10 s. Any other error is final and raised
    at once."""
    delay = 0.5
    while True:
        try:
            return network.ensure()
        except BackendUnavailable as exc:
            log.warning("%s; trying again in %.0fs", exc.message, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
