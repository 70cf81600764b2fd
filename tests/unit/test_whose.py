"""What a session's GitHub write changes, and what of it the session made (``whose.py``)."""

from __future__ import annotations

import json

import pytest

from proxy import creates, graphql, nodes, whose

R = "/repos/octo/app"


@pytest.mark.parametrize(("method", "path", "changes", "claims"), [
    ("POST", f"{R}/issues/1/comments", "", ()),
    ("POST", f"{R}/issues/1/reactions", "", ()),
    ("POST", f"{R}/issues/comments/5/reactions", "", ()),
    ("DELETE", f"{R}/issues/1/reactions/9", "reaction 9 (on #1)",
     (("octo/app", "reaction", "9"),)),
    ("DELETE", f"{R}/issues/comments/5/reactions/9", "reaction 9 (on comment 5)",
     (("octo/app", "reaction", "9"),)),
    ("DELETE", f"{R}/pulls/comments/5/reactions/9", "reaction 9 (on comment 5)",
     (("octo/app", "reaction", "9"),)),
    ("PATCH", f"{R}/issues/comments/5", "comment 5", (("octo/app", "issue_comment", "5"),)),
    ("DELETE", f"{R}/pulls/comments/5", "comment 5", (("octo/app", "review_comment", "5"),)),
    ("PATCH", f"{R}/issues/3", "issue #3", (("octo/app", "issue", "3"),)),
])
def test_what_a_rest_write_changes_and_claims(method: str, path: str, changes: str,
                                              claims: tuple[whose.Own, ...]) -> None:
    q = whose.question(method, path, b"{}")
    assert isinstance(q, whose.Question)
    assert (q.changes, whose.claims(q)) == (changes, claims)


@pytest.mark.parametrize(("method", "path", "owned", "refused"), [
    ("PATCH", f"{R}/issues/comments/5", frozenset(), True),
    ("DELETE", f"{R}/issues/1/reactions/9", frozenset(), True),
    ("DELETE", f"{R}/issues/1/reactions/9", frozenset({("octo/app", "reaction", "9")}), False),
    ("PATCH", f"{R}/issues/comments/5", frozenset({("octo/app", "issue_comment", "5")}), False),
    ("POST", f"{R}/issues/comments/5/reactions", frozenset(), False),  # asked of GitHub next
])
def test_a_comment_or_reaction_the_session_did_not_make_is_refused_unasked(
        method: str, path: str, owned: frozenset[whose.Own], refused: bool) -> None:
    q = whose.question(method, path, b"{}")
    assert isinstance(q, whose.Question)
    why = None if whose.made(q, owned) else whose.unmade(q, "s")
    assert (why is not None) == refused
    assert why is None or "the person's" in why


@pytest.mark.parametrize(("status", "answer", "made"), [
    (201, {"id": 9, "content": "rocket"}, (("octo/app", "reaction", "9"),)),
    (200, {"id": 9, "content": "-1"}, ()),  # the one there already: perhaps the person's
    (201, {"id": 9}, ()),
    (201, {"id": "9", "content": "rocket"}, ()),
])
def test_a_reaction_is_remembered_only_when_github_made_it_new(
        status: int, answer: dict[str, object], made: tuple[whose.Own, ...]) -> None:
    c = creates.create("POST", f"{R}/issues/1/reactions", b"{}")
    assert c is not None
    assert creates.created(c, status, json.dumps(answer).encode()) == made


def test_a_persons_comment_on_the_own_pull_request_is_theirs() -> None:
    doc = {"query": 'mutation { deleteIssueComment(input: {id: "IC_1"}) { clientMutationId } }'}
    q = whose.question("POST", "/graphql", json.dumps(doc).encode())
    assert isinstance(q, whose.Question)
    own = {"number": 1, "headRefName": "clauderon/s", "headRepository": {"nameWithOwner": "o/a"},
           "repository": {"nameWithOwner": "o/a"}}
    answer = json.dumps({"data": {"nodes": [{"__typename": "IssueComment",
                                             "pullRequest": own}]}}).encode()
    why = whose.refusal(q, "s", 200, answer)
    assert isinstance(why, str) and "the person's" in why
    assert whose.refusal(q, "s", 200, answer, frozenset({("", "node", "IC_1")})) is None


