"""A GraphQL document GitHub would run that the proxy never read, through the real proxy:
one in a GET, one stored by hash, an id written with padding, a method named in a trailer."""

from __future__ import annotations

import json

import trio
from conftest import Proxy
from proxy_fakes import FakeUpstream
from smuggle_fakes import RawTunnel
from test_proxy_curl import curl

MERGE = "mutation { mergePullRequest(input: {pullRequestId: \"PR_kwDOA\"}) { clientMutationId } }"


async def test_a_graphql_document_in_a_get_is_refused(proxy: Proxy, fake: FakeUpstream) -> None:
    """The agent sent a merge as a GET's body (and as PUT's, HEAD's): a server that runs a
    document wherever it stands would merge with the person's token. A plain GET (no body,
    no query string) goes on (the control)."""
    auth = proxy.add_session("gqlget")
    for method in ("GET", "PUT", "DELETE"):
        status, body = await curl(proxy, "https://api.github.com/graphql", "-X", method,
                                  "-d", json.dumps({"query": MERGE}), auth=auth)
        assert status == 403 and "send it as a POST" in body, (method, body)
    status, body = await curl(proxy, "https://api.github.com/GraphQL/?query=" + "x", auth=auth)
    assert status == 403, body
    assert fake.seen == []
    status, _ = await curl(proxy, "https://api.github.com/graphql", auth=auth)
    assert status == 200 and [s.method for s in fake.seen] == ["GET"]


async def test_a_stored_document_is_not_run_in_place_of_the_one_read(
        proxy: Proxy, fake: FakeUpstream) -> None:
    """A harmless query beside a persisted query's hash (or a document's id): a server that
    keeps documents would run the stored one, a merge perhaps. The query alone goes on."""
    auth = proxy.add_session("gqlstored")
    read = "query { viewer { login } }"
    for extra in ({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab" * 32}}},
                  {"doc_id": "123"}, {"id": "merge"}, {"queryId": "q1"}):
        status, body = await curl(proxy, "https://api.github.com/graphql", "-X", "POST",
                                  "-d", json.dumps({"query": read, **extra}), auth=auth)
        assert status == 403 and "send the document itself" in body, (extra, body)
    assert fake.seen == []
    status, _ = await curl(proxy, "https://api.github.com/graphql", "-X", "POST",
                           "-d", json.dumps({"query": read, "variables": {}}), auth=auth)
    assert status == 200 and len(fake.seen) == 1


async def test_a_padded_node_id_that_names_nothing_yet_is_refused(
        proxy: Proxy, fake: FakeUpstream) -> None:
    """A guessed next id written with base64's padding (which GitHub's decoder reads away):
    GitHub says it names nothing yet, and what is made under it next may be the person's."""
    auth = proxy.add_session("gqlpadded")
    fake.nodes = {}
    comment = "addComment(input: {subjectId: $id, body: \"hi\"}) { clientMutationId }"
    for node in ("PR_kwDOABCDE=", "PR_kwDOABCD=="):
        status, body = await curl(
            proxy, "https://api.github.com/graphql", "-X", "POST", "-d", json.dumps(
                {"query": f"mutation($id: ID!) {{ {comment} }}", "variables": {"id": node}}),
            auth=auth)
        assert status == 403 and "names nothing yet" in body, (node, body)
    assert [s for s in fake.seen if b"addComment" in s.body] == []


async def test_no_override_travels_in_a_trailer(proxy: Proxy, fake: FakeUpstream) -> None:
    """A GET whose trailers say it is a DELETE, or another path: a server that folds
    trailers into the head would honour them, past every rule that read the head. They
    are dropped; the request's other trailers go on (the control)."""
    auth = proxy.add_session("trailover")
    with trio.fail_after(20):
        t = await RawTunnel.open(proxy.port, ":".join(auth), "api.github.com", proxy.ca_path)
        await t.send(b"POST /repos/o/r/issues HTTP/1.1\r\nHost: api.github.com\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n"
                     b"2\r\n{}\r\n0\r\nX-HTTP-Method-Override: DELETE\r\n"
                     b"X_Method_Override: DELETE\r\nX-Original-URL: /repos/o/r\r\n"
                     b"X-Rewrite-URL: /repos/o/r\r\nX-Digest: sha256=req\r\n\r\n")
        status, *_ = await t.answer()
        await t.aclose()
    assert status == 200
    assert fake.seen[-1].trailers == [("x-digest", "sha256=req")]
