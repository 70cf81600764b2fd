"""The Kubernetes backend: the official client, called from trio on worker threads.

Theory of operation
-------------------
A session is four namespaced objects named ``clauderon-<name>``
(:mod:`appliance.backends.kubernetes_manifests`): a PersistentVolumeClaim (workspace and
agent home), a Secret, a NetworkPolicy and a Pod. The backend id is that name.

- ``create`` makes (or adopts, when labelled for the same session) the claim, the Secret
  and the NetworkPolicy, and records on the claim the pod to make, marked *stopped*;
- ``start`` makes the NetworkPolicy again (as this version makes it, from the claim's
  labels), clears the mark, makes the pod from the claim's record with this version's
  containment (:func:`~appliance.backends.kubernetes_manifests.contained`; a pod that
  ended is replaced; the appliance's Service name pinned to the addresses it resolves to
  now) and watches it until its agent container runs, reporting each step (waiting for a
  node, cloning, running) and stopping at once, with the reason, when waiting cannot help
  (:func:`~appliance.backends.kubernetes_state.start_error`: among them a pod whose init
  container reached its node's kubelet, on a cluster that does not enforce NetworkPolicies);
- ``stop`` (archive too) marks the claim stopped and deletes the pod: the volume stays;
- ``remove`` deletes the pod and the mark; ``forget`` (the session is deleted) the pod and,
  once it is gone, the NetworkPolicy, the Secret and the claim.

``list_workloads`` finds everything by label: each pod, and each claim marked stopped that
has no pod (a stopped session is its volume). A claim that is neither (its pod vanished) is
not listed, so the reconciler makes the session again, with back-off, on the same volume.

Every call goes through :meth:`KubernetesBackend._call` with ``_preload_content=False``
(objects stay the API's JSON) and translates the client's errors into the error tree
(``kubernetes_client.py``): no answer is :class:`BackendUnavailable`; 403 for a quota is a
retryable, plainly worded :class:`BackendError`; other 4xx are permanent.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, TypeVar

import trio
from kubernetes import client
from kubernetes.client.rest import ApiException

from appliance.backends import kubernetes_exec
from appliance.backends import kubernetes_lockdown as lockdown
from appliance.backends import kubernetes_manifests as manifests
from appliance.backends.base import (
    LABEL_SESSION,
    ExecResult,
    Observed,
    Progress,
    RunState,
    Terminal,
    WorkloadSpec,
)
from appliance.backends.kubernetes_client import (
    api_clients,
    as_json,
    listing,
    load_configuration,
    op,
    pod_changes,
    resolve,
    translate,
    unless_gone,
)
from appliance.backends.kubernetes_manifests import Json
from appliance.backends.kubernetes_state import (
    image_of,
    is_ready,
    run_state,
    start_error,
    start_step,
)
from appliance.config_kubernetes import KubeSettings
from appliance.errors import BackendError, BackendUnavailable, ClauderonError
from appliance.threads import on_thread

log = logging.getLogger(__name__)
T = TypeVar("T")
START_TIMEOUT = 600.0
GONE_TIMEOUT = 60.0


class KubernetesBackend:
    kind = "kubernetes"
    root_exec = False

    def __init__(self, *, kube: KubeSettings, instance: str, proxy_port: int,
                 hook_port: int) -> None:
        self.kube = kube
        self.instance = instance
        self.proxy_port = kube.proxy_port or proxy_port
        self.hook_port = kube.hook_port or hook_port
        self.url = "kubernetes"
        self._config: client.Configuration | None = None
        self._core: client.CoreV1Api | None = None
        self._net: client.NetworkingV1Api | None = None
        self._limiter = trio.CapacityLimiter(4)
        self._pinging = trio.CapacityLimiter(1)  # a ping given up on: appliance.threads

    # --- plumbing -------------------------------------------------------------------
    def _connect(self) -> tuple[client.CoreV1Api, client.NetworkingV1Api]:
        if self._core is None or self._net is None:
            self._config = load_configuration(self.kube)
            self.url = self._config.host
            self._core, self._net = api_clients(self._config)
        return self._core, self._net

    async def _call(self, what: str, fn: Callable[[client.CoreV1Api, client.NetworkingV1Api], T],
                    *, abandon: bool = False, limiter: trio.CapacityLimiter | None = None) -> T:
        def run() -> T:
            try:
                return fn(*self._connect())
            except ClauderonError:
                raise
            except Exception as exc:
                error = translate(exc, what, self.url)
                if isinstance(error, BackendUnavailable):
                    self._core = self._net = None  # reconnect next time
                raise error from exc

        return await on_thread(run, limiter=limiter or self._limiter, abandon=abandon)

    @property
    def ns(self) -> str:
        return self.kube.namespace

    async def _get(self, what: str, kind: str, name: str) -> Json | None:
        def get(core: client.CoreV1Api, net: client.NetworkingV1Api) -> Json | None:
            found = unless_gone(op(core, net, "read", kind), name, self.ns,
                                 _preload_content=False)
            return None if found is None else as_json(found)

        return await self._call(what, get, abandon=True)

    async def _delete(self, what: str, kind: str, name: str, grace: int | None = None) -> None:
        def delete(core: client.CoreV1Api, net: client.NetworkingV1Api) -> None:
            kwargs: dict[str, Any] = {"_preload_content": False}
            if grace is not None:
                kwargs["grace_period_seconds"] = grace
            unless_gone(op(core, net, "delete", kind), name, self.ns, **kwargs)

        await self._call(what, delete)

    async def _mark(self, name: str, *, stopped: bool) -> None:
        patch = {"metadata": {"annotations": {
            manifests.ANNOTATION_STOPPED: "true" if stopped else None}}}

        await self._call(f"mark the volume {name}", lambda core, _: unless_gone(
            core.patch_namespaced_persistent_volume_claim, name, self.ns, patch,
            _preload_content=False))

    # --- Backend protocol: inventory ----------------------------------------------------
    async def ping(self) -> None:
        await self._call("list pods", lambda core, _: core.list_namespaced_pod(
            self.ns, limit=1, _preload_content=False), abandon=True, limiter=self._pinging)

    async def list_workloads(self) -> list[Observed]:
        sel = manifests.selector(self.instance)

        def observed(found: Json, state: RunState, detail: str, image: str = "") -> Observed:
            meta = found.get("metadata") or {}
            return Observed(kind=self.kind, session_id=(meta.get("labels") or {}).get(
                LABEL_SESSION, ""), backend_id=meta.get("name", ""), name=meta.get("name", ""),
                state=state, image=image, detail=detail)

        pods, pvcs, policies = await self._call("list the sessions' pods", functools.partial(
            listing, namespace=self.ns, selector=sel), abandon=True)
        out = [lockdown.checked(observed(pod, *run_state(pod), image=image_of(pod)), pod,
                                pvcs, policies, self.kube, proxy_port=self.proxy_port,
                                hook_port=self.hook_port) for pod in pods]
        named = {o.name for o in out}
        for claim in pvcs:
            meta = claim.get("metadata") or {}
            if meta.get("name") in named or meta.get("deletionTimestamp") or \
                    (meta.get("annotations") or {}).get(manifests.ANNOTATION_STOPPED) != "true":
                continue
            out.append(observed(claim, RunState.STOPPED, "stopped (its volume is kept)"))
        return out

    async def contain(self, backend_id: str) -> None:
        claim = await self._get("read the session's volume", "pvc", backend_id)
        await self._hold(backend_id, dict(((claim or {}).get("metadata") or {})
                                          .get("labels") or {}))

    async def image_exists(self, image: str) -> bool:
        """The nodes pull images themselves: a missing one fails the start, saying so."""
        return True

    async def disk_use(self) -> dict[str, int]:
        return {}  # the workspace is the volume; the node's own disk is the cluster's

    async def rename(self, backend_id: str, name: str) -> None:
        raise BackendError(f"pod {backend_id} cannot be renamed {name}: a pod keeps the "
                           "name it was made with", retryable=False)

    async def name_holder(self, cname: str) -> str | None:
        for kind, what in (("pod", "pod"), ("pvc", "persistentvolumeclaim")):
            if await self._get(f"read the {what} {cname}", kind, cname) is not None:
                return (f"a {what} named {cname} already exists in the namespace {self.ns} "
                        f"and is no session of this appliance; delete it (`kubectl -n "
                        f"{self.ns} delete {what} {cname}`) or pick another name")
        return None

    # --- Backend protocol: lifecycle ------------------------------------------------------
    async def create(self, spec: WorkloadSpec) -> str:
        policy = manifests.network_policy(spec, self.kube, proxy_port=self.proxy_port,
                                          hook_port=self.hook_port)
        objects = [("pvc", manifests.pvc(spec, self.kube)),
                   ("secret", manifests.secret(spec, self.kube)),
                   ("netpol", policy)]
        for kind, body in objects:
            await self._ensure(kind, spec.name, body, spec.session_id)
        return spec.name

    async def _ensure(self, kind: str, name: str, body: Json, session_id: str) -> None:
        """Create ``body``; one of ours for the same session is brought up to date (the
        claim's spec never changes: only its record of the pod), anyone else's refused."""

        def ensure(core: client.CoreV1Api, net: client.NetworkingV1Api) -> None:
            try:
                op(core, net, "create", kind)(self.ns, body, _preload_content=False)
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
            existing = as_json(op(core, net, "read", kind)(name, self.ns,
                                                            _preload_content=False))
            labels = (existing.get("metadata") or {}).get("labels") or {}
            if labels.get(LABEL_SESSION) != session_id:
                raise BackendError(
                    f"a {body['kind']} named {name} already exists in the namespace {self.ns} "
                    f"and is not this session's; delete it (kubectl -n {self.ns} delete "
                    f"{body['kind'].lower()} {name}) or pick another session name",
                    retryable=False)
            if kind == "pvc":
                patch = {"metadata": {"annotations": body["metadata"]["annotations"]}}
                core.patch_namespaced_persistent_volume_claim(name, self.ns, patch,
                                                              _preload_content=False)
            else:
                op(core, net, "replace", kind)(name, self.ns, body, _preload_content=False)

        await self._call(f"create the {body['kind']} {name}", ensure)

    async def start(self, backend_id: str, *, progress: Progress | None = None) -> None:
        claim = await self._get("read the session's volume", "pvc", backend_id)
        meta = (claim or {}).get("metadata") or {}
        record = (meta.get("annotations") or {}).get(manifests.ANNOTATION_POD)
        if not record:
            raise BackendError(f"the volume {backend_id} is gone or has no pod recorded; the "
                               "session is made again", retryable=True)
        # The record is the pod as the version that created the session wrote it: made
        # with this version's containment, and behind this version's policy.
        template: Json = manifests.contained(json.loads(record), self.kube)
        await self._hold(backend_id, dict(meta.get("labels") or {}))
        pod = await self._get("read the pod", "pod", backend_id)
        if pod is not None and (run_state(pod)[0] is not RunState.RUNNING):
            await self._delete("delete the ended pod", "pod", backend_id, grace=0)
            await self._wait_gone(backend_id)
            pod = None
        if not self.kube.proxy_is_ip:
            found = await resolve(self.kube.proxy_address, within=self.kube.timeout_seconds)
            template = manifests.pinned(template, self.kube.proxy_address, found)
        await self._mark(backend_id, stopped=False)
        if pod is None:
            await self._call(f"create the pod {backend_id}", lambda core, _: core
                             .create_namespaced_pod(self.ns, template, _preload_content=False))
        try:
            await self._wait_running(backend_id, image_of(template), progress)
        except BaseException:
            # A pod that will not start is not left pending. A failed delete hides not why
            # (the reconciler deletes a failed session's pod at its next pass).
            with trio.CancelScope(shield=True), trio.move_on_after(30):
                try:
                    await self._delete("delete the pod that did not start", "pod",
                                       backend_id, grace=0)
                except ClauderonError as exc:
                    log.warning("the pod %s did not start and is not deleted yet: %s",
                                backend_id, exc, extra={"backend_id": backend_id})
            raise

    async def _hold(self, name: str, labels: dict[str, str]) -> None:
        """The session's NetworkPolicy as this version makes it, there before its pod is
        (else its egress is open), whatever policy the session had before."""
        if not labels.get(LABEL_SESSION):
            raise BackendError(f"the volume {name} names no session; its pod is not made",
                               retryable=False)
        policy = manifests.policy_for(name, labels, self.kube, proxy_port=self.proxy_port,
                                      hook_port=self.hook_port)
        await self._ensure("netpol", name, policy, labels[LABEL_SESSION])

    async def _wait_running(self, name: str, image: str, progress: Progress | None) -> None:
        said: set[str] = set()
        with trio.move_on_after(START_TIMEOUT) as scope:
            async for pod in self._watch(name):
                if pod is None:
                    raise BackendError(f"the pod {name} was deleted while it started")
                step, message = start_step(pod)
                if progress is not None and step not in said:
                    said.add(step)
                    await progress(step, message)
                problem = start_error(pod, image=image)
                if problem is not None:
                    raise problem
                if is_ready(pod):
                    return
        if scope.cancelled_caught:
            raise BackendError(f"the pod {name} did not run within {START_TIMEOUT:.0f}s "
                               "(kubectl describe pod says why)")

    async def _watch(self, name: str) -> Any:
        """The pod, each time it changes (None once deleted); a watch that ends is
        started again from the current state."""
        while True:
            pod = await self._get("read the pod", "pod", name)
            yield pod
            if pod is None:
                return
            version = (pod.get("metadata") or {}).get("resourceVersion")
            for changed in await self._call("watch the pod", functools.partial(
                    pod_changes, namespace=self.ns, name=name, version=version), abandon=True):
                yield changed
                if changed is None:
                    return

    async def _wait_gone(self, name: str) -> None:
        with trio.move_on_after(GONE_TIMEOUT):
            async for pod in self._watch(name):
                if pod is None:
                    return
        raise BackendError(f"the pod {name} is still being deleted; trying again")

    async def stop(self, backend_id: str) -> None:
        await self._mark(backend_id, stopped=True)
        await self._delete("delete the pod", "pod", backend_id)
        await self._wait_gone(backend_id)

    async def remove(self, backend_id: str) -> None:
        await self._delete("delete the pod", "pod", backend_id, grace=0)
        await self._mark(backend_id, stopped=False)

    async def forget(self, backend_id: str) -> None:
        await self._delete("delete the pod", "pod", backend_id, grace=0)
        await self._wait_gone(backend_id)  # its policy holds it until it is gone
        for kind in ("netpol", "secret", "pvc"):
            await self._delete(f"delete the {kind} {backend_id}", kind, backend_id)

    # --- Backend protocol: inside the pod -------------------------------------------------
    async def attach_command(self, backend_id: str) -> list[str]:
        return [*kubernetes_exec.kubectl(self.kube, self.ns), "attach", "-it", backend_id,
                "-c", manifests.AGENT]

    def terminal_command(self, backend_id: str, argv: list[str]) -> list[str]:
        return [*kubernetes_exec.kubectl(self.kube, self.ns), "exec", "-it", backend_id,
                "-c", manifests.AGENT, "--", *argv]

    async def exec(self, backend_id: str, argv: list[str], *, stdin: bytes | None = None,
                   user: str | None = None, seconds: float | None = None) -> ExecResult:
        if user is not None and user.split(":")[0] == "0":
            raise BackendError("exec as root is not possible in a session's pod (it runs "
                               "non-root, without privilege escalation)", retryable=False)
        def run(_core: client.CoreV1Api, _net: client.NetworkingV1Api) -> ExecResult:
            assert self._config is not None  # set by _connect, which ran first
            return kubernetes_exec.run_exec(self._config, self.ns, backend_id, argv, stdin=stdin,
                                            timeout=seconds or self.kube.timeout_seconds)

        return await self._call(f"run {argv[0]} in the pod", run)

    async def open_terminal(self, backend_id: str, argv: list[str], *, rows: int,
                            cols: int) -> Terminal:
        await self._call("connect", lambda _core, _net: None)
        assert self._config is not None
        terminal = await kubernetes_exec.KubeTerminal.open(
            self._config, self.ns, backend_id, argv, self._limiter)
        try:
            await terminal.resize(rows, cols)
        except Exception:
            await terminal.aclose()
            raise
        return terminal

    def frozen(self, backend_id: str) -> AbstractAsyncContextManager[None]:
        # A pod cannot be paused: its diff reads the branch the appliance fetched (objects,
        # not a tree walked by path), even where [kubernetes] volume_root shows its volume.
        return nullcontext()

    async def thaw(self) -> None:
        return None  # nothing is ever held (see frozen)