def test_a_review_comment_made_by_graphql_is_the_sessions_by_rest_and_graphql() -> None:
    doc = {"query": "mutation { addPullRequestReviewComment(input: {pullRequestId: \"PR_1\", "
                    'body: "x"}) { comment { id databaseId repository { nameWithOwner } } } }'}
    c = creates.create("POST", "/graphql", json.dumps(doc).encode())
    assert c is not None
    answer = {"data": {"addPullRequestReviewComment": {"comment": {
        "id": "PRRC_7", "databaseId": 7, "repository": {"nameWithOwner": "Octo/App"}}}}}
    made = creates.created(c, 200, json.dumps(answer).encode())
    assert set(made) == {("", "node", "PRRC_7"), ("octo/app", "review_comment", "7")}
    q = whose.question("PATCH", f"{R}/pulls/comments/7", b"{}")
    assert isinstance(q, whose.Question) and whose.made(q, frozenset(made))
    reply = {"query": 'mutation { addPullRequestReviewComment(input: {inReplyTo: "PRRC_1", '
                      'body: "done"}) { clientMutationId } }'}
    q = whose.question("POST", "/graphql", json.dumps(reply).encode())
    assert isinstance(q, whose.Question) and q.changes == ""  # a reply adds, as on REST


P = f"{R}/pulls/1/reviews"


@pytest.mark.parametrize(("method", "path", "claims"), [
    ("PUT", f"{P}/7", (("octo/app", "review", "7"),)),
    ("DELETE", f"{P}/7", (("octo/app", "review", "7"),)),
    ("POST", f"{P}/7/events", (("octo/app", "review", "7"),)),
    ("PUT", f"{P}/7/dismissals", (("octo/app", "review", "7"),)),
])
def test_a_review_the_session_did_not_make_is_refused_unasked(
        method: str, path: str, claims: tuple[whose.Own, ...]) -> None:
    q = whose.question(method, path, b"{}")
    assert isinstance(q, whose.Question) and whose.claims(q) == claims
    why = whose.unmade(q, "s")
    assert why is not None and "the person's" in why
    assert whose.made(q, frozenset(claims))


def test_a_review_request_is_taken_away_by_the_person_only() -> None:
    assert isinstance(whose.question("DELETE", f"{R}/pulls/1/requested_reviewers", b"{}"), str)
    q = whose.question("POST", f"{R}/pulls/1/requested_reviewers", b"{}")
    assert isinstance(q, whose.Question) and q.changes == ""


@pytest.mark.parametrize(("status", "url", "made"), [
    (200, "https://api.github.com/repos/Octo/App/pulls/1",
     (("octo/app", "review", "80"), ("", "node", "PRR_80"))),
    (201, "https://api.github.com/repos/octo/app/pulls/1", ()),  # not GitHub's answer
    (200, "https://api.github.com/repos/octo/app/pulls/2", ()),  # another pull request's
    (200, "https://api.github.com/repos/other/app/pulls/1", ()),
])
def test_a_review_is_remembered_from_githubs_answer_to_its_create(
        status: int, url: str, made: tuple[whose.Own, ...]) -> None:
    c = creates.create("POST", P, b"{}")
    assert c is not None
    answer = {"id": 80, "node_id": "PRR_80", "state": "PENDING", "pull_request_url": url}
    assert creates.created(c, status, json.dumps(answer).encode()) == made


