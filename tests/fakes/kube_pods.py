"""The fake Kubernetes API server's kubelet: each Pod runs as Docker containers.

Part of the **test double** in :mod:`tests.fakes.kube_api` (no real API server can run on
this machine). One node (``fake-node``, labels :data:`NODE_LABELS`); a pod whose
``nodeSelector`` does not match it, or whose claim is missing, stays Pending with the
scheduler's ``Unschedulable`` condition. Init containers run one after the other to the end,
then the containers; their states, exit codes and (``FallbackToLogsOnError``) messages are
written back into the pod's status as a kubelet would. A missing image is ``ErrImagePull``.

What the pod spec asks is what Docker is told: the user from ``securityContext`` (and
``runAsNonRoot`` refused for uid 0), capabilities, ``allowPrivilegeEscalation: false`` as
no-new-privileges, CPU and memory limits, env (Secret references resolved), a claim as a
folder this fake owns (``<state>/volumes/<namespace>/<claim>``, ``subPath`` honoured), a
Secret volume as read-only files, ``status.hostIP`` from the downward API, ``dnsConfig``,
the one Docker network the fake was given (the appliance's sessions' network, so its
lockdown applies to pods too).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import docker
import docker.errors
import trio

Json = dict[str, Any]
NODE = "fake-node"
NODE_LABELS = {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}
PIDS_LIMIT = 1024


def now() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cpu(value: str) -> int:
    return int(float(value[:-1]) * 1e6) if value.endswith("m") else int(float(value) * 1e9)


def _memory(value: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return int(float(value[: -len(suffix)]) * factor)
    return int(value)


class ConfigError(Exception):
    """What a kubelet reports as CreateContainerConfigError."""


class Kubelet:
    def __init__(self, *, state: Path, network: str | None, labels: dict[str, str],
                 store: Any) -> None:
        self.state = state
        self.network = network
        self.labels = labels
        self.store = store  # the API server's objects (tests.fakes.kube_api.Store)
        #: The node's address as pods see it (``FAKE_KUBE_NODE_IP``; default loopback).
        self.node_ip = os.environ.get("FAKE_KUBE_NODE_IP", "127.0.0.1")
        self.docker = docker.from_env()

    # --- paths ------------------------------------------------------------------------
    def volume_dir(self, ns: str, claim: str) -> Path:
        return self.state / "volumes" / ns / claim

    def make_volume(self, ns: str, claim: str) -> None:
        path = self.volume_dir(ns, claim)
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o711)

    def drop_volume(self, ns: str, claim: str) -> None:
        shutil.rmtree(self.volume_dir(ns, claim), ignore_errors=True)

    # --- containers --------------------------------------------------------------------
    def _mounts(self, ns: str, pod: Json, container: Json) -> list[docker.types.Mount]:
        spec = pod["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        fs_group = (spec.get("securityContext") or {}).get("fsGroup")
        mounts = []
        for m in container.get("volumeMounts") or []:
            vol = volumes.get(m["name"])
            if vol is None:
                raise ConfigError(f'volume "{m["name"]}" not found')
            if "persistentVolumeClaim" in vol:
                claim = vol["persistentVolumeClaim"]["claimName"]
                source = self.volume_dir(ns, claim)
                if fs_group is not None and source.stat().st_gid != fs_group:
                    os.chown(source, 0, fs_group)
                    os.chmod(source, 0o2775)
                if m.get("subPath"):
                    source = source / m["subPath"]
                    source.mkdir(mode=0o755, exist_ok=True)
            elif "secret" in vol:
                source = self._secret_files(ns, pod, vol)
            else:
                raise ConfigError(f"volume type of {m['name']} is not supported by this fake")
            mounts.append(docker.types.Mount(target=m["mountPath"], source=str(source),
                                             type="bind", read_only=bool(m.get("readOnly"))))
        return mounts

    def _secret(self, ns: str, name: str) -> Json:
        secret = self.store.get("secrets", ns, name)
        if secret is None:
            raise ConfigError(f'secret "{name}" not found')
        return dict(secret)

    def _secret_files(self, ns: str, pod: Json, vol: Json) -> Path:
        src = vol["secret"]
        data = self._secret(ns, src["secretName"]).get("data") or {}
        folder = self.state / "pods" / pod["metadata"]["uid"] / vol["name"]
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        items = src.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            if item["key"] not in data:
                raise ConfigError(f'couldn\'t find key {item["key"]} in Secret '
                                  f'{ns}/{src["secretName"]}')
            target = folder / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(data[item["key"]]))
            os.chmod(target, item.get("mode", src.get("defaultMode", 0o644)))
        for d in (folder, *[p for p in folder.rglob("*") if p.is_dir()]):
            os.chmod(d, 0o755)
        os.chmod(folder.parent, 0o711)
        return folder

    def _env(self, ns: str, container: Json) -> dict[str, str]:
        env = {}
        for e in container.get("env") or []:
            if "value" in e:
                env[e["name"]] = e["value"]
            elif "valueFrom" in e and "secretKeyRef" in e["valueFrom"]:
                ref = e["valueFrom"]["secretKeyRef"]
                data = self._secret(ns, ref["name"]).get("data") or {}
                if ref["key"] not in data:
                    raise ConfigError(f'couldn\'t find key {ref["key"]} in Secret '
                                      f'{ns}/{ref["name"]}')
                env[e["name"]] = base64.b64decode(data[ref["key"]]).decode()
            elif "valueFrom" in e and "fieldRef" in e["valueFrom"]:
                path = e["valueFrom"]["fieldRef"]["fieldPath"]
                if path != "status.hostIP":
                    raise ConfigError(f"fieldRef {path} is not supported by this fake")
                env[e["name"]] = self.node_ip
        return env

    def docker_name(self, pod: Json, container: Json) -> str:
        meta = pod["metadata"]
        return f"k8s_{container['name']}_{meta['name']}_{meta['namespace']}_{meta['uid'][:8]}"

    def _user(self, pod: Json, container: Json) -> str | None:
        sc = {**(pod["spec"].get("securityContext") or {}),
              **(container.get("securityContext") or {})}
        uid, gid = sc.get("runAsUser"), sc.get("runAsGroup")
        if sc.get("runAsNonRoot") and uid in (None, 0):
            raise ConfigError("container has runAsNonRoot and image will run as root")
        if uid is None:
            return None
        return f"{uid}:{gid if gid is not None else uid}"

    def create_container(self, ns: str, pod: Json, container: Json) -> Any:
        spec = pod["spec"]
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            raise ConfigError("privileged containers are not run by this fake")
        caps = sc.get("capabilities") or {}
        limits = (container.get("resources") or {}).get("limits") or {}
        kwargs: dict[str, Any] = {
            "name": self.docker_name(pod, container),
            "labels": {**self.labels, "fake-kube.pod": f"{ns}/{pod['metadata']['name']}"},
            "environment": self._env(ns, container),
            "mounts": self._mounts(ns, pod, container),
            "tty": bool(container.get("tty")), "stdin_open": bool(container.get("stdin")),
            "detach": True, "init": True,
            "cap_drop": list(caps.get("drop") or []), "cap_add": list(caps.get("add") or []),
            "security_opt": (["no-new-privileges"]
                             if sc.get("allowPrivilegeEscalation") is False else []),
            "pids_limit": PIDS_LIMIT,
            "extra_hosts": {h: a["ip"] for a in spec.get("hostAliases") or []
                            for h in a.get("hostnames") or []},
        }
        user = self._user(pod, container)
        if user:
            kwargs["user"] = user
        if container.get("workingDir"):
            kwargs["working_dir"] = container["workingDir"]
        command = [*(container.get("command") or []), *(container.get("args") or [])]
        if container.get("command"):
            kwargs["entrypoint"] = container["command"]
            kwargs["command"] = container.get("args") or []
        elif command:
            kwargs["command"] = command
        if "cpu" in limits:
            kwargs["nano_cpus"] = _cpu(str(limits["cpu"]))
        if "memory" in limits:
            kwargs["mem_limit"] = _memory(str(limits["memory"]))
        if spec.get("dnsPolicy") == "None":
            dns = spec.get("dnsConfig") or {}
            kwargs["dns"] = list(dns.get("nameservers") or [])
            kwargs["dns_opt"] = [f"{o['name']}:{o['value']}" if o.get("value") else o["name"]
                                 for o in dns.get("options") or []]
        if self.network:
            kwargs["network"] = self.network
        else:
            kwargs["network_mode"] = "none"
        with contextlib.suppress(docker.errors.NotFound):
            self.docker.containers.get(kwargs["name"]).remove(force=True)
        return self.docker.containers.create(container["image"], **kwargs)

    def image_present(self, image: str) -> bool:
        try:
            self.docker.images.get(image)
        except docker.errors.ImageNotFound:
            return False
        return True

    def remove_pod_containers(self, ns: str, name: str) -> None:
        # Listed sparse: a container another delete removes meanwhile is not inspected.
        for c in self.docker.containers.list(
                all=True, sparse=True, filters={"label": f"fake-kube.pod={ns}/{name}"}):
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
                # Its removal is under way already (a second delete): wait for its end.
                with contextlib.suppress(docker.errors.NotFound):
                    c.wait(condition="removed", timeout=60)


def terminated(container: Any, exit_code: int, fallback_logs: bool) -> Json:
    state: Json = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                   "finishedAt": now()}
    if exit_code != 0 and fallback_logs:
        try:
            logs = container.logs(tail=80).decode("utf-8", "replace")
        except docker.errors.APIError:
            logs = ""  # the pod was deleted meanwhile
        state["message"] = logs[-2048:]
    return {"terminated": state}


async def run_pod(kubelet: Kubelet, ns: str, name: str) -> None:
    """A pod's life; a failure of this fake's kubelet is logged, never the server's end."""
    try:
        await _run_pod(kubelet, ns, name)
    except Exception:
        logging.getLogger(__name__).exception("running the pod %s/%s", ns, name)


