"""The OpenAPI 3.1 document, built from the app's own routes and the wire model.

Each view function carries its :class:`RouteDoc` (set by :func:`documented`); the path and
the methods come from the URL rule the function is routed by, and the schemas from
:mod:`appliance.wire` (responses) and :mod:`appliance.intake` (the create request). So the
document cannot drift from the routes or the JSON: :func:`document` reads them, a test
checks every rule has a doc, and the web UI's TypeScript types are generated from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from quart import Blueprint, current_app

from appliance import __version__, wire
from appliance.intake import CREATE_SCHEMA

F = TypeVar("F", bound=Callable[..., Any])

ERROR = {"$ref": "#/components/schemas/Error"}
SESSION = {"$ref": "#/components/schemas/Session"}
EVENT = {"$ref": "#/components/schemas/Event"}
MESSAGE = {"$ref": "#/components/schemas/Message"}
OBJECT = {"type": "object"}
_ATTR = "__clauderon_openapi__"


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteDoc:
    summary: str
    body: dict[str, Any] | None = None
    responses: dict[str, Any] = field(default_factory=dict)
    query: tuple[tuple[str, str], ...] = ()


def documented(doc: RouteDoc) -> Callable[[F], F]:
    """Attach ``doc`` to a view function (put it under the route decorator)."""
    def wrap(fn: F) -> F:
        setattr(fn, _ATTR, doc)
        return fn

    return wrap


def ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def err(description: str) -> dict[str, Any]:
    return ok(ERROR, description)


def one_session(description: str = "OK") -> dict[str, Any]:
    return ok({"type": "object", "required": ["session"], "properties": {"session": SESSION}},
              description)


SCHEMAS: dict[str, Any] = {**wire.SCHEMAS, "CreateSession": CREATE_SCHEMA}


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def _operation(doc: RouteDoc, method: str, path: str) -> dict[str, Any]:
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
        "operationId": f"{method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}",
        "responses": doc.responses or {"200": {"description": "OK"}},
    }
    if params:
        op["parameters"] = params
    if doc.body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": doc.body}}}
    return op


def document(app: Any) -> dict[str, Any]:
    """The document of every documented route of ``app``."""
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        doc: RouteDoc | None = getattr(app.view_functions.get(rule.endpoint), _ATTR, None)
        if doc is None:
            continue
        path = openapi_path(rule.rule)
        methods = {"GET"} if rule.websocket else set(rule.methods or ()) - {"HEAD", "OPTIONS"}
        for method in sorted(methods):
            paths.setdefault(path, {})[method.lower()] = _operation(doc, method, path)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Clauderon API", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": SCHEMAS},
    }


blueprint = Blueprint("openapi", __name__)


@blueprint.get("/api/openapi.json")
@documented(RouteDoc(summary="This document", responses={"200": ok(OBJECT)}))
async def openapi() -> dict[str, Any]:
    return document(current_app)
