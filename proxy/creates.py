"""What a session's GitHub write made, read from GitHub's answer to it (pure: requests and
answers in, what was made out).

When GitHub answers a session's create (REST ``POST .../issues``, ``.../issues/N/comments``,
``.../pulls/N/comments``, a reaction, a review; a GraphQL ``createIssue``, ``addComment``,
``addReaction`` or a review's add), :func:`created` reads what it made (:data:`Own`), and
the proxy remembers it with the session in the store (:mod:`proxy.made`); :mod:`proxy.whose`
lets a session change what it made. Only an answer GitHub shaped is read: a REST create's ``201`` (a
review's ``200``) whose ``url`` names the repository written to and the number or id it
carries, a GraphQL document that renames no field (an alias could put any id where the
created issue's stands: ``issue { id: title }``, ``createIssue: addComment``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from proxy import graphql
from proxy.gitguard import GITHUB_API, GRAPHQL, checkable_path

#: No node id is longer than this.
MAX_ID = 256


#: What a session made: (repository in lower case, kind, number or id); a node id is
#: GitHub-wide, its repository "".
Own = tuple[str, str, str]
#: The REST creates whose answer is remembered, the kind of what they make, and where
#: GitHub's answer says it is (``url``, by the number or id it carries).
_CREATES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues$"), "issue", "issues/{}"),
    (re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/\d+/comments$"), "issue_comment",
     "issues/comments/{}"),
    (re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/pulls/\d+/comments(/\d+/replies)?$"),
     "review_comment", "pulls/comments/{}"),
    (re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/(issues/|(issues|pulls)/comments/)\d+/reactions$"),
     "reaction", ""),
    (re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/pulls/(?P<number>\d+)/reviews$"), "review",
     "pulls/{number}"))
#: The GraphQL creates whose answer is remembered: the field of the payload that is what
#: was made, and the kind of its ``databaseId`` in REST's terms (a review comment's is the
#: id of ``pulls/comments/ID``, so REST and GraphQL change it alike).
_GRAPHQL_CREATES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("createIssue", ("issue",), "issue"),
    ("addComment", ("commentEdge", "node"), "issue_comment"),
    ("addPullRequestReviewComment", ("comment",), "review_comment"),
    ("addPullRequestReview", ("pullRequestReview",), "review"),
    ("addPullRequestReviewThread", ("thread",), "thread"),
    # Passed only where no reaction of its content was there (``nodes.reaction_refusal``):
    # what GitHub answers is then the one it made.
    ("addReaction", ("reaction",), "reaction"))
_REMEMBERED = frozenset(name for name, _, _ in _GRAPHQL_CREATES)


@dataclass(frozen=True, slots=True)
class Create:
    """A session's write whose answer says what it made: ``kind`` (``graphql``, or a REST
    create's kind) in ``repo`` (lower case; "" for GraphQL)."""

    repo: str
    kind: str
    url: str = ""


def create(method: str, path: str, body: bytes | None) -> Create | None:
    """The create a session's write is, when its answer is to be read, or None."""
    clean = checkable_path(path) if method == "POST" else None
    if clean is None or "?" in path:
        return None
    if clean == GRAPHQL:
        try:
            query = json.loads(body or b"")["query"]
            if not isinstance(query, str) or not _REMEMBERED & set(graphql.mutations(query)) \
                    or graphql.aliased(query):
                return None
        except (ValueError, KeyError, TypeError, RecursionError, graphql.Unreadable):
            return None
        return Create(repo="", kind="graphql")
    for pattern, kind, url in _CREATES:
        if (m := pattern.match(clean)) is not None:
            return Create(repo=m.group("repo").lower(), kind=kind, url=url.replace(
                "{number}", m.groupdict().get("number") or ""))
    return None


def created(c: Create, status: int, answer: bytes) -> tuple[Own, ...]:
    """What GitHub's answer to the create ``c`` says the session made (nothing when the
    create was refused, or its answer does not read as GitHub's)."""
    doc = answer_json(answer)
    if c.kind == "graphql":
        data = doc.get("data") if status == 200 and isinstance(doc, dict) else None
        return _graphql_created(data) if isinstance(data, dict) else ()
    # Only 201 is a new one: GitHub answers a reaction already there (the person's, the same
    # user to GitHub) again with 200. A review's create is answered 200, and always new.
    if status != (200 if c.kind == "review" else 201) or not isinstance(doc, dict):
        return ()
    ident = doc.get("number" if c.kind == "issue" else "id")
    if type(ident) is not int or ident <= 0:
        return ()
    if c.kind == "reaction":  # a reaction's answer names no url: its content shows its shape
        return ((c.repo, c.kind, str(ident)),) if isinstance(doc.get("content"), str) else ()
    # A review's answer names the pull request it is on, not itself.
    url = doc.get("pull_request_url" if c.kind == "review" else "url")
    if not isinstance(url, str) \
            or url.lower() != f"https://{GITHUB_API}/repos/{c.repo}/{c.url.format(ident)}":
        return ()
    return ((c.repo, c.kind, str(ident)), *owned_node(doc.get("node_id")))


def owned_node(node_id: object) -> tuple[Own, ...]:
    """A node id GitHub gave, as what a session made (none when it is not one)."""
    return (("", "node", node_id),) if isinstance(node_id, str) \
        and 0 < len(node_id) <= MAX_ID else ()


def _graphql_created(data: dict[str, object]) -> tuple[Own, ...]:
    found: list[Own] = []
    for name, path, kind in _GRAPHQL_CREATES:
        item: object = data.get(name)
        for key in path:
            item = item.get(key) if isinstance(item, dict) else None
        if not isinstance(item, dict):
            continue
        found += owned_node(item.get("id"))
        repo = item.get("repository")
        where = repo.get("nameWithOwner") if isinstance(repo, dict) else None
        ident = item.get("number" if kind == "issue" else "databaseId")
        if isinstance(where, str) and where.count("/") == 1 and type(ident) is int \
                and ident > 0:
            found.append((where.lower(), kind, str(ident)))
    return tuple(found)


def answer_json(answer: bytes) -> object:
    """GitHub's answer as JSON, or None when it does not read."""
    try:
        return json.loads(answer)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