async def _run_pod(kubelet: Kubelet, ns: str, name: str) -> None:
    """Carry a pod from Pending to Running (or as far as it can go), then watch its end."""
    store = kubelet.store
    pod = store.get("pods", ns, name)
    if pod is None:
        return
    spec = pod["spec"]

    def status(**changes: Any) -> Json | None:
        return store.update_status("pods", ns, name, changes)

    wanted = spec.get("nodeSelector") or {}
    missing_claims = [v["persistentVolumeClaim"]["claimName"] for v in spec.get("volumes") or []
                      if "persistentVolumeClaim" in v and store.get(
                          "persistentvolumeclaims", ns, v["persistentVolumeClaim"]["claimName"])
                      is None]
    if any(NODE_LABELS.get(k) != v for k, v in wanted.items()) or missing_claims:
        message = ("0/1 nodes are available: 1 node(s) didn't match Pod's node "
                   "affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is "
                   "not helpful for scheduling." if not missing_claims else
                   f'persistentvolumeclaim "{missing_claims[0]}" not found')
        status(conditions=[{"type": "PodScheduled", "status": "False",
                            "reason": "Unschedulable", "message": message,
                            "lastTransitionTime": now()}])
        return
    store.update_spec("pods", ns, name, {"nodeName": NODE})
    conditions = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}]
    status(conditions=conditions, hostIP=kubelet.node_ip, startTime=now())

    def waiting(c: Json, reason: str, message: str) -> Json:
        return {"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": message}}}

    inits: list[Json] = [waiting(c, "PodInitializing", "") for c in spec.get("initContainers")
                         or []]
    mains: list[Json] = [waiting(c, "PodInitializing", "") for c in spec["containers"]]
    status(initContainerStatuses=inits, containerStatuses=mains)
    for i, c in enumerate(spec.get("initContainers") or []):
        code = await _run_one(kubelet, ns, pod, c, inits, i, "initContainerStatuses")
        if code is None:
            return
        if code != 0:
            status(phase="Failed")
            return
    started = []
    for i, c in enumerate(spec["containers"]):
        container = await _start_one(kubelet, ns, pod, c, mains, i)
        if container is None:
            return
        started.append((i, c, container))
    status(phase="Running", conditions=[*conditions, {"type": "Ready", "status": "True",
                                                       "lastTransitionTime": now()}])
    codes = []
    for i, c, container in started:
        try:
            result = await trio.to_thread.run_sync(lambda ct=container: ct.wait())
        except docker.errors.NotFound:
            return
        code = int(result.get("StatusCode", -1))
        codes.append(code)
        if store.get("pods", ns, name) is None:
            return
        mains[i] = {**mains[i], "ready": False, "state": await trio.to_thread.run_sync(
            terminated, container, code,
            c.get("terminationMessagePolicy") == "FallbackToLogsOnError")}
        status(containerStatuses=mains)
    status(phase="Succeeded" if all(c == 0 for c in codes) else "Failed")


