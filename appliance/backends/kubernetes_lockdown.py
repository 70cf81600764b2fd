"""Whether a session's pod and its NetworkPolicy, as the cluster holds them, have this
version's containment (pure: the API's JSON in, what is missing out, in words).

A pod keeps the spec it was made with until it ends, and a policy stays as it was written:
after an upgrade, one an older version made runs on without what was added since (its
containers' security context, no API token, no service links, no cluster DNS; a policy that
lets less out). A pod carries the version that made it (a label): one this version made
that lacks something was changed since (an admission webhook), and is said to be. The
reconciler reads both here at every pass: a policy that is not today's is replaced at once
(no restart needed), a pod that lacks anything is made again on its volume
(:mod:`appliance.reconcile.contain`).

Only the fields containment rests on are compared, each read with the API's default when
absent: a cluster's admission webhooks add fields of their own (a sidecar, labels, options),
which must not make the pod look old again after every remake.

Neighbours: :mod:`appliance.backends.kubernetes_manifests` (what today's builders make),
:mod:`appliance.backends.kubernetes` (which lists pods and policies and calls these).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from appliance.backends import base
from appliance.backends import kubernetes_manifests as manifests
from appliance.backends.base import LABEL_SESSION, Observed, RunState
from appliance.backends.kubernetes_manifests import AGENT, CLONE, Json
from appliance.config_kubernetes import KubeSettings

#: Pod fields that open a way out of the pod when true (all false when absent).
_HOST_FIELDS = ("hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace")


def _uid(value: Any) -> bool:
    return type(value) is int and value > 0


def _contained(sc: Json) -> bool:
    """A container's effective security context (the pod's, then its own over it) as
    :func:`~appliance.backends.kubernetes_manifests._security` makes it."""
    caps = sc.get("capabilities") or {}
    return (sc.get("runAsNonRoot") is True and _uid(sc.get("runAsUser"))
            and sc.get("allowPrivilegeEscalation") is False and not sc.get("privileged")
            and "ALL" in (caps.get("drop") or []) and not caps.get("add")
            and (sc.get("seccompProfile") or {}).get("type") == "RuntimeDefault")


def pod_lacks(pod: Json) -> list[str]:
    """What ``pod`` lacks of the containment :func:`~appliance.backends.kubernetes_manifests.
    contained` gives every pod today (empty: nothing)."""
    spec = pod.get("spec") or {}
    lacks: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    ours = [c for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
            if c.get("name") in (AGENT, CLONE)]
    if not (pod_sc.get("runAsNonRoot") is True and _uid(pod_sc.get("runAsUser"))) or not all(
            _contained({**pod_sc, **(c.get("securityContext") or {})}) for c in ours):
        lacks.append("a security context (non-root, every capability dropped, "
                     "no new privileges, seccomp)")
    if spec.get("automountServiceAccountToken") is not False:
        lacks.append("no Kubernetes API token")
    if spec.get("enableServiceLinks") is not False:
        lacks.append("no service links")
    if any(spec.get(field) for field in _HOST_FIELDS):
        lacks.append("nothing of the node's network, processes or IPC")
    if spec.get("dnsPolicy") != "None" or \
            (spec.get("dnsConfig") or {}).get("nameservers") != ["127.0.0.1"]:
        lacks.append("no cluster DNS")
    return lacks


def _rules(spec: Json, key: str, peers: str) -> list[tuple[list[str], list[str]]]:
    out = []
    for rule in spec.get(key) or []:
        ports = sorted(f"{p.get('protocol') or 'TCP'}/{p.get('port')}/{p.get('endPort')}"
                       for p in rule.get("ports") or [])
        who = sorted(json.dumps(p, sort_keys=True) for p in rule.get(peers) or [])
        out.append((who, ports))
    return sorted(out)


def _shape(policy: Json) -> tuple[str, list[str], Any, Any]:
    spec = policy.get("spec") or {}
    return (json.dumps(spec.get("podSelector") or {}, sort_keys=True),
            sorted(spec.get("policyTypes") or []),
            _rules(spec, "ingress", "from"), _rules(spec, "egress", "to"))


def policy_differs(found: Json | None, wanted: Json) -> str:
    """Why the session's NetworkPolicy ``found`` is not ``wanted`` (today's
    :func:`~appliance.backends.kubernetes_manifests.policy_for`); empty when it is. Its
    selector, policy types and rules are compared, in any order, the API's defaults filled
    in; nothing else of it."""
    if found is None:
        return "its NetworkPolicy is missing"
    if _shape(found) != _shape(wanted):
        return "its NetworkPolicy is not this version's (it lets other traffic in or out)"
    return ""


def remade_because(lacks: list[str], pod: Json) -> str:
    """:func:`~appliance.backends.base.remade_because` of a pod."""
    labels = (pod.get("metadata") or {}).get("labels")
    return base.remade_because(lacks, labels, this=manifests.MADE_BY, how=manifests.CHANGED_BY)


def checked(found: Observed, pod: Json, pvcs: list[Json], policies: list[Json],
            kube: KubeSettings, *, proxy_port: int, hook_port: int) -> Observed:
    """``found`` (a pod) with what it, and its policy, lack of this version's containment
    (:func:`pod_lacks`, :func:`policy_differs`); a pod not running is as found."""
    if found.state is not RunState.RUNNING:
        return found
    lacks = pod_lacks(pod)
    uncontained = f"{remade_because(lacks, pod)}; made again on its volume" \
        if lacks else ""
    named = {(o.get("metadata") or {}).get("name"): o for o in pvcs}
    claim = named.get(found.name) or pod
    labels = dict((claim.get("metadata") or {}).get("labels") or {})
    loose = ""
    if labels.get(LABEL_SESSION):
        wanted = manifests.policy_for(found.name, labels, kube, proxy_port=proxy_port,
                                      hook_port=hook_port)
        held = {(p.get("metadata") or {}).get("name"): p for p in policies}
        loose = policy_differs(held.get(found.name), wanted)
    return dataclasses.replace(found, uncontained=uncontained,
                               loose=f"{loose}; replaced by this version's" if loose else "")
