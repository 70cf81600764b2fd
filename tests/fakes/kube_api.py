"""A FAKE Kubernetes API server: the one test double of the Kubernetes backend's tests.

No real API server can run on this machine, so this process stands in for one, speaking the
wire formats the official ``kubernetes`` client uses, unchanged: HTTPS with a bearer token
(401 without), the core/v1 and networking.k8s.io/v1 REST paths for Pods, PVCs, Secrets,
ResourceQuotas and NetworkPolicies (create, get, list with label and field selectors,
replace, merge/strategic-merge patch, delete), ``Status`` error bodies with the real reasons
and codes (404 NotFound, 409 AlreadyExists, 422 Invalid, 403 Forbidden for a quota), list
``?watch=true`` as a stream of ``{"type": "ADDED"|"MODIFIED"|"DELETED", "object": ...}``
lines, and ``pods/<name>/exec`` as a websocket on the ``v4.channel.k8s.io`` subprotocol (one
channel byte before each message: 0 stdin, 1 stdout, 2 stderr, 3 the final Status, 4
resize).

Pods really run: :mod:`tests.fakes.kube_pods` runs each as Docker containers on the network
it is given (the appliance's sessions' network, whose firewall applies to them too), and a
PVC is a folder this fake owns. NetworkPolicies are stored and checked for shape only: this
fake cannot enforce them (the Docker network's lockdown is what confines pods here); it
records, in ``STATE_DIR/policy-log.jsonl``, which policies selected each pod when it was
made and which pods a policy still selected when it was deleted.

Run: ``python -m tests.fakes.kube_api STATE_DIR NETWORK LABEL=VALUE``; it writes
``STATE_DIR/ready.json`` (port, token, CA path) once it listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import re
import secrets
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio
import trustme
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, request, websocket
from quart_trio import QuartTrio

from tests.fakes import kube_exec, kube_faults
from tests.fakes.kube_pods import Kubelet, now, run_pod

Json = dict[str, Any]
KINDS = {"pods": ("Pod", "v1"), "persistentvolumeclaims": ("PersistentVolumeClaim", "v1"),
         "secrets": ("Secret", "v1"), "resourcequotas": ("ResourceQuota", "v1"),
         "networkpolicies": ("NetworkPolicy", "networking.k8s.io/v1")}
NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def status_body(code: int, reason: str, message: str) -> Json:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class Store:
    """Every object by resource, namespace and name; each change feeds the watchers."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Json]] = {}
        self.version = itertools.count(1000)
        self.watchers: list[tuple[str, str, trio.MemorySendChannel[Json]]] = []

    def _bucket(self, resource: str, ns: str) -> dict[str, Json]:
        return self.objects.setdefault((resource, ns), {})

    def get(self, resource: str, ns: str, name: str) -> Json | None:
        return self._bucket(resource, ns).get(name)

    def items(self, resource: str, ns: str) -> list[Json]:
        return list(self._bucket(resource, ns).values())

    def _emit(self, resource: str, ns: str, kind: str, obj: Json) -> None:
        for r, n, send in list(self.watchers):
            if r == resource and n == ns:
                with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError,
                                         trio.ClosedResourceError):
                    send.send_nowait({"type": kind, "object": copy.deepcopy(obj)})

    def put(self, resource: str, ns: str, obj: Json, event: str) -> Json:
        obj["metadata"]["resourceVersion"] = str(next(self.version))
        self._bucket(resource, ns)[obj["metadata"]["name"]] = obj
        self._emit(resource, ns, event, obj)
        return obj

    def update_status(self, resource: str, ns: str, name: str, changes: Json) -> Json | None:
        obj = self.get(resource, ns, name)
        if obj is None:
            return None
        obj = copy.deepcopy(obj)
        obj.setdefault("status", {}).update(copy.deepcopy(changes))
        return self.put(resource, ns, obj, "MODIFIED")

    def update_spec(self, resource: str, ns: str, name: str, changes: Json) -> None:
        obj = self.get(resource, ns, name)
        if obj is not None:
            obj = copy.deepcopy(obj)
            obj["spec"].update(changes)
            self.put(resource, ns, obj, "MODIFIED")

    def drop(self, resource: str, ns: str, name: str) -> None:
        obj = self._bucket(resource, ns).pop(name, None)
        if obj is not None:
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(next(self.version))
            self._emit(resource, ns, "DELETED", obj)


