"""Which repository a session's GitHub write lands in, and whether it is its own."""

from __future__ import annotations

import pytest

from proxy import ownrepos

OWN = ("Octo/App", "octo/lib")


@pytest.mark.parametrize(("path", "repo"), [
    ("/repos/o/r/issues", "o/r"),
    ("/repos/o/r", "o/r"),
    ("/repos/o/r/issues/1/comments?x=1", "o/r"),
    ("/graphql", None),
    ("/user/keys", None),
    ("/repos/o", None),
])
def test_rest_repo(path: str, repo: str | None) -> None:
    assert ownrepos.rest_repo(path) == repo


@pytest.mark.parametrize(("path", "repo"), [
    ("/o/r.git/git-receive-pack", "o/r"),
    ("/o/r/git-receive-pack", "o/r"),
    ("/o/r.git/info/refs", None),
    ("/o/git-receive-pack", None),
])
def test_push_repo(path: str, repo: str | None) -> None:
    assert ownrepos.push_repo(path) == repo


@pytest.mark.parametrize(("repo", "refused"), [
    ("octo/app", False), ("OCTO/LIB", False), ("person/secret", True), ("octo/app2", True),
])
def test_foreign(repo: str, refused: bool) -> None:
    why = ownrepos.foreign(repo, OWN, "s")
    assert (why is not None) == refused
    if why:
        assert repo in why and "run a session" in why


def test_a_session_with_no_github_repository_writes_nowhere() -> None:
    assert "none on GitHub" in (ownrepos.foreign("o/r", (), "s") or "")


@pytest.mark.parametrize(("node", "refused"), [
    ({"__typename": "Repository", "nameWithOwner": "octo/app"}, False),
    ({"__typename": "Repository", "nameWithOwner": "person/secret"}, True),
    ({"__typename": "Issue", "repository": {"nameWithOwner": "Octo/Lib"}}, False),
    ({"__typename": "IssueComment", "repository": {"nameWithOwner": "p/s"}}, True),
    ({"__typename": "PullRequestReviewThread",
      "pullRequest": {"repository": {"nameWithOwner": "octo/app"}}}, False),
    ({"__typename": "PullRequestReviewThread",
      "pullRequest": {"repository": {"nameWithOwner": "p/s"}}}, True),
    ({"__typename": "User"}, False),
    ({"__typename": "Team"}, False),
    ({"__typename": "TeamDiscussion"}, True),  # in no repository: GitHub cannot say
    ({"__typename": "Issue"}, True),  # no repository in the answer
    ({"__typename": "Issue", "repository": None}, True),
    ("junk", True),
])
def test_node_refusal(node: object, refused: bool) -> None:
    assert (ownrepos.node_refusal("X_1", node, OWN, "s") is not None) == refused


def _answer(*found: object) -> dict[str, object]:
    return {"data": {"nodes": list(found)}}


MINE = {"__typename": "Issue", "repository": {"nameWithOwner": "octo/app"}}
THEIRS = {"__typename": "Issue", "repository": {"nameWithOwner": "p/s"}}


@pytest.mark.parametrize(("ids", "doc", "refused", "placed"), [
    (("I_1", "x"), _answer(MINE, None), None, None),  # a string that names nothing: no node
    (("I_1", "I_2"), _answer(MINE, THEIRS), "p/s is not one of", None),
    (("I_2",), _answer({"__typename": "Discussion"}), "could not be learnt", None),
    (("I_1", "U_1"), _answer(MINE, {"__typename": "User"}), None, None),
    # An answer that does not read is whose.py's to refuse (it says why): none here.
    (("I_1",), {"errors": [{"type": "FORBIDDEN"}]}, None, None),
    (("I_1", "I_2"), _answer(MINE), None, None),
    (("I_1",), None, None, None),
    # Another repository's id written where GitHub reads no id (a comment's body that
    # quotes it) is text: the write does not reach that repository.
    (("I_1", "I_2"), _answer(MINE, THEIRS), None, {"I_1"}),
    (("I_1", "I_2"), _answer(MINE, THEIRS), "p/s is not one of", {"I_2"}),
])
def test_nodes_refusal(ids: tuple[str, ...], doc: object, refused: str | None,
                       placed: set[str] | None) -> None:
    why = ownrepos.nodes_refusal(ids, doc, OWN, "s", set(ids) if placed is None else placed)
    assert (why is None) if refused is None else (why is not None and refused in why)
