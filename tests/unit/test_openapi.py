"""The OpenAPI document cannot drift from the routes: every URL rule is documented.

The app is built with a real store in a temporary folder and a Docker backend pointing at a
socket that does not exist; no route is called that would reach it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from quart_trio import QuartTrio

from api.app import create_app
from api.context import ApiContext
from api.events import EventHub
from api.openapi import document
from appliance import __version__
from appliance.audit_index import AuditIndex
from appliance.backends.docker import DockerBackend
from appliance.config import Settings
from appliance.store import AsyncStore, Store

IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[QuartTrio]:
    settings = Settings(home=tmp_path / "home")
    settings.ensure_layout()
    sync = Store.open(settings.db_path)
    store = AsyncStore(sync)
    ctx = ApiContext(
        settings=settings,
        store=store,
        backends={"docker": DockerBackend(url=f"unix://{tmp_path}/no-docker.sock",
                                          instance="test")},
        hub=EventHub(store),
        instance_key=b"k" * 32,
        audit=AuditIndex(settings.audit_path),
    )
    yield create_app(ctx)
    sync.close()


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def routes(app: QuartTrio) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in (rule.methods or set()) - IGNORED_METHODS:
            out.add((openapi_path(rule.rule), method.lower()))
    return out


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, ops in doc["paths"].items() for method in ops}


def test_every_route_is_documented(app: QuartTrio) -> None:
    have = routes(app)
    assert have, "the app has no routes"
    missing = have - documented(document(app))
    assert not missing, f"routes missing from the OpenAPI document: {sorted(missing)}"


def test_every_documented_operation_is_a_route(app: QuartTrio) -> None:
    extra = documented(document(app)) - routes(app)
    assert not extra, f"documented but not routed: {sorted(extra)}"


def test_issue_routes_are_present(app: QuartTrio) -> None:
    have = routes(app)
    for path, method in [
        ("/api/sessions", "get"), ("/api/sessions", "post"),
        ("/api/sessions/{ref}", "get"), ("/api/sessions/{ref}", "delete"),
        ("/api/sessions/{ref}/archive", "post"), ("/api/sessions/{ref}/unarchive", "post"),
        ("/api/sessions/{ref}/access-mode", "post"), ("/api/recent-repos", "get"),
        ("/api/health", "get"), ("/api/openapi.json", "get"), ("/ws/events", "get"),
    ]:
        assert (path, method) in have


def test_document_shape(app: QuartTrio) -> None:
    doc = document(app)
    assert re.fullmatch(r"3\.\d+\.\d+", doc["openapi"])
    assert doc["info"]["title"]
    assert doc["info"]["version"] == __version__
    schemas = doc["components"]["schemas"]
    assert "Session" in schemas
    assert "Error" in schemas
    session_props = schemas["Session"]["properties"]
    assert "proxy_token_hash" not in session_props
    assert "hook_token_hash" not in session_props
    op_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(op_ids) == len(set(op_ids))
    for path, ops in doc["paths"].items():
        for name in re.findall(r"{(\w+)}", path):
            for op in ops.values():
                assert {"name": name, "in": "path", "required": True,
                        "schema": {"type": "string"}} in op["parameters"]


def test_every_ref_resolves(app: QuartTrio) -> None:
    doc = document(app)
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref


async def test_the_document_is_served(app: QuartTrio) -> None:
    client = app.test_client()
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    assert await response.get_json() == document(app)
