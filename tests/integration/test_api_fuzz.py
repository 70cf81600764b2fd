"""Generated input against a running appliance: never a 5xx, every answer as documented.

A property-based fuzzer driven by the appliance's own OpenAPI document (schemathesis, on
hypothesis) sends at least :data:`EXAMPLES` requests, valid and invalid by the schema, to
the real API over TCP with a bearer token: 0 answers with a 5xx, every answer conforms to
the schema documented for it (status, content type, body). The session limit keeps a
fuzzer that stumbles on a valid create from making unbounded sessions. Then hand-made
bodies the generator does not reach — invalid UTF-8, deep nesting, huge numbers, unknown
keys — get a 400 naming the problem on every route that takes a body.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from schemathesis.generation import GenerationMode

from tests.conftest import make_repo
from tests.support.appliance import Appliance, running

EXAMPLES = 2000
#: Not plain HTTP operations: WebSockets, and the web UI's own files.
SKIPPED_PATHS = ("/ws/", "/{rel}")
SKIPPED = {("GET", "/")}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, engine: object) -> Iterator[Appliance]:
    root = tmp_path_factory.mktemp("fuzz")
    with running(root / "home", "api", "reconciler",
                 config="[limits]\nmax_sessions = 2\nmax_concurrent_creates = 1\n") as app:
        repo = make_repo(root / "repo")
        app.cli("create", "--repo", str(repo), "--name", "target", "--prompt", "p")
        yield app


def operations(doc: dict[str, Any]) -> list[Any]:
    schema = schemathesis.openapi.from_dict(doc)
    out = []
    for result in schema.get_all_operations():
        op = result.ok()
        if any(p in op.path for p in SKIPPED_PATHS) or (op.method.upper(), op.path) in SKIPPED:
            continue
        out.append(op)
    return out


def test_generated_requests_never_get_a_5xx_and_match_the_schema(
        fuzzed: Appliance, capsys: pytest.CaptureFixture[str]) -> None:
    http = fuzzed.http()
    doc = http.get("/api/openapi.json").json()
    ops = operations(doc)
    assert len(ops) > 30, [f"{o.method} {o.path}" for o in ops]
    strategy = st.one_of([op.as_strategy(generation_mode=mode) for op in ops
                          for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)])
    statuses: Counter[int] = Counter()
    per_route: Counter[str] = Counter()
    headers = dict(fuzzed.auth_headers())
    started = time.monotonic()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(base_url=fuzzed.base, headers=headers, timeout=30)
        statuses[response.status_code] += 1
        per_route[f"{case.operation.method.upper()} {case.operation.path}"] += 1
        case.validate_response(response, checks=[not_a_server_error,
                                                 response_schema_conformance,
                                                 content_type_conformance])

    run()
    elapsed = time.monotonic() - started
    total = sum(statuses.values())
    with capsys.disabled():  # the figures, in every run's output
        print(f"\nfuzzed {total} requests over {len(per_route)} operations in {elapsed:.1f}s: "
              f"statuses {dict(sorted(statuses.items()))}")
    assert total >= EXAMPLES
    assert not [s for s in statuses if s >= 500]
    sessions = fuzzed.client().get("/api/sessions", all="true")["sessions"]
    assert len(sessions) <= 2  # the limit held


BODY_ROUTES = [("POST", "/api/sessions"), ("POST", "/api/sessions/target/message"),
               ("POST", "/api/sessions/target/access-mode")]
BAD_BODIES = [
    (b'{"repo_path": "\xff\xfe"}', "UTF-8"),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "deep"),
    (b'{"cpu": 1' + b"0" * 5000 + b"}", "number"),
    (b'{"cpu": 1e999}', "number"),
    (b'{"text": NaN}', "NaN"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize(("body", "word"), BAD_BODIES)
def test_bad_bodies_get_a_400_naming_the_problem(fuzzed: Appliance, method: str, path: str,
                                                 body: bytes, word: str) -> None:
    r = fuzzed.http().request(method, path, content=body,
                              headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert word.lower() in r.json()["error"].lower()


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/sessions", {"repo_path": "/x", "promt": "typo"}, "promt"),
    ("/api/sessions/target/message", {"text": "hi", "urgent": True}, "urgent"),
    ("/api/sessions/target/access-mode", {"access_mode": "read-only", "x": 1}, "x"),
])
def test_unknown_keys_are_refused_by_name(fuzzed: Appliance, path: str, body: dict[str, Any],
                                          field: str) -> None:
    r = fuzzed.http().post(path, content=json.dumps(body),
                           headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and field in r.json()["error"]


def test_the_fuzzer_can_find_a_5xx(tmp_path: Path) -> None:
    """The checks above can fail: the same checks flag a server error and a body that does
    not match its schema (a check that cannot fail is no check)."""
    doc = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {"/x": {"get": {
        "responses": {"200": {"description": "ok", "content": {"application/json": {
            "schema": {"type": "object", "required": ["n"],
                       "properties": {"n": {"type": "integer"}}}}}}}}}}}
    [op] = operations(doc)
    case = op.Case()
    for status, body in ((500, {"n": 1}), (200, {"n": "nope"})):
        response = httpx.Response(status, json=body,
                                  request=httpx.Request("GET", "http://t/x"))
        with pytest.raises(Exception):  # noqa: B017 - schemathesis raises a group of failures
            case.validate_response(response, checks=[not_a_server_error,
                                                     response_schema_conformance])
