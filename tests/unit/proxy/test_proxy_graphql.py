"""The mutations a GraphQL document names (pure): what hides them, what cannot be read."""

from __future__ import annotations

import pytest

from proxy.graphql import Unreadable, mutations

MERGE = 'mergePullRequest(input: {pullRequestId: "PR_1"}) { clientMutationId }'


@pytest.mark.parametrize(("document", "names"), [
    ("{ viewer { login } }", []),
    ("query Q($n: Int = 3) @cached { repository(owner: \"o\", name: \"r\") { id } }", []),
    (f"mutation {{ {MERGE} }}", ["mergePullRequest"]),
    # An alias, variables with an object default, a directive, two fields.
    ('mutation M($id: ID! = "x", $o: In = {a: {b: [1, 2]}}) @d(x: 1) '
     '{ ok: addComment(input: {subjectId: $id, body: "}"}) { x } '
     'b: updateRef(input: {refId: $id, oid: "0"}) @skip(if: false) { ref { name } } }',
     ["addComment", "updateRef"]),
    # Every operation counts, whichever operationName picks.
    (f"query Q {{ viewer {{ login }} }} mutation M {{ {MERGE} }}", ["mergePullRequest"]),
    # Text that only looks like a mutation: in a string, a block string, a comment.
    ('query { search(query: "mutation { mergePullRequest }", first: 1) { n } }', []),
    ('query { a(x: """ } mutation { mergePullRequest { x } } \\""" """) { b } }', []),
    ("# mutation { mergePullRequest { x } }\nquery { viewer { login } }", []),
    # Commas are white space; a byte-order mark and fragments outside mutations are fine.
    ("\ufeffmutation{,addComment(input:{}){x},}", ["addComment"]),
    ("fragment F on User { login } query { viewer { ...F } }", []),
])
def test_the_mutations_a_document_names(document: str, names: list[str]) -> None:
    assert mutations(document) == names


@pytest.mark.parametrize("document", [
    "mutation { ...F } fragment F on Mutation { mergePullRequest { x } }",
    "mutation { ... on Mutation { mergePullRequest { x } } }",
    "subscription { x }",
    "MUTATION { mergePullRequest { x } }",
    "mutation { mergePullRequest(input: {}) { x }",
    'query { a(x: "unterminated) { b } }',
    'query { a(x: "\\q") { b } }',
    "mutation { a: }",
    "mutation { 42 }",
    "mutation",
    "query { a ) }",
    "mutation\u00a0{ addComment { x } }",
])
def test_what_cannot_be_read_is_refused(document: str) -> None:
    with pytest.raises(Unreadable):
        mutations(document)