@pytest.mark.parametrize(("mutation", "kind", "refused"), [
    ("resolveReviewThread(input: {threadId: $id})", "PullRequestReviewThread", True),
    ("unresolveReviewThread(input: {threadId: $id})", "PullRequestReviewThread", True),
    ("addPullRequestReviewThreadReply(input: {pullRequestReviewThreadId: $id})",
     "PullRequestReviewThread", False),
    ("updatePullRequestReview(input: {pullRequestReviewId: $id})",
     "PullRequestReview", True),
])
def test_the_persons_review_thread_on_the_own_pull_request_is_replied_to_not_changed(
        mutation: str, kind: str, refused: bool) -> None:
    doc = {"query": f"mutation($id: ID!) {{ {mutation} {{ clientMutationId }} }}",
           "variables": {"id": "N_1"}}
    q = whose.question("POST", "/graphql", json.dumps(doc).encode())
    assert isinstance(q, whose.Question)
    own = {"number": 1, "headRefName": "clauderon/s", "headRepository": {"nameWithOwner": "o/a"},
           "repository": {"nameWithOwner": "o/a"}}
    answer = json.dumps({"data": {"nodes": [{"__typename": kind, "pullRequest": own}]}}).encode()
    why = whose.refusal(q, "s", 200, answer)
    assert (isinstance(why, str) and "the person's" in why) == refused, why
    assert whose.refusal(q, "s", 200, answer, frozenset({("", "node", "N_1")})) is None


MADE_100 = frozenset({("octo/app", "issue", "100"), ("", "node", "I_100")})


@pytest.mark.parametrize(("status", "answer", "refused"), [
    (200, {"number": 100, "node_id": "I_100"}, None),  # still the one it made
    (200, {"number": 100, "node_id": "I_other"}, "given out again"),  # the repository anew
    (200, {"number": 100}, "could not be learnt"),
    (404, {"message": "Not Found"}, "could not be learnt"),
    (0, {}, "could not be learnt"),
])
def test_an_issue_the_session_made_is_its_own_only_while_its_node_id_is(
        status: int, answer: dict[str, object], refused: str | None) -> None:
    q = whose.question("PATCH", f"{R}/issues/100", b"{}")
    assert isinstance(q, whose.Question)
    asked = whose.still_mine(q, MADE_100)
    assert (asked.method, asked.path, asked.same) == ("GET", f"{R}/issues/100", True)
    assert not whose.made(asked, MADE_100)  # the number alone never passes it
    text = json.dumps(answer).encode()
    owned = MADE_100 & set(whose.node(asked, status, text))
    why = whose.refusal(asked, "s", status, text, frozenset(owned))
    assert why is None if refused is None else isinstance(why, str) and refused in why


def test_an_issue_the_session_did_not_make_is_asked_about_as_a_pull_request() -> None:
    q = whose.question("PATCH", f"{R}/issues/7", b"{}")
    assert isinstance(q, whose.Question)
    assert whose.still_mine(q, MADE_100) is q and q.path == f"{R}/pulls/7"


_ASK = "mutation($id: ID!, $u: Boolean, $in: RequestReviewsInput) { "


@pytest.mark.parametrize(("field", "variables", "refused"), [
    ('requestReviews(input: {pullRequestId: $id, userIds: ["U_b"]}) { c }', {}, True),
    ('requestReviews(input: {pullRequestId: $id, union: false}) { c }', {}, True),
    ("requestReviews(input: {pullRequestId: $id, union: $u}) { c }", {}, True),
    ("requestReviews(input: {pullRequestId: $id, union: $u}) { c }", {"u": False}, True),
    ("requestReviews(input: $in) { c }", {"in": {"pullRequestId": "PR_1"}}, True),
    ("requestReviews(input: $in) { c }", {"in": {"union": "true"}}, True),
    ("union: requestReviews(input: {union: true}) { c }", {}, False),  # an alias: the field
    ("a: requestReviews(input: {union: true}) { c } b: requestReviews(input: {}) { c }", {},
     True),
    ("requestReviews(input: {pullRequestId: $id, union: true}) { c }", {}, False),
    ("requestReviews(input: {pullRequestId: $id, union: $u}) { c }", {"u": True}, False),
    ("requestReviews(input: $in) { c }", {"in": {"pullRequestId": "PR_1", "union": True}},
     False),
])
def test_requested_reviewers_are_only_added_to(field: str, variables: dict[str, object],
                                               refused: bool) -> None:
    body = json.dumps({"query": _ASK + field + " }", "variables": {"id": "PR_1", **variables}})
    q = whose.question("POST", "/graphql", body.encode())
    assert isinstance(q, str) == refused, q
    assert not refused or "union: true" in str(q)


