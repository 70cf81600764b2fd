"""Which GraphQL requests carry a document the proxy would not read (``gqlform.py``)."""

from __future__ import annotations

import json

import pytest

from proxy import gqlform


@pytest.mark.parametrize(("path", "graphql"), [
    ("/graphql", True), ("/graphql/", True), ("/GraphQL", True), ("/graphql?query=x", True),
    ("/gr%61phql", True), ("/gr%2561phql", True), ("/x/../graphql", True),
    ("/api/graphql", True), ("/graphql;v=1", True), ("/graphql/.", True),
    ("/repos/o/r/issues", False), ("/graphqlx", False), ("/graphql/x", False), ("/", False),
])
def test_what_a_server_may_read_as_graphql(path: str, graphql: bool) -> None:
    assert gqlform.is_graphql(path) is graphql


@pytest.mark.parametrize(("method", "path", "body", "refused"), [
    ("GET", "/graphql", False, False),  # a plain GET: nothing in it to run
    ("HEAD", "/graphql", False, False),
    ("GET", "/graphql?query=%7Bviewer%7Blogin%7D%7D", False, True),
    ("GET", "/graphql", True, True), ("OPTIONS", "/graphql", True, True),
    ("PUT", "/graphql", True, True), ("DELETE", "/GraphQL/?x", False, True),
    ("POST", "/graphql", True, False),  # the document is read from the POST's body
    ("GET", "/repos/o/r/issues?state=open", True, False),
])
def test_a_graphql_document_travels_only_in_a_post(method: str, path: str, body: bool,
                                                   refused: bool) -> None:
    why = gqlform.method_refusal(method, path, body=body)
    assert (why is not None) is refused
    assert why is None or "send it as a POST" in why


@pytest.mark.parametrize(("doc", "refused"), [
    ({"query": "{ viewer { login } }"}, False),
    ({"query": "q", "variables": {}, "operationName": "A"}, False),
    ({"query": "q", "extensions": {"persistedQuery": {"sha256Hash": "ab"}}}, True),
    ({"extensions": {}}, True), ({"query": "q", "doc_id": "1"}, True),
    ({"id": "merge"}, True), ({"queryId": "q"}, True), ({"query": "q", "Query": "x"}, True),
    ([{"query": "q"}], False),  # not an object: the document's own check refuses it
    ("text", False),
])
def test_only_the_document_itself_is_sent(doc: object, refused: bool) -> None:
    why = gqlform.keys_refusal(json.dumps(doc).encode())
    assert (why is not None) is refused
    assert why is None or "send the document itself" in why


@pytest.mark.parametrize("body", [None, b"", b"{", b"\xff", b"[" * 100_000])
def test_a_body_that_does_not_read_is_left_to_the_document_check(body: bytes | None) -> None:
    assert gqlform.keys_refusal(body) is None
