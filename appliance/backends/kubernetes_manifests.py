"""The Kubernetes objects of one session, as plain JSON data (pure).

A :class:`~appliance.backends.base.WorkloadSpec` (the container contract, built by
:func:`appliance.contract.pod_workload_for`) plus :class:`KubeSettings` become four objects,
all named ``clauderon-<name>`` (a DNS label: at most 50 characters) and labelled like the
Docker containers (``clauderon.session``, ``clauderon.name``, ``clauderon.instance``,
``clauderon.managed``):

- a **PersistentVolumeClaim**: the workspace (``workspace/``) and the agent home (``home/``),
  kept across archive and unarchive; its annotations hold the pod to make at the next start
  (:data:`ANNOTATION_POD`, no secret in it, made with this version's containment however
  old the record: :func:`contained`) and whether the session is stopped;
- a **Secret**: the proxy URL (it carries the session's proxy credentials), the hook token,
  and the read-only files (the proxy's CA, the hook script, managed settings, the start
  script): nothing of it is in the pod spec;
- a **NetworkPolicy**: no ingress; egress to the proxy and hook ports of the appliance only,
  never to the cluster DNS (a resolver that answers any name is a way out: a tunnel through
  DNS queries passes no proxy and no audit), made again before every pod
  (:func:`policy_for`). A pod resolves nothing: the appliance's
  Service name is pinned to the addresses the appliance resolved it to (:func:`pinned`);
- a **Pod**: an init container that clones the remote through the proxy and checks out the
  session branch (:data:`CLONE_SCRIPT`), then the agent container; both non-root with the
  configured uid, no privilege escalation, every capability dropped, seccomp
  ``RuntimeDefault``, no service account token, requests = limits from the session;
  labelled with the version that made it (:data:`MADE_BY`).

Neighbours: :mod:`appliance.backends.kubernetes` (the client shell that sends these),
:mod:`appliance.backends.kubernetes_state` (reading pods back).
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.backends.base import (
    LABEL_INSTANCE,
    LABEL_MADE_BY,
    LABEL_MANAGED,
    LABEL_SESSION,
    CloneSpec,
    WorkloadSpec,
)
from appliance.config_kubernetes import KubeSettings
from appliance.contract import CONTAINER_HOME, WORKSPACE
from appliance.resources import parse_memory

Json = dict[str, Any]

ANNOTATION_POD = "clauderon.io/pod"
#: The version that made a pod (its ``LABEL_MADE_BY``): the release and a digest of this
#: module, which says what a pod is made with; a label's value has no space.
MADE_BY = f"{__version__}-{hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]}"
#: What changes a pod this version made so that it lacks containment.
CHANGED_BY = "an admission webhook, a mutating policy"
ANNOTATION_STOPPED = "clauderon.io/stopped"
VOLUME = "session"
FILES_VOLUME = "clauderon-files"
AGENT = "agent"
CLONE = "clone"
DATA = "/data"
#: Environment variables whose values are secret to the session (its proxy credentials and
#: hook token): they come from the Secret, never the pod spec.
SECRET_ENV = {"HTTPS_PROXY": "proxy-url", "HTTP_PROXY": "proxy-url",
              "https_proxy": "proxy-url", "http_proxy": "proxy-url",
              "CLAUDERON_HOOK_TOKEN": "hook-token"}

#: The kubelet's port on every node, which a session's NetworkPolicy forbids: the init
#: container tries it first, and exits :data:`UNCONFINED_EXIT` when it gets through (the
#: cluster does not enforce the policy), before anything else runs in the pod.
KUBELET_PORT = 10250
UNCONFINED_EXIT = 77

#: The init container: first the node's kubelet (above); then clone the remote through
#: the proxy into the volume (once: a volume that has the workspace keeps it), the session
#: branch from the remote when it is there (the session was made again), else at the base's
#: commit. The post-commit hook pushes the branch through the proxy, where the appliance
#: fetches it into the user's repository.
CLONE_SCRIPT = r"""set -eu
if [ -n "${CLAUDERON_NODE:-}" ] && timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' \
     "$CLAUDERON_NODE" "$CLAUDERON_KUBELET_PORT" 2>/dev/null; then
  echo "the pod reached its node's kubelet ($CLAUDERON_NODE:$CLAUDERON_KUBELET_PORT)" >&2
  exit "$CLAUDERON_UNCONFINED"