@pytest.mark.parametrize("path", [f"{R}/issues/1/reactions/9",
                                  f"{R}/issues/comments/5/reactions/9"])
def test_a_reaction_not_known_to_be_the_sessions_is_refused_saying_how_to_add_one(
        path: str) -> None:
    q = whose.question("DELETE", path, b"")
    assert isinstance(q, whose.Question) and not whose.made(q, frozenset())
    why = whose.unmade(q, "s")
    assert why is not None and "addReaction" in why and "by REST" in why


@pytest.mark.parametrize(("path", "refused"), [
    (["nodes", 0], False),  # the string names no node
    (["nodes", 0, "pullRequest", "repository"], True),  # a field within nulled it
    (None, True),
])
def test_a_null_node_names_nothing_only_when_github_says_so_for_it(
        path: list[object] | None, refused: bool) -> None:
    body = json.dumps({"query": "mutation($id: ID!) { deleteIssueComment(input: {id: $id}) "
                                "{ clientMutationId } }", "variables": {"id": "no id"}})
    q = whose.question("POST", "/graphql", body.encode())
    assert isinstance(q, whose.Question)
    error: dict[str, object] = {"type": "NOT_FOUND", **({"path": path} if path else {})}
    answer = json.dumps({"data": {"nodes": [None]}, "errors": [error]}).encode()
    why = whose.refusal(q, "s", 200, answer)
    assert (why is not None) == refused, why


@pytest.mark.parametrize(("text", "like"), [
    ("IC_kwDOAHz1OX5Ocm7N", True), ("PRRT_kwDOA", True), ("IC_7", True), ("I_100g1", True),
    ("MDEyOklzc3VlQ29tbWVudDE=", True),  # 012:IssueComment1
    ("MDQ6VXNlcjE=", True),  # 04:User1
    # GitHub's server decodes one without its padding, and in the URL-safe alphabet.
    ("MDEyOklzc3VlQ29tbWVudDE", True), ("MDQ6VXNlcjE", True),
    ("MDEyOklzc3VlQ29tbWVudDk-", False), ("aGVsbG8", False),
    ("no node at all", False), ("fix it", False), ("aGVsbG8=", False),  # hello
    ("", False), ("THUMBS_UP", False), ("CHANGES_REQUESTED", False),
    # Read as GitHub's decoder may read one: padding given (or too much of it), the standard
    # alphabet, white space around it or inside an old one.
    ("IC_kwDOAHz1OX5Ocm7N=", True), ("PR_kwDOABCD==", True), ("IC_kwDO+/Ab", True),
    (" IC_kwDOAHz1 ", True), ("MDQ6VXNlcjE===", True), ("MDQ6\nVXNlcjE=", True),
    ("MDEyOklzc3VlQ29tbWVudDE==", True), ("aGVsbG8==", False),
    ("THUMBS_UP=", False), ("A_=", False), ("=", False), ("x", False),
    # Its kind in another case, as a decoder that keys on the kind may read it.
    ("ic_7", True), ("Pr_kwDOABCD", True), ("snake_case", True), ("ic_", False),
])
def test_what_is_written_as_a_node_id(text: str, like: bool) -> None:
    assert nodes.node_id_like(text) is like


