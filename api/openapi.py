"""The OpenAPI 3 document, built from the routes as they are declared.

Every route is registered through :func:`documented`, which records its method, path,
summary, request body schema and responses; :func:`document` turns the registry into the
document served at ``/api/openapi.json``. A test checks that every URL rule of the app
appears here, so the document cannot drift from the routes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

ERROR = {"$ref": "#/components/schemas/Error"}
SESSION = {"$ref": "#/components/schemas/Session"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteDoc:
    method: str
    path: str
    summary: str
    body: dict[str, Any] | None = None
    responses: dict[str, Any] = field(default_factory=dict)
    query: tuple[tuple[str, str], ...] = ()


REGISTRY: list[RouteDoc] = []


def documented(doc: RouteDoc) -> Callable[[F], F]:
    def wrap(fn: F) -> F:
        if doc not in REGISTRY:
            REGISTRY.append(doc)
        return fn

    return wrap


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return _json(schema, description)


def err(description: str) -> dict[str, Any]:
    return _json(ERROR, description)


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "code"],
        "properties": {
            "error": {"type": "string", "description": "What went wrong and what to do."},
            "code": {"type": "string"},
            "field": {"type": "string", "description": "The request field concerned."},
        },
    },
    "Session": {
        "type": "object",
        "required": ["id", "name", "phase", "agent_status", "branch"],
        "properties": {
            **{k: {"type": "string"} for k in (
                "id", "name", "repo_path", "subdirectory", "worktree_path", "branch",
                "base_ref", "agent", "backend", "image", "access_mode", "initial_prompt",
                "phase", "desired", "agent_status", "container_name", "created_at",
                "updated_at")},
            **{k: {"type": ["string", "null"]} for k in (
                "model", "memory", "status_reason", "backend_id", "retry_at", "archived_at")},
            "cpu": {"type": ["number", "null"]},
            "attempts": {"type": "integer"},
            "skip_permissions": {"type": "boolean"},
        },
    },
    "CreateSession": {
        "type": "object",
        "required": ["repo_path"],
        "properties": {
            "repo_path": {"type": "string", "description": "Absolute path inside a git repo."},
            "name": {"type": "string", "maxLength": 40,
                     "pattern": "^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"},
            "prompt": {"type": "string"},
            "agent": {"type": "string", "enum": ["claude", "codex"]},
            "model": {"type": "string"},
            "image": {"type": "string"},
            "cpu": {"type": ["number", "string"]},
            "memory": {"type": "string"},
            "access_mode": {"type": "string", "enum": ["read-write", "read-only"]},
            "base": {"type": "string"},
            "skip_permissions": {"type": "boolean"},
            "backend": {"type": "string", "enum": ["docker", "kubernetes"]},
        },
    },
    "Event": {
        "type": "object",
        "required": ["id", "ts", "kind", "payload"],
        "properties": {
            "id": {"type": "integer"},
            "ts": {"type": "string"},
            "session_id": {"type": ["string", "null"]},
            "kind": {"type": "string"},
            "payload": {"type": "object"},
        },
    },
}


def _openapi_path(path: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)


def _operation_id(method: str, path: str) -> str:
    return f"{method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}"


def document(version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for doc in REGISTRY:
        path = _openapi_path(doc.path)
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in re.findall(r"{(\w+)}", path)
        ] + [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"},
             "description": text}
            for name, text in doc.query
        ]
        op: dict[str, Any] = {
            "summary": doc.summary,
            "operationId": _operation_id(doc.method, path),
            "responses": doc.responses or {"200": {"description": "OK"}},
        }
        if params:
            op["parameters"] = params
        if doc.body is not None:
            op["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": doc.body}}}
        paths.setdefault(path, {})[doc.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Clauderon API", "version": version},
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }
