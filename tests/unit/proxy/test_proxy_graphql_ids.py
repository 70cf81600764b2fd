"""Where a GraphQL write gives a node id (pure): what the proxy asks GitHub about before it
goes on, however the agent spells the id, and what it refuses unasked."""

from __future__ import annotations

import json

import pytest

from proxy.creates import MAX_ID
from proxy.graphql import id_places
from proxy.whose import Question, question

GUESS = "IC_9"


@pytest.mark.parametrize(("document", "variables"), [
    ('mutation { deleteIssueComment(input: {id: "IC_9"}) { x } }', None),
    ('mutation { deleteIssueComment(input: {id: "\\u0049C_9"}) { x } }', None),
    ('mutation { deleteIssueComment(input: {id: """\n  IC_9\n"""}) { x } }', None),
    ('mutation { x: deleteIssueComment(input: {id: "IC_9"}) @include(if: true) { x } }', None),
    ('mutation { addLabelsToLabelable(input: {labelableId: "I_1", labelIds: [["IC_9"]]}) '
     "{ x } }", None),
    ("mutation($i: String!) { deleteIssueComment(input: {id: $i}) { x } }", {"i": GUESS}),
    ('mutation($i: String!) { addLabelsToLabelable(input: {labelableId: "I_1", labelIds: '
     "[$i]}) { x } }", {"i": GUESS}),
    ('mutation($i: [ID!]!) { addLabelsToLabelable(input: {labelableId: "I_1", labelIds: $i})'
     " { x } }", {"i": [GUESS]}),
    ("mutation($in: DeleteIssueCommentInput!) { deleteIssueComment(input: $in) { x } }",
     {"in": {"id": GUESS}}),
    ('mutation($i: ID = "IC_9") { deleteIssueComment(input: {id: $i}) { x } }', {}),
    ('mutation($in: DeleteIssueCommentInput = {id: "IC_9"}) { deleteIssueComment(input: $in)'
     " { x } }", {}),
    ("mutation($a: String, $in: X = {id: $a}) { deleteIssueComment(input: $in) { x } }",
     {"a": GUESS}),
    # A variable given a body and an id at once; one defined in another operation.
    ('mutation($b: String!) { addComment(input: {subjectId: "PR_1", body: $b}) { x } '
     "deleteIssueComment(input: {id: $b}) { y } }", {"b": GUESS}),
    ("mutation A { deleteIssueComment(input: {id: $i}) { x } } mutation B($i: String) { a }",
     {"i": GUESS}),
])
def test_an_id_is_found_however_it_is_given(document: str, variables: object) -> None:
    assert GUESS in id_places(document, variables)


def ask(document: str, variables: object = None) -> Question | str | None:
    return question("POST", "/graphql", json.dumps(
        {"query": document, "variables": variables}).encode())


PADDED = "PR_" + "0" * MAX_ID + "1"


@pytest.mark.parametrize(("document", "variables"), [
    (f'mutation {{ closePullRequest(input: {{pullRequestId: "{PADDED}"}}) {{ x }} }}', None),
    ("mutation($i: ID!) { closePullRequest(input: {pullRequestId: $i}) { x } }", {"i": PADDED}),
    ('mutation($i: [ID!]!) { addLabelsToLabelable(input: {labelableId: "I_1", labelIds: $i})'
     " { x } }", {"i": ["L_1", PADDED]}),
])
def test_an_id_too_long_to_be_asked_about_is_refused(document: str, variables: object) -> None:
    """Strings over :data:`MAX_ID` are not asked about: where an id goes, one is refused."""
    why = ask(document, variables)
    assert isinstance(why, str) and f"over {MAX_ID} characters" in why, why


def test_a_long_text_where_no_id_goes_is_not_asked_about() -> None:
    """The control: a long body is text, not an id."""
    got = ask('mutation($b: String!) { addComment(input: {subjectId: "PR_1", body: $b}) '
              "{ x } }", {"b": PADDED})
    assert isinstance(got, Question) and got.ids == ("PR_1",)
