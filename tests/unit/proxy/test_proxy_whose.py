"""Whose pull request a session's write names: what is asked of GitHub, and how its answer
is read (pure playbooks)."""

from __future__ import annotations

import json

import pytest

from proxy import creates, nodes, whose

MINE = "clauderon/mine"


def j(doc: object) -> bytes:
    return json.dumps(doc).encode()


def gql(query: str, variables: object = None) -> bytes:
    return j({"query": query, **({} if variables is None else {"variables": variables})})


@pytest.mark.parametrize(("method", "path", "asked"), [
    ("PATCH", "/repos/o/r/pulls/7", "/repos/o/r/pulls/7"),
    ("POST", "/repos/o/r/pulls/7/requested_reviewers", "/repos/o/r/pulls/7"),
    ("POST", "/repos/o/r/pulls/7/reviews", "/repos/o/r/pulls/7"),
    ("PATCH", "/repos/o/r/issues/7", "/repos/o/r/pulls/7"),  # issues and pulls share numbers
    ("POST", "/repos/o/r/issues/7/comments", "/repos/o/r/pulls/7"),
    ("DELETE", "/repos/o/r/issues/7/labels/bug", "/repos/o/r/pulls/7"),
    ("POST", "/repos/O/R/issues/7/assignees", "/repos/O/R/pulls/7"),
    # Nothing numbered: nothing to ask (the rules of gitguard judged these alone).
    ("POST", "/repos/o/r/pulls", None),
    ("POST", "/repos/o/r/issues", None),
    ("PATCH", "/repos/o/r/git/refs/heads/clauderon/mine", None),
    ("GET", "/repos/o/r/pulls/7", None),  # a read
])
def test_a_numbered_write_asks_whose_pull_request_it_is(
        method: str, path: str, asked: str | None) -> None:
    q = whose.question(method, path, b"{}")
    assert (q.path if isinstance(q, whose.Question) else q) == asked
    if isinstance(q, whose.Question):
        assert q.method == "GET" and q.number == 7


def pull(ref: str, repo: str = "o/r") -> bytes:
    return j({"number": 7, "head": {"ref": ref, "repo": {"full_name": repo}}})


@pytest.mark.parametrize(("path", "status", "answer", "refused"), [
    ("/repos/o/r/pulls/7", 200, pull(MINE), None),
    ("/repos/O/R/pulls/7", 200, pull(MINE), None),  # GitHub's names ignore case
    ("/repos/o/r/pulls/7", 200, pull("clauderon/other"), "its head is clauderon/other"),
    ("/repos/o/r/pulls/7", 200, pull("main"), "its head is main"),
    ("/repos/o/r/pulls/7", 200, pull("clauderon/mine2"), "its head is clauderon/mine2"),
    # The session's branch name, pushed to a fork someone opens a pull request from.
    ("/repos/o/r/pulls/7", 200, pull(MINE, "evil/r"), "its head is evil/r:clauderon/mine"),
    ("/repos/o/r/pulls/7", 200, j({"number": 7, "head": {"ref": MINE, "repo": None}}),
     "its head is clauderon/mine"),  # a fork since deleted
    # An issue: the person's (GitHub names the person its author, whoever opened it).
    ("/repos/o/r/issues/7", 404, b'{"message": "Not Found"}', "issue #7 is the person's"),
    ("/repos/o/r/pulls/7", 404, b'{"message": "Not Found"}', None),  # nothing: GitHub says so
    ("/repos/o/r/pulls/7", 0, b"", "could not be learnt"),  # no answer
    ("/repos/o/r/pulls/7", 502, b"", "could not be learnt"),
    ("/repos/o/r/pulls/7", 200, b"<html>", "could not be learnt"),
    ("/repos/o/r/pulls/7", 200, j({"number": 7, "head": "main"}), "could not be learnt"),
    ("/repos/o/r/pulls/7", 401, j({"message": "Bad credentials"}), "could not be learnt"),
])
def test_a_pull_request_is_the_sessions_when_its_head_is_its_branch_there(
        path: str, status: int, answer: bytes, refused: str | None) -> None:
    q = whose.question("PATCH", path, b"{}")
    assert isinstance(q, whose.Question)
    why = whose.refusal(q, "mine", status, answer)
    if refused is None:
        assert why is None
    else:
        assert why is not None and refused in why and "clauderon/mine" in why, why


@pytest.mark.parametrize(("body", "ids"), [
    (gql('mutation { closePullRequest(input: {pullRequestId: "PR_1"}) { x } }'), ("PR_1",)),
    # In the variables, whatever they are called and however deep.
    (gql("mutation($i: ClosePullRequestInput!) { closePullRequest(input: $i) { x } }",
         {"i": {"pullRequestId": "PR_1"}}), ("PR_1",)),
    (gql("mutation($a: [ID!]!) { requestReviews(input: {pullRequestId: $a, union: true}) { x } }",
         {"a": [["PR_2"]]}), ("PR_2",)),
    # A default value, a block string, an escape: each is a string GitHub reads.
    (gql('mutation($i: ID = "PR_3") { closePullRequest(input: {pullRequestId: $i}) { x } }'),
     ("PR_3",)),
    (gql('mutation { closePullRequest(input: {pullRequestId: """ PR_4 """}) { x } }'),
     (" PR_4 ", "PR_4")),
    (gql('mutation { closePullRequest(input: {pullRequestId: "PR\\u005f5"}) { x } }'),
     ("PR_5",)),
    # A comment's id: GitHub is asked for the pull request it is on.
    (gql('mutation { addComment(input: {subjectId: "PR_1", body: "hi"}) { x } }'),
     ("PR_1", "hi")),
])
def test_a_graphql_write_asks_about_every_string_it_carries(
        body: bytes, ids: tuple[str, ...]) -> None:
    q = whose.question("POST", "/graphql", body)
    assert isinstance(q, whose.Question) and q.method == "POST" and q.path == "/graphql"
    assert q.ids == ids
    asked = json.loads(q.body)
    assert asked["variables"] == {"ids": list(ids)}
    assert asked["query"] == nodes.NODES_QUERY


def test_a_graphql_read_asks_nothing_and_too_many_strings_are_refused() -> None:
    assert whose.question("POST", "/graphql", gql('query { node(id: "PR_1") { id } }')) is None
    many = {f"v{n}": f"PR_{n}" for n in range(nodes.MAX_IDS + 1)}
    why = whose.question("POST", "/graphql", gql("mutation { addComment(input: $v0) { x } }",
                                                  many))
    assert isinstance(why, str) and "cannot be checked" in why
    assert isinstance(whose.question("POST", "/graphql", b"{"), str)


def node(ref: str, head: str | None = "o/r", base: str = "o/r") -> dict[str, object]:
    return {"number": 1, "headRefName": ref, "repository": {"nameWithOwner": base},
            "headRepository": None if head is None else {"nameWithOwner": head}}


NOT_FOUND = {"type": "NOT_FOUND", "path": ["nodes", 1]}


@pytest.mark.parametrize(("nodes", "errors", "refused"), [
    ([{"__typename": "PullRequest", **node(MINE)}, None], [NOT_FOUND], None),
    ([{"__typename": "Issue"}, {"__typename": "Repository"}], [], None),
    ([{"__typename": "IssueComment", "pullRequest": None}, None], [NOT_FOUND], None),
    ([{"__typename": "PullRequest", **node("clauderon/other")}, None], [NOT_FOUND],
     "its head is clauderon/other"),
    ([{"__typename": "IssueComment", "pullRequest": node("main")}, None], [NOT_FOUND],
     "its head is main"),
    # A string written as a node id that names nothing yet may name the person's next.
    ([None, None], [{**NOT_FOUND, "path": ["nodes", 0]}, NOT_FOUND], "names nothing yet"),
    ([{"__typename": "PullRequestReviewThread", "pullRequest": node("main")}, None], [],
     "its head is main"),
    ([{"__typename": "PullRequest", **node(MINE, head="evil/r")}, None], [],
     "evil/r:clauderon/mine"),
    ([{"__typename": "PullRequest", **node(MINE, head=None)}, None], [], "its head is"),
    ([None], [], "could not be learnt"),  # not one answer per id
    ([None, None], [{"type": "RATE_LIMITED"}], "could not be learnt"),
    ("nodes", [], "could not be learnt"),
    (["PR_1", None], [NOT_FOUND], "does not read"),
    # Null for a field within it: not GitHub's word that the string names nothing.
    ([None, None], [{**NOT_FOUND, "path": ["nodes", 0, "pullRequest", "repository"]},
                    NOT_FOUND], "could not be learnt"),
])
def test_a_graphql_write_names_only_the_sessions_pull_request(
        nodes: object, errors: list[object], refused: str | None) -> None:
    q = whose.question("POST", "/graphql",
                       gql('mutation { addComment(input: {subjectId: "PR_1", body: "hi"}) '
                           "{ x } }"))
    assert isinstance(q, whose.Question)
    answer = j({"data": {"nodes": nodes}, **({"errors": errors} if errors else {})})
    why = whose.refusal(q, "mine", 200, answer)
    if refused is None:
        assert why is None
    else:
        assert why is not None and refused in why, why
    assert whose.refusal(q, "mine", 0, b"") is not None


@pytest.mark.parametrize(("method", "path", "asked"), [
    ("PATCH", "/repos/o/r/issues/comments/5", "/repos/o/r/issues/comments/5"),
    ("DELETE", "/repos/o/r/pulls/comments/5", "/repos/o/r/pulls/comments/5"),
    ("POST", "/repos/o/r/issues/comments/5/reactions", "/repos/o/r/issues/comments/5"),
])
def test_a_comment_named_by_its_id_asks_what_it_is_on(method: str, path: str,
                                                       asked: str) -> None:
    q = whose.question(method, path, b"{}")
    assert isinstance(q, whose.Question) and (q.method, q.path, q.comment) == ("GET", asked, 5)


URL = "https://api.github.com/repos/o/r"


@pytest.mark.parametrize(("status", "answer", "then"), [
    (200, j({"issue_url": f"{URL}/issues/7"}), "/repos/o/r/pulls/7"),
    (200, j({"pull_request_url": f"{URL}/pulls/8", "issue_url": None}), "/repos/o/r/pulls/8"),
    (200, j({"issue_url": "https://api.github.com/repos/O/R/issues/7"}), "/repos/o/r/pulls/7"),
    (404, j({"message": "Not Found"}), None),  # no such comment: nothing to change
    # A comment GitHub places in another repository, or nowhere, is not known to be fine.
    (200, j({"issue_url": "https://api.github.com/repos/x/y/issues/7"}), "could not be learnt"),
    (200, j({"body": "hi"}), "could not be learnt"),
    (200, j({"issue_url": f"{URL}/issues/7/x"}), "could not be learnt"),
    (0, b"", "could not be learnt"),
])
def test_a_comments_answer_names_the_pull_request_asked_next(
        status: int, answer: bytes, then: str | None) -> None:
    # A reaction added: a change to the comment is refused unasked (the next test).
    q = whose.question("POST", "/repos/o/r/issues/comments/5/reactions", b"{}")
    assert isinstance(q, whose.Question)
    found = whose.refusal(q, "mine", status, answer)
    if then is None or then.startswith("/"):
        assert (found.path if isinstance(found, whose.Question) else found) == then
    else:
        assert isinstance(found, str) and then in found, found
    if isinstance(found, whose.Question):  # and that pull request is then judged
        assert whose.refusal(found, "mine", 200, pull("clauderon/other")) is not None
        assert whose.refusal(found, "mine", 200, pull(MINE)) is None
        assert whose.refusal(found, "mine", 404, b"") is None  # on an issue: added to


@pytest.mark.parametrize(("method", "path", "changes"), [
    # What changes an issue or a comment: it is the person's unless it is the session's
    # pull request, or a comment on it.
    ("PATCH", "/repos/o/r/issues/7", "issue #7"),
    ("POST", "/repos/o/r/issues/7/labels", "issue #7"),
    ("PUT", "/repos/o/r/issues/7/labels", "issue #7"),
    ("DELETE", "/repos/o/r/issues/7/labels/bug", "issue #7"),
    ("POST", "/repos/o/r/issues/7/assignees", "issue #7"),
    ("PATCH", "/repos/o/r/issues/comments/5", "comment 5"),
    ("DELETE", "/repos/o/r/issues/comments/5", "comment 5"),
    ("PATCH", "/repos/o/r/pulls/comments/5", "comment 5"),
    # What adds to one: a comment, a reaction (on any issue); a pull request's own writes.
    ("POST", "/repos/o/r/issues/7/comments", ""),
    ("POST", "/repos/o/r/issues/7/reactions", ""),
    ("POST", "/repos/o/r/issues/comments/5/reactions", ""),
    ("PATCH", "/repos/o/r/pulls/7", ""),
])
def test_a_write_that_changes_an_issue_or_comment_is_told_from_one_that_adds(
        method: str, path: str, changes: str) -> None:
    q = whose.question(method, path, b"{}")
    assert isinstance(q, whose.Question) and q.changes == changes
    no_pull = whose.refusal(q, "mine", 404, b"")  # an issue's number, or nothing's
    if q.comment and changes:  # a comment's change: the person's wherever it stands
        assert isinstance(no_pull, str) and "the person's" in no_pull, no_pull
        assert isinstance(whose.refusal(q, "mine", 200, pull(MINE)), str)
        return
    if q.comment:
        assert no_pull is None  # no such comment: nothing changes
        q = whose.refusal(q, "mine", 200, j({"issue_url": f"{URL}/issues/7"}))
        assert isinstance(q, whose.Question)
        no_pull = whose.refusal(q, "mine", 404, b"")
    if changes:
        assert isinstance(no_pull, str) and "the person's" in no_pull, no_pull
        assert "ask the person" in no_pull and "clauderon/mine" in no_pull
    else:
        assert no_pull is None
    assert whose.refusal(q, "mine", 200, pull(MINE)) is None  # its own pull request's


ISSUE, COMMENT = {"__typename": "Issue"}, {"__typename": "IssueComment", "pullRequest": None}


@pytest.mark.parametrize(("mutation", "node", "refused"), [
    ("closeIssue(input: {issueId: $id})", ISSUE, "issue I_1 is the person's"),
    ("reopenIssue(input: {issueId: $id})", ISSUE, "issue I_1 is the person's"),
    ('updateIssue(input: {id: $id, title: "x"})', ISSUE, "issue I_1 is the person's"),
    ("addLabelsToLabelable(input: {labelableId: $id})", ISSUE, "issue I_1"),
    ("removeAssigneesFromAssignable(input: {assignableId: $id})", ISSUE, "issue I_1"),
    ('updateIssueComment(input: {id: $id, body: "x"})', COMMENT, "comment I_1 is the person's"),
    ("deleteIssueComment(input: {id: $id})", COMMENT, "comment I_1 is the person's"),
    # Adding to the person's issue or comment is a session's to do.
    ('addComment(input: {subjectId: $id, body: "x"})', ISSUE, None),
    ('addReaction(input: {subjectId: $id, content: HEART})', COMMENT, None),
    ('createIssue(input: {repositoryId: $id, title: "x"})', {"__typename": "Repository"}, None),
    # A change to the session's own pull request, or to a comment on it, passes.
    ("closeIssue(input: {issueId: $id})", {"__typename": "PullRequest", **node(MINE)}, None),
    # A comment on it is the person's still (``test_whose.py``: unless the session made it).
    ("deleteIssueComment(input: {id: $id})",
     {"__typename": "IssueComment", "pullRequest": node(MINE)}, "comment I_1 is the person's"),
])
def test_a_graphql_write_changes_none_of_the_persons_issues_or_comments(
        mutation: str, node: dict[str, object], refused: str | None) -> None:
    q = whose.question("POST", "/graphql",
                       gql(f"mutation($id: ID!) {{ {mutation} {{ x }} }}", {"id": "I_1"}))
    assert isinstance(q, whose.Question) and q.ids[-1] == "I_1"
    nodes = [None] * (len(q.ids) - 1) + [node]
    errors = [{"type": "NOT_FOUND", "path": ["nodes", n]} for n in range(len(q.ids) - 1)]
    why = whose.refusal(q, "mine", 200, j({"data": {"viewer": {"login": "octocat"},
                                                     "nodes": nodes}, "errors": errors}))
    if refused is None:
        assert why is None, why
    else:
        assert isinstance(why, str) and refused in why and "clauderon/mine" in why, why


