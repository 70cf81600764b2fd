"""Compute backends behind one protocol (:mod:`appliance.backends.base`).

:func:`open_backends` is the one place a concrete backend is chosen: the API and the
reconciler get a mapping of kind -> :class:`~appliance.backends.base.Backend` and never
import a concrete one. A session's ``backend`` must be a key of it (the create request is
refused with a 400 naming the field otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from appliance.backends.base import Backend
from appliance.config import Settings
from appliance.host import instance_id

if TYPE_CHECKING:
    from appliance.backends.docker_network import SessionNetwork

Backends = Mapping[str, Backend]


def open_backends(settings: Settings, *, network: SessionNetwork | None = None) -> Backends:
    """The backends this appliance is configured for, by kind: ``docker`` always,
    ``kubernetes`` when config.toml has a ``[kubernetes]`` table. The concrete modules load
    here, not with the package: they import :mod:`appliance.contract`, which imports the
    package's protocol (and the Kubernetes client loads only where it is configured); the
    same holds for the sessions' network below."""
    from appliance.backends.docker import DockerBackend  # noqa: PLC0415

    docker = DockerBackend(url=settings.docker_host, instance=instance_id(settings),
                           timeout=settings.docker_timeout_seconds, network=network)
    backends: dict[str, Backend] = {docker.kind: docker}
    if settings.kubernetes is not None:
        from appliance.backends.kubernetes import KubernetesBackend  # noqa: PLC0415

        kube = KubernetesBackend(kube=settings.kubernetes, instance=instance_id(settings),
                                 proxy_port=settings.proxy_port, hook_port=settings.hook_port)
        backends[kube.kind] = kube
    return backends


def session_gateway(settings: Settings) -> str | None:
    """The sessions' network gateway, where the proxy and the hook listener listen: the
    network and its firewall are ensured first (whichever service starts first makes them;
    an engine still starting is waited for). None when ``[docker] network = "none"``.
    Blocking: call it on a worker thread from trio."""
    from appliance.backends.docker_network import (  # noqa: PLC0415
        SessionNetwork,
        ensure_patiently,
    )

    network = SessionNetwork.for_settings(settings)
    return None if network is None else ensure_patiently(network).gateway


def ensure_gateway(settings: Settings) -> str | None:
    """One try of :func:`session_gateway`: raises ``BackendUnavailable`` while the engine is
    down (the caller decides how to wait), another error when the network cannot be had."""
    from appliance.backends.docker_network import SessionNetwork  # noqa: PLC0415

    network = SessionNetwork.for_settings(settings)
    return None if network is None else network.ensure().gateway