def matches(obj: Json, labels: str | None, fields: str | None) -> bool:
    have = obj["metadata"].get("labels") or {}
    for term in filter(None, (labels or "").split(",")):
        key, _, value = term.partition("=")
        if have.get(key.strip()) != value.strip().lstrip("="):
            return False
    for term in filter(None, (fields or "").split(",")):
        key, _, value = term.partition("=")
        if key == "metadata.name" and obj["metadata"]["name"] != value:
            return False
        if key == "metadata.namespace" and obj["metadata"]["namespace"] != value:
            return False
    return True


def merge(target: Json, patch: Json) -> Json:
    """JSON merge patch (RFC 7386), which strategic merge equals for maps."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def validate(resource: str, obj: Json) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    if not NAME.fullmatch(name) or len(name) > 253 or (resource == "pods" and len(name) > 63):
        raise ApiError(422, "Invalid", f"metadata.name: Invalid value: {name!r}: a lowercase "
                       "RFC 1123 subdomain must consist of lower case alphanumeric characters")
    for key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.fullmatch(value):
            raise ApiError(422, "Invalid", f"metadata.labels: Invalid value: {value!r} ({key})")
    if resource == "networkpolicies":
        spec = obj.get("spec") or {}
        if "podSelector" not in spec:
            raise ApiError(422, "Invalid", "spec.podSelector: Required value")
        if not set(spec.get("policyTypes") or []) <= {"Ingress", "Egress"}:
            raise ApiError(422, "Invalid", "spec.policyTypes: Unsupported value")
        for rule in spec.get("egress") or []:
            for port in rule.get("ports") or []:
                if port.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP") or \
                        not 1 <= int(port.get("port", 1)) <= 65535:
                    raise ApiError(422, "Invalid", f"spec.egress.ports: Invalid value: {port}")
            for peer in rule.get("to") or []:
                if not set(peer) <= {"ipBlock", "podSelector", "namespaceSelector"}:
                    raise ApiError(422, "Invalid", f"spec.egress.to: Invalid value: {peer}")
    if resource == "pods":
        spec = obj.get("spec") or {}
        if not spec.get("containers"):
            raise ApiError(422, "Invalid", "spec.containers: Required value")


class FakeApiServer:
    def __init__(self, state: Path, network: str | None, labels: dict[str, str]) -> None:
        self.state = state
        self.token = secrets.token_urlsafe(24)
        self.store = Store()
        self.kubelet = Kubelet(state=state, network=network, labels=labels, store=self.store)
        self.nursery: trio.Nursery | None = None
        self.app = self._build()

    # --- REST ---------------------------------------------------------------------------
    def create(self, resource: str, ns: str, body: Json) -> Json:
        kind, api_version = KINDS[resource]
        if body.get("kind") not in (None, kind):
            raise ApiError(400, "BadRequest", f"the body is a {body.get('kind')}, not a {kind}")
        validate(resource, body)
        name = body["metadata"]["name"]
        if self.store.get(resource, ns, name) is not None:
            raise ApiError(409, "AlreadyExists", f'{resource} "{name}" already exists')
        if resource == "pods":
            self._admit_quota(ns, name)
        obj = copy.deepcopy(body)
        obj["kind"], obj["apiVersion"] = kind, api_version
        obj["metadata"].update(namespace=ns, uid=str(uuid.uuid4()), creationTimestamp=now())
        if resource == "pods":
            obj["status"] = {"phase": "Pending", "qosClass": "Guaranteed"}
        elif resource == "persistentvolumeclaims":
            self.kubelet.make_volume(ns, name)
            obj["status"] = {"phase": "Bound", "accessModes": obj["spec"].get("accessModes"),
                             "capacity": obj["spec"]["resources"]["requests"]}
        if resource == "pods":
            self._record("pod-created", pod=name, policies=self._policies_of(ns, obj))
        self.store.put(resource, ns, obj, "ADDED")
        if resource == "pods" and self.nursery is not None:
            self.nursery.start_soon(run_pod, self.kubelet, ns, name)
        return obj

    def _policies_of(self, ns: str, pod: Json) -> list[str]:
        """The NetworkPolicies of ``ns`` that select ``pod`` (by ``matchLabels``)."""
        labels = pod["metadata"].get("labels") or {}
        return sorted(p["metadata"]["name"] for p in self.store.items("networkpolicies", ns)
                      if (p["spec"]["podSelector"].get("matchLabels") or {}).items()
                      <= labels.items())

    def _record(self, event: str, **fields: Any) -> None:
        """The order of what the appliance did that containment rests on, for the tests:
        each pod made with the policies that selected it then, each policy deleted with the
        pods it still selected (``STATE_DIR/policy-log.jsonl``)."""
        with (self.state / "policy-log.jsonl").open("a") as log:
            log.write(json.dumps({"event": event, **fields}) + "\n")

    def _admit_quota(self, ns: str, name: str) -> None:
        for quota in self.store.items("resourcequotas", ns):
            hard = int(((quota.get("spec") or {}).get("hard") or {}).get("pods", 10**9))
            used = len(self.store.items("pods", ns))
            if used + 1 > hard:
                q = quota["metadata"]["name"]
                raise ApiError(403, "Forbidden", f'pods "{name}" is forbidden: exceeded quota: '
                               f"{q}, requested: pods=1, used: pods={used}, limited: "
                               f"pods={hard}")

    def read(self, resource: str, ns: str, name: str) -> Json:
        obj = self.store.get(resource, ns, name)
        if obj is None:
            raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
        return obj

    async def delete(self, resource: str, ns: str, name: str) -> Json:
        obj = copy.deepcopy(self.read(resource, ns, name))
        if resource == "pods":
            obj["metadata"]["deletionTimestamp"] = now()
            self.store.put(resource, ns, obj, "MODIFIED")
            await trio.to_thread.run_sync(self.kubelet.remove_pod_containers, ns, name)
        elif resource == "persistentvolumeclaims":
            self.kubelet.drop_volume(ns, name)
        elif resource == "networkpolicies":
            self._record("policy-deleted", policy=name, pods=sorted(
                p["metadata"]["name"] for p in self.store.items("pods", ns)
                if name in self._policies_of(ns, p)))
        self.store.drop(resource, ns, name)
        return obj

    def _build(self) -> QuartTrio:
        app = QuartTrio(__name__)
        server = self
        prefixes = ("/api/v1/namespaces/<ns>/<resource>",
                    "/apis/networking.k8s.io/v1/namespaces/<ns>/<resource>")

        def authorized() -> bool:
            return request.headers.get("authorization") == f"Bearer {server.token}"

        def answer(body: Json, code: int = 200) -> Response:
            return Response(json.dumps(body), status=code, content_type="application/json")

        def failed(exc: ApiError) -> Response:
            return answer(status_body(exc.code, exc.reason, exc.message), exc.code)

        @app.before_request
        async def auth() -> Response | None:
            if not authorized():
                return answer(status_body(401, "Unauthorized", "Unauthorized"), 401)
            return None

        @app.get("/version")
        async def version() -> Response:
            return answer({"major": "1", "minor": "30", "gitVersion": "v1.30.0-fake"})

        async def collection(ns: str, resource: str) -> Response:
            if resource not in KINDS:
                return failed(ApiError(404, "NotFound", f"the server could not find {resource}"))
            try:
                if request.method == "POST":
                    body = await request.get_json(force=True)
                    return answer(server.create(resource, ns, body), 201)
            except ApiError as exc:
                return failed(exc)
            labels = request.args.get("labelSelector")
            fields = request.args.get("fieldSelector")
            if request.args.get("watch") in ("true", "1"):
                return await server.watch(resource, ns, labels, fields)
            await kube_faults.stall_if_told(server.state, "list", resource)
            items = [o for o in server.store.items(resource, ns) if matches(o, labels, fields)]
            kind, api_version = KINDS[resource]
            return answer({"kind": f"{kind}List", "apiVersion": api_version,
                           "metadata": {"resourceVersion": str(next(server.store.version))},
                           "items": items})

        async def one(ns: str, resource: str, name: str) -> Response:
            if resource not in KINDS:
                return failed(ApiError(404, "NotFound", f"the server could not find {resource}"))
            try:
                if request.method == "GET":
                    return answer(server.read(resource, ns, name))
                if request.method == "DELETE":
                    if kube_faults.refused(server.state, "delete", resource):
                        raise ApiError(500, "InternalError", "etcdserver: request timed out")
                    return answer(await server.delete(resource, ns, name))
                current = copy.deepcopy(server.read(resource, ns, name))
                body = await request.get_json(force=True)
                if request.method == "PUT":
                    validate(resource, body)
                    body = {**body, "kind": current["kind"], "apiVersion": current["apiVersion"]}
                    body["metadata"] = {**current["metadata"], **body["metadata"]}
                    return answer(server.store.put(resource, ns, body, "MODIFIED"))
                kind = request.headers.get("content-type", "").split(";")[0]
                if kind not in ("application/merge-patch+json",
                                "application/strategic-merge-patch+json"):
                    raise ApiError(415, "UnsupportedMediaType", f"{kind} is not supported here")
                return answer(server.store.put(resource, ns, merge(current, body), "MODIFIED"))
            except ApiError as exc:
                return failed(exc)

        for prefix in prefixes:
            app.add_url_rule(prefix, f"collection{prefix}", collection, methods=["GET", "POST"])
            app.add_url_rule(f"{prefix}/<name>", f"one{prefix}", one,
                             methods=["GET", "PUT", "PATCH", "DELETE"])

        @app.websocket("/api/v1/namespaces/<ns>/pods/<name>/exec")
        async def exec_(ns: str, name: str) -> Response | None:
            if websocket.headers.get("authorization") != f"Bearer {server.token}":
                return answer(status_body(401, "Unauthorized", "Unauthorized"), 401)
            return await kube_exec.serve_exec(server, ns, name)

        return app

    async def watch(self, resource: str, ns: str, labels: str | None,
                    fields: str | None) -> Response:
        send, receive = trio.open_memory_channel[Json](1000)
        entry = (resource, ns, send)
        self.store.watchers.append(entry)
        since = int(request.args.get("resourceVersion") or 0)
        timeout = float(request.args.get("timeoutSeconds") or 300)
        backlog = [{"type": "ADDED", "object": copy.deepcopy(o)}
                   for o in self.store.items(resource, ns)
                   if int(o["metadata"]["resourceVersion"]) > since]

        async def lines() -> AsyncIterator[bytes]:
            try:
                for event in backlog:
                    if matches(event["object"], labels, fields):
                        yield (json.dumps(event) + "\n").encode()
                with trio.move_on_after(timeout):
                    async for event in receive:
                        if matches(event["object"], labels, fields):
                            yield (json.dumps(event) + "\n").encode()
            finally:
                self.store.watchers.remove(entry)

        response = Response(lines(), content_type="application/json")
        response.timeout = None
        return response


async def main(state: Path, network: str | None, labels: dict[str, str]) -> None:
    state.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    (state / "ca.pem").write_bytes(ca.cert_pem.bytes())
    cert.private_key_and_cert_chain_pem.write_to_path(str(state / "server.pem"))
    server = FakeApiServer(state, network, labels)
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.certfile = config.keyfile = str(state / "server.pem")
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        server.nursery = nursery
        binds = await nursery.start(lambda task_status: serve(
            server.app, config, task_status=task_status))
        port = int(str(binds[0]).rsplit(":", 1)[1])
        # Written whole, then named: a reader never sees half of it.
        (state / "ready.json.tmp").write_text(json.dumps({
            "port": port, "token": server.token, "ca": str(state / "ca.pem")}))
        (state / "ready.json.tmp").replace(state / "ready.json")


if __name__ == "__main__":
    network = None if sys.argv[2] == "none" else sys.argv[2]
    trio.run(main, Path(sys.argv[1]), network,
             dict(arg.split("=", 1) for arg in sys.argv[3:]))