ISSUE = {"number": 7, "id": 70, "node_id": "I_7",
         "url": "https://api.github.com/repos/o/r/issues/7"}
COMMENT = {"id": 5, "node_id": "IC_5",
           "url": "https://api.github.com/repos/o/r/issues/comments/5"}
REVIEW_COMMENT = {"id": 6, "node_id": "RC_6",
                  "url": "https://api.github.com/repos/o/r/pulls/comments/6"}


@pytest.mark.parametrize(("path", "status", "answer", "made"), [
    ("/repos/O/R/issues", 201, ISSUE, {("o/r", "issue", "7"), ("", "node", "I_7")}),
    ("/repos/o/r/issues/3/comments", 201, COMMENT,
     {("o/r", "issue_comment", "5"), ("", "node", "IC_5")}),
    ("/repos/o/r/pulls/3/comments", 201, REVIEW_COMMENT,
     {("o/r", "review_comment", "6"), ("", "node", "RC_6")}),
    ("/repos/o/r/pulls/3/comments/2/replies", 201, REVIEW_COMMENT,
     {("o/r", "review_comment", "6"), ("", "node", "RC_6")}),
    # GitHub refused the create (or answered in another shape): nothing was made.
    ("/repos/o/r/issues", 200, ISSUE, set()),
    ("/repos/o/r/issues", 422, ISSUE, set()),
    ("/repos/o/r/issues", 201, [ISSUE], set()),
    ("/repos/o/r/issues", 201, {**ISSUE, "number": "7"}, set()),
    ("/repos/o/r/issues", 201, {**ISSUE, "number": True}, set()),
    # A 201 whose url is another repository's, or another number's, or another kind's.
    ("/repos/o/r/issues", 201, {**ISSUE, "url": "https://api.github.com/repos/o/x/issues/7"},
     set()),
    ("/repos/o/r/issues", 201, {**ISSUE, "number": 8}, set()),
    ("/repos/o/r/issues/3/comments", 201, {**COMMENT, "url": ISSUE["url"]}, set()),
    ("/repos/o/r/pulls/3/comments", 201, COMMENT, set()),
    ("/repos/o/r/issues", 201, {k: v for k, v in ISSUE.items() if k != "url"}, set()),
])
def test_a_rest_create_remembers_only_what_githubs_answer_says_it_made(
        path: str, status: int, answer: object, made: set[whose.Own]) -> None:
    c = creates.create("POST", path, b"{}")
    assert c is not None
    assert set(creates.created(c, status, j(answer))) == made


@pytest.mark.parametrize(("method", "path"), [
    ("PATCH", "/repos/o/r/issues"), ("POST", "/repos/o/r/issues/7"),
    ("POST", "/repos/o/r/issues?x=1"), ("POST", "/repos/o/r/issues/./"),
    ("POST", "/repos/o/r/pulls"), ("POST", "/repos/o/r/issues/7/labels"),
])
def test_only_a_create_is_read_for_what_it_made(method: str, path: str) -> None:
    assert creates.create(method, path, b"{}") is None


CREATED = {"data": {"createIssue": {"issue": {
    "id": "I_7", "number": 7, "repository": {"nameWithOwner": "O/R"}}}}}


@pytest.mark.parametrize(("query", "answer", "made"), [
    ("mutation { createIssue(input: {repositoryId: \"R\", title: \"t\"}) "
     "{ issue { id number repository { nameWithOwner } } } }", CREATED,
     {("", "node", "I_7"), ("o/r", "issue", "7")}),
    ("mutation($s: ID!) { addComment(input: {subjectId: $s, body: \"x: y\"}) "
     "{ commentEdge { node { id } } subject { id } } }",
     {"data": {"addComment": {"commentEdge": {"node": {"id": "IC_5"}},
                              "subject": {"id": "I_1"}}}}, {("", "node", "IC_5")}),
    # Refused by GitHub: null, or no data.
    ("mutation { createIssue(input: {repositoryId: \"R\", title: \"t\"}) { issue { id } } }",
     {"data": {"createIssue": None}, "errors": [{"type": "FORBIDDEN"}]}, set()),
    ("mutation { createIssue(input: {repositoryId: \"R\", title: \"t\"}) { issue { id } } }",
     {"errors": [{"type": "FORBIDDEN"}]}, set()),
])
def test_a_graphql_create_remembers_the_issue_or_comment_it_made(
        query: str, answer: object, made: set[whose.Own]) -> None:
    c = creates.create("POST", "/graphql", gql(query, {"s": "I_1"}))
    assert c is not None
    assert set(creates.created(c, 200, j(answer))) == made
    assert creates.created(c, 502, j(answer)) == ()