@pytest.mark.parametrize(("mutation", "value", "refused"), [
    ("deleteIssueComment(input: {id: $id})", "IC_7", True),  # the person's next, perhaps
    ("updateIssueComment(input: {id: $id, body: \"x\"})", "MDEyOklzc3VlQ29tbWVudDc=", True),
    ("updateIssueComment(input: {id: \"IC_1\", body: $id})", "some words", False),
    ("addComment(input: {subjectId: $id, body: \"x\"})", "PR_7", True),  # theirs, next
    ("addComment(input: {subjectId: \"PR_1\", body: $id})", "no id", False),
    # Written as an id, but not where an id goes: a title, a body, a label's name.
    ("addComment(input: {subjectId: \"PR_1\", body: $id})", "DB_migration", False),
    ("updateIssue(input: {id: \"IC_1\", title: $id})", "WIP_draft2", False),
    # Where one goes, however it gets there.
    ("addComment(input: {subjectId: \"PR_1\", body: \"x\", inReplyTo: $id})", "C_9", True),
    ("addLabelsToLabelable(input: {labelableId: \"PR_1\", labelIds: [\"LA_1\", $id]})",
     "LA_9", True),
])
def test_a_write_to_an_id_that_names_nothing_yet_is_refused(
        mutation: str, value: str, refused: bool) -> None:
    body = json.dumps({"query": f"mutation($id: String!) {{ {mutation} {{ clientMutationId }} }}",
                       "variables": {"id": value}})
    q = whose.question("POST", "/graphql", body.encode())
    assert isinstance(q, whose.Question)
    own = {"__typename": "PullRequest", "number": 1, "headRefName": "clauderon/s",
           "headRepository": {"nameWithOwner": "o/a"}, "repository": {"nameWithOwner": "o/a"}}
    mine = {"__typename": "IssueComment", "pullRequest": own}
    known = {"IC_1": mine, "PR_1": own}
    answer = json.dumps({"data": {"nodes": [known.get(i) for i in q.ids]}, "errors": [
        {"type": "NOT_FOUND", "path": ["nodes", n]} for n, i in enumerate(q.ids)
        if i not in known]}).encode()
    why = whose.refusal(q, "s", 200, answer, frozenset({("", "node", "IC_1")}))
    assert (why is not None) == refused, why
    assert why is None or "names nothing yet" in why



OWN_PULL = {"__typename": "PullRequest", "number": 1, "headRefName": "clauderon/s",
            "headRepository": {"nameWithOwner": "o/a"}, "repository": {"nameWithOwner": "o/a"}}


def reactions(*mine: tuple[str, str], theirs: tuple[str, ...] = (),
              total: int = 0) -> dict[str, object]:
    """GitHub's ``reactions`` of a node: the token user's (content, id), another user's."""
    nodes = [{"id": i, "content": c, "user": {"login": "octocat"}} for c, i in mine] + [
        {"id": f"X_{c}", "content": c, "user": {"login": "someone"}} for c in theirs]
    return {"totalCount": total or len(nodes), "nodes": nodes}


@pytest.mark.parametrize(("verb", "content", "on", "owned", "refused"), [
    ("add", "HOORAY", reactions(), (), None),  # none there: the add makes it
    ("add", "HOORAY", reactions(theirs=("HOORAY",)), (), None),  # another user's is theirs
    ("add", "THUMBS_DOWN", reactions(("THUMBS_DOWN", "R_1")), (), "may be the person's"),
    ("add", "HOORAY", reactions(("HOORAY", "R_2")), ("R_2",), None),  # its own, again
    ("remove", "HOORAY", reactions(("HOORAY", "R_2")), ("R_2",), None),
    ("remove", "HOORAY", reactions(("HOORAY", "R_2")), (), "may be the person's"),
    ("remove", "THUMBS_DOWN", reactions(("HOORAY", "R_2")), ("R_2",), "no THUMBS_DOWN reaction"),
    ("remove", "ROCKET", reactions(theirs=("ROCKET",), total=150), (), "could not be learnt"),
    ("remove", "ROCKET", {"nodes": None}, (), "could not be learnt"),
])
def test_a_graphql_reaction_is_the_sessions_only_when_its_add_found_none_there(
        verb: str, content: str, on: dict[str, object], owned: tuple[str, ...],
        refused: str | None) -> None:
    body = json.dumps({"query": f"mutation($id: ID!, $c: ReactionContent!) {{ {verb}Reaction("
                                "input: {subjectId: $id, content: $c}) { reaction { id } } }",
                       "variables": {"id": "PR_1", "c": content}})
    q = whose.question("POST", "/graphql", body.encode())
    assert isinstance(q, whose.Question) and set(q.ids) == {"PR_1", content}
    assert (q.reacting, q.removes, q.changes) == ((content,), verb == "remove", "")
    absent = {"type": "NOT_FOUND", "path": ["nodes", q.ids.index(content)]}
    pull = {**OWN_PULL, "reactions": on}
    answer = json.dumps({"data": {"viewer": {"login": "octocat"}, "nodes": [
        pull if i == "PR_1" else None for i in q.ids]}, "errors": [absent]}).encode()
    learnt = whose.node(q, 200, answer)
    assert {i for _, _, i in learnt} == {r["id"] for r in on.get("nodes") or []  # type: ignore[attr-defined]
                                         if r["user"]["login"] == "octocat"}
    why = whose.refusal(q, "s", 200, answer, frozenset(("", "node", i) for i in owned))
    assert (why is None) if refused is None else (isinstance(why, str) and refused in why), why
    nameless = json.dumps({"data": {"nodes": [pull if i == "PR_1" else None for i in q.ids]},
                           "errors": [absent]}).encode()
    assert "named no user" in str(whose.refusal(q, "s", 200, nameless))