fi
ws=/data/workspace
mkdir -p /data/home
if [ -d "$ws/.git" ]; then echo "clauderon: the workspace is on the volume already"; exit 0; fi
rm -rf "$ws" "$ws.partial"
git clone --quiet --no-checkout --origin origin -- "$CLAUDERON_REMOTE" "$ws.partial"
cd "$ws.partial"
b="$CLAUDERON_BRANCH"
if git rev-parse -q --verify "refs/remotes/origin/$b" >/dev/null; then
  git checkout -q -B "$b" "refs/remotes/origin/$b"
elif git cat-file -e "$CLAUDERON_START^{commit}" 2>/dev/null; then
  git checkout -q -b "$b" "$CLAUDERON_START"
else
  echo "the base commit $CLAUDERON_START ($CLAUDERON_BASE) is not on the remote" \
       "$CLAUDERON_REMOTE: push it there, then retry the session" >&2
  exit 1
fi
git config branch."$b".remote origin
git config branch."$b".merge "refs/heads/$b"
git config push.default upstream
mkdir -p .git/hooks
cat > .git/hooks/post-commit <<'HOOK'
#!/bin/sh
# Written by clauderon: the session branch goes to the remote (through the proxy) at once.
b=$(git symbolic-ref --short -q HEAD) || exit 0
git push --quiet --force origin "HEAD:refs/heads/$b" >/dev/null 2>&1 &
HOOK
chmod 0755 .git/hooks/post-commit
cd /
mv "$ws.partial" "$ws"
echo "clauderon: cloned, on $b"
"""


def selector(instance: str) -> str:
    """The label selector of every object of this appliance instance."""
    return f"{LABEL_MANAGED}=true,{LABEL_INSTANCE}={instance}"


def _meta(spec: WorkloadSpec, kube: KubeSettings, **annotations: str) -> Json:
    meta: Json = {"name": spec.name, "namespace": kube.namespace,
                  "labels": dict(spec.labels)}
    if annotations:
        meta["annotations"] = annotations
    return meta


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _file_key(path: str) -> str:
    """A Secret key for a file path: ``/etc/clauderon/x.sh`` -> ``etc.clauderon.x.sh``."""
    return path.strip("/").replace("/", ".")


def secret(spec: WorkloadSpec, kube: KubeSettings) -> Json:
    env = dict(spec.env)
    data = {"proxy-url": _b64(env["HTTPS_PROXY"].encode()),
            "hook-token": _b64(env["CLAUDERON_HOOK_TOKEN"].encode())}
    for f in spec.files:
        data[_file_key(f.path)] = _b64(f.content)
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(spec, kube),
            "type": "Opaque", "data": data}


def _record(obj: Json) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def pvc(spec: WorkloadSpec, kube: KubeSettings) -> Json:
    """The claim, recording the pod to make; made stopped (the start marks it running)."""
    body: Json = {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": kube.pvc_size}}}
    if kube.storage_class:
        body["storageClassName"] = kube.storage_class
    annotations = {ANNOTATION_POD: _record(pod(spec, kube)), ANNOTATION_STOPPED: "true"}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": _meta(spec, kube, **annotations), "spec": body}


def network_policy(spec: WorkloadSpec, kube: KubeSettings, *, proxy_port: int,
                   hook_port: int) -> Json:
    return policy_for(spec.name, spec.labels, kube, proxy_port=proxy_port,
                      hook_port=hook_port)


def policy_for(name: str, labels: Mapping[str, str], kube: KubeSettings, *,
               proxy_port: int, hook_port: int) -> Json:
    """The NetworkPolicy of the session ``labels`` name (its claim's labels), as this
    version makes it: built again before every pod, never read back from a record an older
    version wrote (one that let more out)."""
    ports = [{"protocol": "TCP", "port": p} for p in sorted({proxy_port, hook_port})]
    if kube.proxy_is_ip:
        bits = 128 if ":" in kube.proxy_address else 32
        to: list[Json] = [{"ipBlock": {"cidr": f"{kube.proxy_address}/{bits}"}}]
    else:
        to = [{"podSelector": {"matchLabels": dict(kube.appliance_labels)}}]
    # No rule for the cluster DNS, even when the appliance is reached by name: the pod
    # finds that name in its hosts file (:func:`pinned`).
    egress: list[Json] = [{"to": to, "ports": ports}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": kube.namespace, "labels": dict(labels)},
            "spec": {"podSelector": {"matchLabels": {LABEL_SESSION: labels[LABEL_SESSION]}},
                     "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": egress}}


def _resources(spec: WorkloadSpec) -> Json:
    limits: Json = {}
    if spec.cpu:
        limits["cpu"] = f"{round(spec.cpu * 1000)}m"
    if spec.memory:
        limits["memory"] = str(parse_memory(spec.memory))
    # Requests = limits: a session gets what it may use, and the scheduler knows it.
    return {"requests": dict(limits), "limits": limits}


def _security(uid: int) -> Json:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid,
            "allowPrivilegeEscalation": False, "privileged": False,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def _env(spec: WorkloadSpec) -> list[Json]:
    out: list[Json] = []
    for key, value in sorted(spec.env.items()):
        if key in SECRET_ENV:
            out.append({"name": key, "valueFrom": {"secretKeyRef": {
                "name": spec.name, "key": SECRET_ENV[key]}}})
        else:
            out.append({"name": key, "value": value})
    return out


def _file_mounts(spec: WorkloadSpec) -> tuple[list[Json], list[Json]]:
    """One Secret volume per folder that gets files (``/etc/clauderon``, ...), each file
    an item: volumes, mounts."""
    folders: dict[str, list[Json]] = {}
    for f in spec.files:
        parent = posixpath.dirname(f.path)
        top = "/".join(parent.split("/")[:3]) or parent  # /etc/clauderon for nested ones
        folders.setdefault(top, []).append({
            "key": _file_key(f.path), "path": posixpath.relpath(f.path, top),
            "mode": f.mode})
    volumes, mounts = [], []
    for i, (folder, items) in enumerate(sorted(folders.items())):
        vol = f"{FILES_VOLUME}-{i}"
        volumes.append({"name": vol, "secret": {"secretName": spec.name,
                                                "defaultMode": 0o444, "items": items}})
        mounts.append({"name": vol, "mountPath": folder, "readOnly": True})
    return volumes, mounts


def pod(spec: WorkloadSpec, kube: KubeSettings) -> Json:
    if spec.clone is None:
        raise ValueError("a pod needs the clone of its workspace (CloneSpec)")
    uid = int(spec.user.split(":")[0])
    file_volumes, file_mounts = _file_mounts(spec)
    ca = [m for m in file_mounts if m["mountPath"] == "/etc/clauderon"]
    init = _clone_container(spec, spec.clone, kube, uid=uid, ca=ca)
    agent = _agent_container(spec, kube, uid=uid, file_mounts=file_mounts)
    body: Json = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 5,
        "initContainers": [init],
        "containers": [agent],
        "volumes": [{"name": VOLUME, "persistentVolumeClaim": {"claimName": spec.name}},
                    *file_volumes],
        **_lockdown(uid),
    }
    if kube.service_account:
        body["serviceAccountName"] = kube.service_account
    if kube.node_selector:
        body["nodeSelector"] = dict(kube.node_selector)
    if kube.tolerations:
        body["tolerations"] = [dict(t) for t in kube.tolerations]
    meta = _meta(spec, kube)
    meta["labels"][LABEL_MADE_BY] = MADE_BY
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body}


def _lockdown(uid: int) -> Json:
    """What every session pod's spec holds, however its record was written: no Kubernetes
    API token and no service links (the cluster's addresses), nothing of the node's
    network, processes or IPC, non-root ``uid`` under seccomp ``RuntimeDefault``, and
    nothing to resolve: the proxy is an address, or a name in the pod's hosts file
    (:func:`pinned`); a name the agent asks for goes to its own loopback, to nothing (as on
    Docker), never to a resolver that forwards it out of the cluster."""
    return {"automountServiceAccountToken": False, "enableServiceLinks": False,
            "hostNetwork": False, "hostPID": False, "hostIPC": False,
            "shareProcessNamespace": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid,
                                "fsGroup": uid, "seccompProfile": {"type": "RuntimeDefault"}},
            "dnsPolicy": "None",
            "dnsConfig": {"nameservers": ["127.0.0.1"],
                          "options": [{"name": "timeout", "value": "1"}]}}


def contained(record: Json, kube: KubeSettings) -> Json:
    """The pod a claim ``record``s (written by the version that created the session) with
    this version's containment: the pod's :func:`_lockdown` and every container's
    :func:`_security`, as the record's non-root uid (else the configured one). A record
    from before a rule is brought up to date, never made as it stands."""
    pod_: Json = json.loads(json.dumps(record))
    spec = pod_["spec"]
    uid = (spec.get("securityContext") or {}).get("runAsUser")
    if type(uid) is not int or uid <= 0:
        uid = kube.run_as_user
    spec.update(_lockdown(uid))
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        c["securityContext"] = _security(uid)
    meta = pod_.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), LABEL_MADE_BY: MADE_BY}  # made by us now
    return pod_


def pinned(template: Json, name: str, addresses: list[str]) -> Json:
    """The pod ``template`` with ``name`` (the appliance's Service) pinned to ``addresses``
    in its hosts file, as the appliance resolved it when it makes the pod: the pod itself
    resolves nothing."""
    if not addresses:
        raise ValueError(f"no address to pin {name} to")
    pod_: Json = json.loads(json.dumps(template))
    pod_["spec"]["hostAliases"] = [{"ip": ip, "hostnames": [name]}
                                   for ip in sorted(set(addresses))]
    return pod_


def _container(spec: WorkloadSpec, kube: KubeSettings, *, uid: int, **fields: Any) -> Json:
    """A container of the pod: the session's image and resources, run as ``uid`` without
    privileges (both containers alike)."""
    return {"image": spec.image, "imagePullPolicy": kube.image_pull_policy, **fields,
            "securityContext": _security(uid), "resources": _resources(spec),
            "terminationMessagePolicy": "FallbackToLogsOnError"}


def _clone_container(spec: WorkloadSpec, clone: CloneSpec, kube: KubeSettings, *, uid: int,
                     ca: list[Json]) -> Json:
    """The init container that clones the session's branch onto its volume."""
    clone_env = [
        {"name": "CLAUDERON_REMOTE", "value": clone.remote_url},
        {"name": "CLAUDERON_BRANCH", "value": clone.branch},
        {"name": "CLAUDERON_START", "value": clone.start},
        {"name": "CLAUDERON_BASE", "value": clone.base},
        {"name": "HOME", "value": "/tmp"},
        {"name": "GIT_TERMINAL_PROMPT", "value": "0"},
        {"name": "CLAUDERON_NODE", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "CLAUDERON_KUBELET_PORT", "value": str(KUBELET_PORT)},
        {"name": "CLAUDERON_UNCONFINED", "value": str(UNCONFINED_EXIT)},
        *[e for e in _env(spec) if e["name"] in (
            "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "GIT_SSL_CAINFO")],
    ]
    return _container(spec, kube, uid=uid, name=CLONE, command=["sh", "-c", CLONE_SCRIPT],
                      env=clone_env, volumeMounts=[{"name": VOLUME, "mountPath": DATA}, *ca])


def _agent_container(spec: WorkloadSpec, kube: KubeSettings, *, uid: int,
                     file_mounts: list[Json]) -> Json:
    """The agent's container: the workspace and home on the volume, the files mounted."""
    agent = _container(spec, kube, uid=uid, name=AGENT, env=_env(spec),
                       workingDir=spec.workdir, tty=True, stdin=True, volumeMounts=[
                           {"name": VOLUME, "mountPath": WORKSPACE, "subPath": "workspace"},
                           {"name": VOLUME, "mountPath": CONTAINER_HOME, "subPath": "home"},
                           *file_mounts])
    if spec.command:
        agent["command"] = list(spec.command)
    return agent