@pytest.mark.parametrize("query", [
    # An alias may put any id where the created issue's stands.
    "mutation { createIssue(input: {repositoryId: \"R\", title: \"I_1\"}) "
    "{ issue { id: title } } }",
    "mutation { createIssue: addComment(input: {subjectId: \"I_1\", body: \"b\"}) "
    "{ issue: subject { id } } }",
    "mutation { createIssue(input: {repositoryId: \"R\", title: \"t\"}) { ...F } } "
    "fragment F on CreateIssuePayload { issue { id: title } }",
    # No create, or a document that does not read.
    "mutation { closeIssue(input: {issueId: \"I_1\"}) { clientMutationId } }",
    "query { viewer { login } }",
    "mutation { createIssue(",
])
def test_a_graphql_document_that_renames_a_field_is_not_read_for_what_it_made(
        query: str) -> None:
    assert creates.create("POST", "/graphql", gql(query)) is None


def test_a_change_passes_on_what_the_session_made_and_nothing_else() -> None:
    issue = whose.question("PATCH", "/repos/O/R/issues/7", b"{}")
    comment = whose.question("DELETE", "/repos/o/r/issues/comments/5", b"")
    review = whose.question("PATCH", "/repos/o/r/pulls/comments/5", b"{}")
    assert isinstance(issue, whose.Question) and isinstance(comment, whose.Question) \
        and isinstance(review, whose.Question)
    assert whose.claims(issue) == (("o/r", "issue", "7"),)
    assert whose.claims(comment) == (("o/r", "issue_comment", "5"),)
    assert whose.claims(review) == (("o/r", "review_comment", "5"),)
    # An issue by its number: the session's while GitHub's issue there has its node id.
    asked = whose.still_mine(issue, frozenset({("o/r", "issue", "7")}))
    assert not whose.made(asked, frozenset({("o/r", "issue", "7")})) and asked.same
    assert not whose.made(issue, frozenset({("o/x", "issue", "7"), ("o/r", "issue", "8")}))
    assert not whose.made(comment, frozenset({("o/r", "review_comment", "5")}))
    # A comment on an issue the session made is not the session's for that.
    on = whose.refusal(comment, "mine", 200, j({**COMMENT, "issue_url": ISSUE["url"]}),
                       frozenset({("o/r", "issue", "7")}))
    assert isinstance(on, str) and "the person's" in on
    # Adding asks nothing of what was made.
    added = whose.question("POST", "/repos/o/r/issues/7/comments", b"{}")
    assert isinstance(added, whose.Question) and whose.claims(added) == ()


def test_a_graphql_change_passes_on_the_nodes_the_session_made_only() -> None:
    q = whose.question("POST", "/graphql", gql(
        "mutation($a: ID!, $b: ID!) { closeIssue(input: {issueId: $a}) { clientMutationId } "
        "updateIssueComment(input: {id: $b, body: \"x\"}) { clientMutationId } }",
        {"a": "I_7", "b": "IC_5"}))
    assert isinstance(q, whose.Question)
    assert q.ids == ("x", "IC_5", "I_7")
    answer = j({"data": {"nodes": [None, {"__typename": "IssueComment", "pullRequest": None},
                                   {"__typename": "Issue"}]},
                "errors": [{"type": "NOT_FOUND", "path": ["nodes", 0]}]})
    both = frozenset({("", "node", "I_7"), ("", "node", "IC_5")})
    assert whose.refusal(q, "mine", 200, answer, both) is None
    why = whose.refusal(q, "mine", 200, answer, frozenset({("", "node", "I_7")}))
    assert isinstance(why, str) and "IC_5" in why and "the person's" in why
    assert isinstance(whose.refusal(q, "mine", 200, answer), str)
