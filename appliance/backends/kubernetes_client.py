"""The official Kubernetes client's configuration and errors, for the backend
(:mod:`appliance.backends.kubernetes`): where the cluster is, and each error the client
raises as one of the error tree's (:func:`translate`, pure), worded for an operator.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import trio
import urllib3.exceptions
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from appliance.backends.kubernetes_manifests import Json
from appliance.config_kubernetes import KubeSettings
from appliance.errors import BackendError, BackendUnavailable, ClauderonError

T = TypeVar("T")

#: Every request's (connect, read) limits, in seconds: an API server that accepts and never
#: answers fails the call (so the reconciler goes on) instead of holding its thread forever.
#: The read limit is above the watches' own 10 s, which the server ends itself.
REQUEST_TIMEOUT = (5.0, 30.0)
#: A call that reached the server and got no answer in time is not sent again (urllib3's
#: default sends a GET three more times, each waiting the read limit out: two minutes of a
#: stalled server held the reconciler); one that never connected is.
RETRIES = urllib3.util.Retry(total=3, read=0, redirect=0)


class TimedApiClient(client.ApiClient):  # type: ignore[misc]
    """The official client, with :data:`REQUEST_TIMEOUT` on every call that sets none."""

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = REQUEST_TIMEOUT
        return super().call_api(*args, **kwargs)


def api_clients(cfg: client.Configuration) -> tuple[client.CoreV1Api, client.NetworkingV1Api]:
    """The core and networking APIs over one :class:`TimedApiClient`."""
    api = TimedApiClient(cfg)
    return client.CoreV1Api(api), client.NetworkingV1Api(api)


def load_configuration(kube: KubeSettings) -> client.Configuration:
    """The client configuration: in-cluster, or a kubeconfig file and context."""
    cfg = client.Configuration()
    try:
        if kube.in_cluster:
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(config_file=kube.kubeconfig, context=kube.context,
                                    client_configuration=cfg)
    except (config.ConfigException, OSError) as exc:
        where = "in-cluster service account" if kube.in_cluster else (
            kube.kubeconfig or "~/.kube/config")
        raise BackendUnavailable(f"no Kubernetes configuration ({where}): {exc}") from exc
    cfg.retries = RETRIES
    return cfg


def translate(exc: Exception, what: str, url: str) -> ClauderonError:
    """The client's error as ours: no answer is :class:`BackendUnavailable` (the caller
    connects again next time); 403 for a quota is retryable; other 4xx are permanent."""
    if isinstance(exc, ApiException) and exc.status:
        said = message(exc)
        if exc.status == 403 and "quota" in said:
            return BackendError(f"{what}: the namespace's quota refuses it ({said}); end "
                                "or archive other sessions, or raise the ResourceQuota",
                                retryable=True)
        if exc.status in (401, 403):
            return BackendError(
                f"{what}: the cluster refused ({exc.status}: {said}); give the appliance's "
                "account the Role in deploy/kubernetes/rbac.yaml", retryable=False)
        return BackendError(f"{what}: {exc.status} {said}", retryable=exc.status >= 500
                            or exc.status == 409)
    if isinstance(exc, (ApiException, urllib3.exceptions.HTTPError, OSError)):
        return BackendUnavailable(
            f"Kubernetes API not reachable at {url}: {exc}; check [kubernetes] "
            "kubeconfig/context (or in_cluster) and that the cluster is up")
    return BackendError(f"{what}: {exc}")


def as_json(response: Any) -> Json:
    data = response.data if hasattr(response, "data") else response
    loaded: Json = json.loads(data)
    return loaded


def message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def unless_gone(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``fn``'s answer; None when what it names is gone (404)."""
    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


#: A session's objects by kind, as the client's method names spell them.
_NAMES = {"pod": "pod", "pvc": "persistent_volume_claim", "secret": "secret",
          "netpol": "network_policy"}


def op(core: client.CoreV1Api, net: client.NetworkingV1Api, verb: str,
        kind: str) -> Callable[..., Any]:
    """The client's ``<verb>_namespaced_<kind>`` (a network policy is the networking API's)."""
    found: Callable[..., Any] = getattr(net if kind == "netpol" else core,
                                        f"{verb}_namespaced_{_NAMES[kind]}")
    return found


async def resolve(name: str, *, within: float) -> list[str]:
    """The addresses of the appliance's Service as the appliance resolves it now: a pod
    gets them in its hosts file, and no resolver (``kubernetes_manifests.pinned``)."""
    try:
        with trio.fail_after(within):
            found = await trio.socket.getaddrinfo(name, None, type=trio.socket.SOCK_STREAM)
    except (OSError, trio.TooSlowError) as exc:
        raise BackendError(f"[kubernetes] proxy_address {name} does not resolve here "
                           f"({exc}); pods reach the proxy at the addresses the appliance "
                           "resolves it to", retryable=True) from exc
    return [str(info[4][0]) for info in found]


def pod_changes(core: client.CoreV1Api, _: client.NetworkingV1Api, *, namespace: str,
                name: str, version: str | None) -> list[Json | None]:
    """The pod ``name`` as it next changes after ``version`` (None once deleted), or
    nothing within 10 s: one event of the API's watch, on a worker thread."""
    w = watch.Watch()
    out: list[Json | None] = []
    for event in w.stream(core.list_namespaced_pod, namespace,
                          field_selector=f"metadata.name={name}",
                          resource_version=version, timeout_seconds=10):
        raw = event.get("raw_object") or {}
        out.append(None if event.get("type") == "DELETED" else raw)
        w.stop()
    return out


def listing(core: client.CoreV1Api, net: client.NetworkingV1Api, *, namespace: str,
            selector: str) -> tuple[list[Json], list[Json], list[Json]]:
    """The pods, volume claims and NetworkPolicies labelled ``selector``, as the API's JSON,
    on a worker thread."""
    pods = as_json(core.list_namespaced_pod(namespace, label_selector=selector,
                                          _preload_content=False))
    pvcs = as_json(core.list_namespaced_persistent_volume_claim(
        namespace, label_selector=selector, _preload_content=False))
    policies = as_json(net.list_namespaced_network_policy(
        namespace, label_selector=selector, _preload_content=False))
    return (list(pods.get("items") or []), list(pvcs.get("items") or []),
            list(policies.get("items") or []))
