"""The ``[kubernetes]`` table of ``config.toml``: where the cluster is and how pods reach us.

Its presence turns the Kubernetes backend on (:func:`appliance.backends.open_backends`).
Every key is checked when the file is loaded, naming the file and the key, so a typo stops
the service instead of surfacing at the first create. Neighbours: :mod:`appliance.config`
(which calls :func:`parse`), :mod:`appliance.backends.kubernetes_manifests` (which turns
these into manifests).

How pods reach the proxy and the hook endpoint (``proxy_address``): either the appliance
runs in the cluster behind a Service (a DNS name, with ``appliance_labels`` naming its pods
so the per-session NetworkPolicy can allow exactly them), or an address every node can
route to (an IP: the policy allows that one address and port).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance.config_values import HOSTNAME, boolean, seconds
from appliance.errors import ConfigError, refuse_unknown

_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_QUANTITY = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
_LABEL_KEY = re.compile(r"(?:[a-z0-9.-]{1,253}/)?[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}"
                        r"[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})


@dataclass(frozen=True, slots=True, kw_only=True)
class KubeSettings:
    #: A kubeconfig file and context; ``in_cluster`` uses the pod's service account instead.
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    namespace: str = "clauderon"
    #: None: the cluster's default storage class.
    storage_class: str | None = None
    pvc_size: str = "10Gi"
    #: None: the appliance's agent image (``[docker] image``).
    image: str | None = None
    image_pull_policy: str = "IfNotPresent"
    #: The pods' service account (None: the namespace's ``default``); its token is never
    #: mounted either way.
    service_account: str | None = None
    #: The uid (and gid, fsGroup) the agent runs as: the agent image's ``agent`` user.
    run_as_user: int = 1000
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    #: Where pods reach the proxy and the hook endpoint: a Service name or a routable IP.
    proxy_address: str = ""
    #: The proxy's and the hook endpoint's ports as pods see them (None: the appliance's).
    proxy_port: int | None = None
    hook_port: int | None = None
    #: The appliance pods' labels, when it runs in the cluster (NetworkPolicy egress to
    #: them); empty: ``proxy_address`` must be an IP and egress goes to that address.
    appliance_labels: Mapping[str, str] = field(default_factory=dict)
    #: Where this host sees each session's volume (``<volume_root>/<pvc name>``): a
    #: node-local storage class whose folders the appliance can read. None: files and
    #: transcripts are read from the pod through exec.
    volume_root: str | None = None
    #: How often the reconciler asks the remote for a session branch it was not woken for.
    sync_seconds: float = 15.0
    timeout_seconds: float = 60.0

    @property
    def proxy_is_ip(self) -> bool:
        return _is_ip(self.proxy_address)


def _str(where: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} {key} must be a non-empty string")
    return value


def _int(where: str, key: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where} {key} must be a whole number from {low} to {high}")
    return value


def _labels(where: str, key: str, value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f'{where} {key} must be a table of labels, like {{ "disk" = "ssd" }}')
    out: dict[str, str] = {}
    for k, v in value.items():
        if not _LABEL_KEY.fullmatch(str(k)) or not isinstance(v, str) \
                or not _LABEL_VALUE.fullmatch(v) or len(v) > 63:
            raise ConfigError(f"{where} {key}: {k!r} = {v!r} is not a Kubernetes label")
        out[str(k)] = v
    return out


def _tolerations(where: str, value: object) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ConfigError(f'{where} tolerations must be an array of tables, like '
                          '[{ key = "gpu", operator = "Exists", effect = "NoSchedule" }]')
    for t in value:
        refuse_unknown(t, _TOLERATION_KEYS, f"{where} tolerations")
    return tuple(dict(t) for t in value)


def _matching(pattern: re.Pattern[str], what: str) -> Check:
    def check(where: str, key: str, value: object) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ConfigError(f"{where} {key} = {value!r} {what}")
        return value

    return check


def _pull_policy(where: str, key: str, value: object) -> str:
    if value not in PULL_POLICIES:
        raise ConfigError(f"{where} {key} must be one of {', '.join(PULL_POLICIES)}")
    return str(value)


def _address(where: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not (HOSTNAME.fullmatch(value.lower()) or _is_ip(value)):
        raise ConfigError(f"{where} {key} = {value!r} must be a host name or an IP address "
                          "(no scheme or port)")
    return value


Check = Callable[[str, str, object], Any]
#: How each key's value is checked (and made the field's type), by key.
_CHECKS: dict[str, Check] = {
    **dict.fromkeys(("kubeconfig", "context", "storage_class", "service_account", "image",
                     "volume_root"), _str),
    "in_cluster": lambda where, key, value: boolean(value, f"{where} {key}"),
    "namespace": _matching(_DNS_LABEL, "is not a namespace name (lowercase letters, digits, "
                           "inner '-'; 63 at most)"),
    "pvc_size": _matching(_QUANTITY, 'is not a size like "20Gi"'),
    "image_pull_policy": _pull_policy,
    "run_as_user": lambda where, key, value: _int(where, key, value, 1, 2**31 - 1),
    **dict.fromkeys(("proxy_port", "hook_port"),
                    lambda where, key, value: _int(where, key, value, 1, 65535)),
    **dict.fromkeys(("node_selector", "appliance_labels"), _labels),
    "tolerations": lambda where, _key, value: _tolerations(where, value),
    "proxy_address": _address,
    **dict.fromkeys(("sync_seconds", "timeout_seconds"),
                    lambda where, key, value: seconds(value, f"{where} {key}")),
}


def parse(body: object, where: str) -> KubeSettings:
    """The ``[kubernetes]`` table, checked; ``where`` names the file in every error."""
    where = f"{where} [kubernetes]"
    if not isinstance(body, dict):
        raise ConfigError(f"{where} must be a table")
    refuse_unknown(body, KubeSettings.__dataclass_fields__, where)
    values = {key: _CHECKS[key](where, key, value) for key, value in body.items()}
    return _whole(KubeSettings(**values), where)


def _whole(kube: KubeSettings, where: str) -> KubeSettings:
    """The keys that only make sense together, checked together."""
    if kube.in_cluster and (kube.kubeconfig or kube.context):
        raise ConfigError(f"{where}: in_cluster = true uses the pod's service account; "
                          "remove kubeconfig and context")
    if not kube.proxy_address:
        raise ConfigError(
            f"{where}: proxy_address is required: the name of the appliance's Service when it "
            "runs in the cluster (with appliance_labels), or an IP address every node routes "
            "to the proxy and hook ports")
    if not kube.proxy_is_ip and not kube.appliance_labels:
        raise ConfigError(
            f"{where}: proxy_address {kube.proxy_address!r} is a name, so the sessions' "
            "NetworkPolicy needs appliance_labels (the labels of the appliance's pods) to allow "
            "egress to them and nothing else")
    return kube


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