@pytest.mark.parametrize(("query", "variables"), [
    ('mutation { removeReaction(input: {subjectId: "PR_1", content: $c}) { x } }',
     {"c": "heart"}),  # no content GitHub names so
    ("mutation { addReaction(input: {subjectId: 7, content: HEART}) { x } }", {}),
])
def test_a_graphql_reaction_not_written_out_cannot_be_checked(
        query: str, variables: dict[str, str]) -> None:
    body = json.dumps({"query": query, "variables": variables}).encode()
    assert "cannot be checked" in str(whose.question("POST", "/graphql", body))


def test_a_graphql_reaction_is_remembered_by_its_node_id() -> None:
    body = {"query": "mutation($id: ID!) { addReaction(input: {subjectId: $id, content: EYES}) "
                     "{ reaction { id databaseId } } }", "variables": {"id": "PR_1"}}
    c = creates.create("POST", "/graphql", json.dumps(body).encode())
    assert c is not None
    answer = {"data": {"addReaction": {"reaction": {"id": "REA_7", "databaseId": 7}}}}
    assert creates.created(c, 200, json.dumps(answer).encode()) == (("", "node", "REA_7"),)


@pytest.mark.parametrize(("query", "variables", "placed"), [
    ('mutation($id: ID!) { addComment(input: {subjectId: $id, body: "DB_x"}) { c } }',
     {"id": "PR_7"}, {"PR_7"}),
    ('mutation($x: String!) { a: deleteIssueComment(input: {id: $x}) { c } }',
     {"x": "IC_7"}, {"IC_7"}),  # passed where an id goes, whatever its declared type
    ('mutation($i: AddCommentInput!) { addComment(input: $i) { c } }',
     {"i": {"subjectId": "PR_1", "body": "WIP_x", "inReplyTo": "C_1"}}, {"PR_1", "C_1"}),
    ('mutation { createIssue(input: {repositoryId: "R_1", title: "DB_migration", '
     'assigneeIds: ["U_1", "U_2"], labelIds: []}) { issue { id } } }', None, {"R_1", "U_1", "U_2"}),
    ('mutation($ids: [ID!]!) { x(input: {a: $ids, t: "T_1"}) { c } }', {"ids": ["A_1", "A_2"]},
     {"A_1", "A_2"}),
    ('query { nodes(ids: ["A_1", {x: "B_2"}]) { id } node(id: """ N_1 """) { id } }', None,
     {"A_1", "N_1"}),
    # A variable's default is what the server uses when none is sent.
    ('mutation($id: ID = "IC_7", $b: [String!] = ["DB_x"]) { a(input: {id: $id, body: $b}) '
     '{ c } }', {}, {"IC_7"}),
    ('mutation($id: ID = "IC_7") { a(input: {id: $id}) { c } }', {"id": "IC_8"}, {"IC_8"}),
    ('mutation($v: String = "IC_7") { a(input: {subjectId: $v, t: "X_1"}) { c } }', None,
     {"IC_7"}),
    ('mutation($i: AddCommentInput = {subjectId: "PR_9", body: "B_1"}) { addComment(input: $i) '
     '{ c } }', {}, {"PR_9"}),
    # An alias named like an id renames a field: nothing is given there.
    ('query { id: viewer { login } }', None, set()),
])
def test_the_strings_given_where_a_node_id_goes(query: str, variables: object,
                                                 placed: set[str]) -> None:
    assert graphql.id_places(query, variables) == placed
