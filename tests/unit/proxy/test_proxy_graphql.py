"""The mutations a GraphQL document names (pure): what hides them, what cannot be read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


#: An unterminated string of \u escapes: the old string pattern read each escape two ways
#: (``\u`` then four characters, or a unicode escape), so ``re`` tried 2**64 readings of it,
#: holding the proxy's one loop (and Python's lock) for ever. 400 bytes, well under the limit.
STUCK = 'mutation { addComment(input: {body: "' + "\\u0041" * 64 + "}) { x } }"


def test_an_unterminated_string_is_refused_in_one_pass() -> None:
    """Run in a fresh interpreter, so that a scan that never ends fails this test (after a
    bound no linear scan comes near) instead of holding the suite."""
    script = ("import sys\nfrom proxy.graphql import Unreadable, mutations\n"
              "try:\n    mutations(sys.argv[1])\nexcept Unreadable as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", script, STUCK], capture_output=True,
                          text=True, timeout=120, check=True, cwd=Path(__file__).parents[3])
    assert done.stdout.strip(), "an unterminated string must be refused"
    # Terminated, the same escapes are a string like any other.
    assert mutations(STUCK.replace("}) {", '"}) {', 1)) == ["addComment"]
    assert mutations('mutation { addComment(input: {body: """x\\"""y"""}) { x } }') == [
        "addComment"]