async def _start_one(kubelet: Kubelet, ns: str, pod: Json, c: Json, statuses: list[Json],
                     i: int, which: str = "containerStatuses") -> Any:
    store, name = kubelet.store, pod["metadata"]["name"]
    if not await trio.to_thread.run_sync(kubelet.image_present, c["image"]):
        statuses[i] = {**statuses[i], "state": {"waiting": {
            "reason": "ErrImagePull",
            "message": f'rpc error: code = Unknown desc = failed to pull and unpack image '
                       f'"{c["image"]}": pull access denied, repository does not exist or '
                       "may require authorization"}}}
        store.update_status("pods", ns, name, {which: statuses})
        return None
    try:
        container = await trio.to_thread.run_sync(kubelet.create_container, ns, pod, c)
    except ConfigError as exc:
        statuses[i] = {**statuses[i], "state": {"waiting": {
            "reason": "CreateContainerConfigError", "message": str(exc)}}}
        store.update_status("pods", ns, name, {which: statuses})
        return None
    if store.get("pods", ns, name) is None:  # deleted meanwhile
        await trio.to_thread.run_sync(lambda: container.remove(force=True))
        return None
    await trio.to_thread.run_sync(container.start)
    statuses[i] = {**statuses[i], "ready": True, "containerID": f"docker://{container.id}",
                   "state": {"running": {"startedAt": now()}}}
    store.update_status("pods", ns, name, {which: statuses})
    return container


async def _run_one(kubelet: Kubelet, ns: str, pod: Json, c: Json, statuses: list[Json],
                   i: int, which: str) -> int | None:
    container = await _start_one(kubelet, ns, pod, c, statuses, i, which)
    if container is None:
        return None
    try:
        result = await trio.to_thread.run_sync(container.wait)
    except docker.errors.NotFound:
        return None  # deleted with its pod
    code = int(result.get("StatusCode", -1))
    statuses[i] = {**statuses[i], "ready": code == 0, "state": await trio.to_thread.run_sync(
        terminated, container, code, c.get("terminationMessagePolicy") ==
        "FallbackToLogsOnError")}
    kubelet.store.update_status("pods", ns, pod["metadata"]["name"], {which: statuses})
    with contextlib.suppress(docker.errors.APIError):
        await trio.to_thread.run_sync(lambda: container.remove(force=True))
    return code
