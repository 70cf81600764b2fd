"""Reading pods back (pure): their run state, how far a start got, and why it cannot go on.

Pods are JSON as the API serves them. :func:`run_state` maps one to the backend protocol's
:class:`~appliance.backends.base.RunState`; :func:`start_step` names the step a starting pod
is at (``scheduled``, ``clone``, ``running``) for the create's progress; :func:`start_error`
says when waiting longer cannot help, in words that say what to do: no node can take the
pod, the image cannot be pulled, the workspace could not be cloned, the container ended.
A clone container that exits :data:`~appliance.backends.kubernetes_manifests.UNCONFINED_EXIT`
reached its node's kubelet: the cluster enforces no NetworkPolicy (:func:`unconfined_error`).
"""

from __future__ import annotations

from appliance.backends.base import RunState
from appliance.backends.kubernetes_manifests import KUBELET_PORT, UNCONFINED_EXIT, Json
from appliance.errors import BackendError

PULL_ERRORS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                         "ErrImageNeverPull", "RegistryUnavailable"})
CONFIG_ERRORS = frozenset({"CreateContainerConfigError", "CreateContainerError",
                           "RunContainerError"})


def _statuses(pod: Json, which: str) -> list[Json]:
    return list((pod.get("status") or {}).get(which) or [])


def _condition(pod: Json, kind: str) -> Json | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def run_state(pod: Json) -> tuple[RunState, str]:
    """What the reconcile plan sees: a pod being deleted is dead, a pod whose agent ended is
    stopped, any other (pending included: the start waits on it) is running."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return RunState.DEAD, "being deleted"
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    if phase in ("Succeeded", "Failed"):
        return RunState.STOPPED, _ended(pod) or phase.lower()
    return RunState.RUNNING, phase.lower()


def _ended(pod: Json) -> str:
    for s in _statuses(pod, "containerStatuses") + _statuses(pod, "initContainerStatuses"):
        done = (s.get("state") or {}).get("terminated")
        if done and done.get("exitCode", 0) != 0:
            return (f"{s.get('name')} exited {done.get('exitCode')}"
                    + (f": {done['message'].strip()[-300:]}" if done.get("message") else ""))
    return ""


def is_ready(pod: Json) -> bool:
    statuses = _statuses(pod, "containerStatuses")
    return (pod.get("status") or {}).get("phase") == "Running" and bool(statuses) and all(
        (s.get("state") or {}).get("running") for s in statuses)


def start_step(pod: Json) -> tuple[str, str]:
    """``(step, message)`` for the create's progress."""
    status = pod.get("status") or {}
    if is_ready(pod):
        return "running", "the pod is running"
    scheduled = _condition(pod, "PodScheduled")
    if not scheduled or scheduled.get("status") != "True":
        return "pod", "waiting for a node"
    for s in _statuses(pod, "initContainerStatuses"):
        if not (s.get("state") or {}).get("terminated"):
            return "clone", "cloning the repository into the volume (init container)"
    node = (pod.get("spec") or {}).get("nodeName") or status.get("hostIP") or "a node"
    return "scheduled", f"scheduled on {node}; starting the agent container"


def start_error(pod: Json, *, image: str) -> BackendError | None:
    """Why the pod will not start, when waiting cannot fix it (None: keep waiting)."""
    scheduled = _condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False" \
            and scheduled.get("reason") == "Unschedulable":
        return BackendError(
            f"no node can run the session's pod: {scheduled.get('message') or 'unschedulable'}"
            " (check [kubernetes] node_selector and tolerations, and the cluster's capacity)",
            retryable=True)
    for s in _statuses(pod, "initContainerStatuses") + _statuses(pod, "containerStatuses"):
        state = s.get("state") or {}
        waiting = state.get("waiting") or {}
        reason = waiting.get("reason") or ""
        why = f"{reason}: {(waiting.get('message') or '').strip()[:300]}"
        if reason in PULL_ERRORS:
            return BackendError(
                f"the cluster cannot pull the image {image} ({why}); push it to a registry "
                "the nodes reach, or set [kubernetes] image", field="image", retryable=False)
        if reason in CONFIG_ERRORS:
            return BackendError(f"the {s.get('name')} container cannot be made ({why})",
                                retryable=False)
        done = state.get("terminated")
        if done and done.get("exitCode", 0) != 0:
            said = (done.get("message") or done.get("reason") or "").strip()[-500:]
            if s.get("name") == "clone" and done.get("exitCode") == UNCONFINED_EXIT:
                return unconfined_error(pod)
            if s.get("name") == "clone":
                return BackendError(f"the workspace could not be cloned: {said}",
                                    retryable=False)
            return BackendError(f"the {s.get('name')} container exited "
                                f"{done.get('exitCode')}: {said}", retryable=False)
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return BackendError(f"the pod ended before it ran: {_ended(pod) or 'no reason given'}",
                            retryable=False)
    return None



def unconfined_error(pod: Json) -> BackendError:
    """The init container reached its node's kubelet: the cluster stores NetworkPolicies
    and enforces none, so a session there would reach the node, the metadata service and
    the internet past the proxy; it is not run there."""
    node = (pod.get("status") or {}).get("hostIP") or "its node"
    return BackendError(
        f"the session's pod reached its node's kubelet ({node}:{KUBELET_PORT}), which its "
        "NetworkPolicy forbids: this cluster does not enforce NetworkPolicies (its network "
        "plugin ignores them), so its sessions would reach the node, the metadata service and "
        "the internet past the proxy; no session runs there until a network plugin that "
        "enforces them (Calico, Cilium, ...) is installed", retryable=False)


def image_of(pod: Json) -> str:
    """The image of the pod's first container (the agent's)."""
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("image") or "")
