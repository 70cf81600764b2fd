"""Whose pull request a session's GitHub write touches (pure: requests and answers in,
questions and reasons out).

A session may change only the pull request whose head is its own branch
(``clauderon/<name>``, in the pull request's own repository). But GitHub names a pull
request by its number (REST's ``pulls/N``, and ``issues/N``: issues and pull requests share
their numbers, and an issue's edit closes or retitles a pull request just the same), a
comment on it by the comment's id (REST's ``issues/comments/ID``, ``pulls/comments/ID``:
asked first what it is on) or by a node id (GraphQL: the pull request's, or a comment's,
review's or thread's on it), never by its branch. So before such a write goes on, the
proxy asks GitHub, with the credential the write carries, what it names
(:func:`question`), and reads the answer (:func:`refusal`).

The person's words are theirs too: GitHub sees the person as the author of everything the
token writes, so nothing it answers tells the session's apart. A session opens issues,
comments, reviews and reacts anywhere in its own repositories (:mod:`proxy.ownrepos`
judges which), but a write that *changes* an issue, a comment, a
review, a thread or a reaction (an edit, closing, labels, assignees, a deletion, a
dismissal) passes only on the session's own pull request itself, or on what the session
made (:mod:`proxy.creates`, remembered in the store; :func:`claims`, :func:`made`) — an
issue by its number only while GitHub gives it the node id its create was answered with
(:func:`still_mine`: a repository made again under its name gives its numbers out again).
The person's comments, reviews and reactions on the session's own pull request stay theirs.

Asking, not remembering: the person opens a session's pull request from the appliance too,
a pull request outlives the proxy's memory, and GitHub knows its head. It costs a write
one read first; what cannot be learnt (GitHub down, an answer that does not read) refuses it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass

from appliance.methods import READS
from proxy import graphql, nodes, ownrepos
from proxy.creates import MAX_ID, Own, answer_json, owned_node
from proxy.gitguard import GRAPHQL, checkable_path

#: A write to a numbered pull request or issue, or to something under one.
_NUMBERED = re.compile(
    r"^/repos/(?P<repo>[^/]+/[^/]+)/(?P<kind>pulls|issues)/(?P<number>\d+)(?P<under>/.*)?$")
#: A write to a comment by its id (an edit, a deletion, a reaction): GitHub says what it is
#: on (``issue_url``, or ``pull_request_url`` for a review comment), which is asked next.
_COMMENT = re.compile(
    r"^/repos/(?P<repo>[^/]+/[^/]+)/(?P<kind>pulls|issues)/comments/(?P<id>\d+)(?P<under>/.*)?$")
_ON = re.compile(r"/repos/(?P<repo>[^/]+/[^/]+)/(?:pulls|issues)/(?P<number>\d+)$")
#: The most of GitHub's answer read (a pull request's JSON is a few KiB).
MAX_ANSWER = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    """What to ask GitHub, with the session's credential, before its write goes on."""

    method: str
    path: str
    body: bytes = b""
    #: REST: the repository and number the write names (an issue's number may be one).
    repo: str = ""
    number: int = 0
    #: GraphQL: the strings the document and its variables carry (any may be a node id).
    ids: tuple[str, ...] = ()
    #: REST: a comment's id, whose answer names the pull request or issue to ask about next.
    comment: int = 0
    #: What the write changes, when it changes more than it adds to (an issue's edit,
    #: labels or assignees, a comment's edit or deletion; a GraphQL document with any
    #: mutation but :data:`ADDS`): "" for a comment or reaction added.
    changes: str = ""
    #: REST: the comment whose pull request or issue this asks about (what the session made
    #: is the comment, never every comment on an issue it opened).
    via: int = 0
    #: REST: a reaction's id, when the write deletes it.
    reaction: int = 0
    #: GraphQL: the reactions' contents the document names, when it adds or takes away a
    #: reaction; ``removes`` when it takes one away.
    reacting: tuple[str, ...] = ()
    removes: bool = False
    #: GraphQL: the strings given where a node id goes (:func:`graphql.id_places`).
    placed: frozenset[str] = frozenset()
    #: REST: a review's id, when the write edits, deletes, submits or dismisses it.
    review: int = 0
    #: REST: the issue the session made by this number, asked for its node id (a repository
    #: deleted and made again under its name gives its numbers out again: the number alone
    #: names the person's new issue as well).
    same: bool = False


#: The GraphQL mutations that only add to an issue (or create one): every other mutation a
#: session may use changes what it names.
ADDS = frozenset({"createIssue", "addComment", "addReaction", "addPullRequestReview",
                  "addPullRequestReviewComment", "addPullRequestReviewThread",
                  "addPullRequestReviewThreadReply"})
#: Under a numbered issue or a comment, what a POST only adds to it: a comment, a reaction.
_ADDING = re.compile(r"^/(comments|reactions)$")
#: Under a numbered issue or a comment, a reaction named by its id (a DELETE takes it away).
_REACTION = re.compile(r"^/reactions/(?P<id>\d+)$")
#: Under a numbered pull request, a review named by its id: a write to it (an edit, a
#: deletion, a submission, a dismissal) changes it.
_REVIEW = re.compile(r"^/reviews/(?P<id>\d+)(/[^/]+)?$")


def claims(q: Question) -> tuple[Own, ...]:
    """What the change ``q`` was asked for names, in the terms of :data:`Own`: when the
    session made every one, the change is its own (nothing when it changes nothing)."""
    if not q.changes or q.via:
        return ()
    if q.path == GRAPHQL:
        return tuple(("", "node", i) for i in q.ids)
    if q.reaction:
        return ((q.repo.lower(), "reaction", str(q.reaction)),)
    if q.review:
        return ((q.repo.lower(), "review", str(q.review)),)
    if q.comment:
        kind = "review_comment" if "/pulls/comments/" in q.path else "issue_comment"
        return ((q.repo.lower(), kind, str(q.comment)),)
    return ((q.repo.lower(), "issue", str(q.number)),)


def made(q: Question, owned: frozenset[Own]) -> bool:
    """Whether the REST change ``q`` names only what the session made (``owned``: what of
    :func:`claims` it made); a GraphQL write's nodes are judged one by one (:func:`refusal`),
    an issue by its number once GitHub says its node id (:func:`still_mine`)."""
    named = claims(q)
    return q.path != GRAPHQL and bool(named) and set(named) <= owned \
        and not any(kind == "issue" for _, kind, _ in named)


def still_mine(q: Question, owned: frozenset[Own]) -> Question:
    """The question to ask before the change ``q``: when it names by its number an issue
    the session made (``owned``), the issue the number names now, whose node id says
    whether it is still that one (:func:`node`); else ``q``."""
    if q.path == GRAPHQL or (q.repo.lower(), "issue", str(q.number)) not in owned \
            or claims(q) != ((q.repo.lower(), "issue", str(q.number)),):
        return q
    return Question(method="GET", path=f"/repos/{q.repo}/issues/{q.number}", repo=q.repo,
                    number=q.number, changes=q.changes, same=True)


def node(q: Question, status: int, answer: bytes) -> tuple[Own, ...]:
    """What GitHub's answer to ``q`` names whose maker matters: the node id of the issue
    a number names now (asked by :func:`still_mine`); the token user's reactions on the
    nodes a GraphQL write that reacts names."""
    doc = answer_json(answer) if (q.same or q.reacting) and status == 200 else None
    if q.same:
        return owned_node(doc.get("node_id")) if isinstance(doc, dict) else ()
    return nodes.owned_in(doc.get("data") if isinstance(doc, dict) else None)


def question(method: str, path: str, body: bytes | None) -> Question | str | None:
    """What to ask before a session's write (one the rules of ``gitguard.py`` passed) goes
    on; None when it names no pull request that could be another's; a string saying why
    when what it names cannot be known."""
    clean = checkable_path(path) if method not in READS else None
    if clean is None:
        return None
    if clean == GRAPHQL:
        return _graphql_question(body)
    if (c := _COMMENT.match(clean)) is not None:
        repo, kind, comment = c.group("repo"), c.group("kind"), int(c.group("id"))
        under = c.group("under") or ""
        if (r := _REACTION.match(under)) is not None:
            return _reaction(repo, int(r.group("id")), f"comment {comment}")
        changes = "" if method == "POST" and _ADDING.match(under) else f"comment {comment}"
        return Question(method="GET", path=f"/repos/{repo}/{kind}/comments/{comment}",
                        repo=repo, comment=comment, changes=changes)
    m = _NUMBERED.match(clean)
    if m is None:
        return None
    number, under = int(m.group("number")), m.group("under") or ""
    if m.group("kind") == "issues" and (r := _REACTION.match(under)) is not None:
        return _reaction(m.group("repo"), int(r.group("id")), f"#{number}")
    if m.group("kind") == "pulls" and (r := _REVIEW.match(under)) is not None:
        # GitHub sees one user: the session's review only when its create's answer named it.
        review = int(r.group("id"))
        return Question(method="GET", path="", repo=m.group("repo"), review=review,
                        changes=f"review {review} (on pull request #{number})")
    if m.group("kind") == "pulls" and under == "/requested_reviewers" and method == "DELETE":
        return (f"the review requests of pull request #{number} are the person's: a session "
                "asks for reviewers, but takes none away; ask the person to")
    changes = "" if m.group("kind") == "pulls" or (method == "POST" and _ADDING.match(under)) \
        else f"issue #{number}"
    return _pull(m.group("repo"), number, changes)


def _reaction(repo: str, reaction: int, on: str) -> Question:
    """A reaction taken away: the session's only when its create's answer named it (GitHub
    sees one user, so where it stands says nothing of whose it is)."""
    return Question(method="GET", path="", repo=repo, reaction=reaction,
                    changes=f"reaction {reaction} (on {on})")


def unmade(q: Question, session_name: str) -> str | None:
    """Why the REST change ``q``, to a comment or reaction the session did not make (what
    :func:`made` did not pass), is refused without asking GitHub: the person wrote it or
    added it, wherever it stands (the session's own pull request too)."""
    if q.path != GRAPHQL and q.changes and q.reaction and not q.via:
        return (f"{q.changes} may be the person's: GitHub answers an add of a reaction there "
                "already (the person's, the same user to GitHub) as it answers a new one, so "
                "a session takes away by REST only a reaction it added by REST, whose 201 "
                "(not 200) names a new one; one it added by GraphQL's addReaction it takes "
                "away with removeReaction. Otherwise ask the person to")
    if q.path != GRAPHQL and q.changes and (q.comment or q.review) and not q.via:
        return _persons(q.changes, f"clauderon/{session_name}")
    return None


def _pull(repo: str, number: int, changes: str = "", via: int = 0) -> Question:
    return Question(method="GET", path=f"/repos/{repo}/pulls/{number}", repo=repo,
                    number=number, changes=changes, via=via)


def _persons(what: str, mine: str) -> str:
    return (f"{what} is the person's, not this session's: a session opens issues, comments "
            f"and reacts, but edits, closes, labels, assigns or deletes only what belongs to "
            f"its own pull request (from {mine}); ask the person to change {what}")


def _graphql_question(body: bytes | None) -> Question | str | None:
    try:
        doc = json.loads(body or b"")
        query = doc["query"]
        names = graphql.mutations(query)
        placed = graphql.id_places(query, doc.get("variables"))
    except (ValueError, KeyError, TypeError, RecursionError, graphql.Unreadable):
        return "a GraphQL document that cannot be read cannot be checked"
    if not names:
        return None
    if any(len(place) > MAX_ID for place in placed):  # never asked about: never written to
        return (f"a GraphQL write giving a string over {MAX_ID} characters where a node id "
                "goes cannot be checked (GitHub's ids are far shorter); give the id as GitHub "
                "wrote it")
    if "requestReviews" in names and not graphql.unions(query, doc.get("variables")):
        return ("requestReviews without union: true puts its reviewers in place of those "
                "asked already (the person's requests): a session asks for reviewers, but "
                "takes none away; say union: true in its input")
    # Every string of the document and its variables: whichever is a node id, and
    # wherever it stands (an argument, a variable of any name, nested), is asked about.
    found = graphql.strings(query, doc.get("variables"))
    ids = tuple(dict.fromkeys(s for s in found if 0 < len(s) <= MAX_ID))
    # A reaction taken away changes the reaction only (judged with GitHub's answer about the
    # reactions on what it names), not what it is on.
    changes = "" if set(names) <= ADDS | nodes.REACTING else "this GraphQL write"
    reacting: tuple[str, ...] = ()
    if nodes.REACTING & set(names):
        reacting = tuple(sorted(nodes.CONTENTS & {*graphql.tokens(query), *found}))
        if not reacting or not ids:
            return ("a GraphQL reaction whose content and subject are not written out (an "
                    "enum or string naming the content, a string the node) cannot be checked")
    if not ids:
        return None
    if len(ids) > nodes.MAX_IDS:
        return (f"a GraphQL write carrying over {nodes.MAX_IDS} short strings cannot be checked "
                "(whose pull request each names is asked of GitHub; send fewer at once)")
    return Question(method="POST", path=GRAPHQL, ids=ids, changes=changes, body=json.dumps(
        {"query": nodes.REACTIONS_QUERY if reacting else nodes.NODES_QUERY,
         "variables": {"ids": list(ids)}}).encode(),
        reacting=reacting, removes="removeReaction" in names, placed=placed)


def refusal(q: Question, session_name: str, status: int, answer: bytes,
            owned: frozenset[Own] = frozenset(), *, own: Collection[str] | None = None
            ) -> str | Question | None:
    """Why the write ``q`` was asked for is refused, given GitHub's answer (``status`` 0:
    none came) and what of it the session made (``owned``); the next question, when the
    answer names what to ask about (a comment's pull request or issue); or None. ``own``:
    the session's repositories, which every node a GraphQL write names must be in
    (``ownrepos.py``; None: not judged here)."""
    mine = f"clauderon/{session_name}"
    if q.path == GRAPHQL:
        doc = answer_json(answer) if status == 200 and own is not None else None
        elsewhere = None if own is None else ownrepos.nodes_refusal(
            q.ids, doc, own, session_name, q.placed)
        return elsewhere or _nodes_refusal(q, mine, status, answer, owned)
    if q.same:
        if set(node(q, status, answer)) & owned:
            return None
        if node(q, status, answer):
            return (f"issue #{q.number} is not the one this session opened: GitHub gives an "
                    f"issue another node id, so the number was given out again (the "
                    f"repository made anew); {_persons(q.changes, mine)}")
        return (f"whether issue #{q.number} is still the one this session opened could not "
                f"be learnt from GitHub ({status or 'no answer'}); the write waits until "
                "GitHub answers")
    if made(q, owned):
        return None
    if (why := unmade(q, session_name)) is not None:
        return why
    if q.comment:
        return _comment_refusal(q, mine, status, answer)
    if status == 404:  # no pull request has the number: an issue's (or nothing's)
        return _persons(q.changes, mine) if q.changes else None
    pull = answer_json(answer) if status == 200 else None
    head = pull.get("head") if isinstance(pull, dict) else None
    repo = head.get("repo") if isinstance(head, dict) else None
    if not isinstance(head, dict) or not isinstance(head.get("ref"), str):
        return (f"whose pull request #{q.number} is could not be learnt from GitHub "
                f"({status or 'no answer'}); a session changes only its own pull request "
                f"(from {mine}), so the write waits until GitHub answers")
    return _foreign(f"pull request #{q.number}", mine, head["ref"],
                    repo.get("full_name") if isinstance(repo, dict) else None, q.repo)


def _comment_refusal(q: Question, mine: str, status: int, answer: bytes
                     ) -> str | Question | None:
    if status == 404:  # no such comment: the write changes nothing
        return None
    doc = answer_json(answer) if status == 200 else None
    url = None
    if isinstance(doc, dict):
        url = doc.get("pull_request_url") or doc.get("issue_url")
    on = _ON.search(url) if isinstance(url, str) else None
    if on is None or on.group("repo").lower() != q.repo.lower():
        return (f"what comment {q.comment} is on could not be learnt from GitHub "
                f"({status or 'no answer'}); a session changes only its own pull request "
                f"(from {mine}) and issues, so the write waits until GitHub answers")
    number = int(on.group("number"))
    return _pull(q.repo, number, q.changes and f"{q.changes} (on issue #{number})", q.comment)


#: The nodes a person writes: a change to one passes only when the session made it.
_WORDS = {"Issue": "issue", "IssueComment": "comment", "PullRequestReview": "review",
          "PullRequestReviewComment": "review comment", "PullRequestReviewThread": "review thread"}


def _nodes_refusal(q: Question, mine: str, status: int, answer: bytes,
                   owned: frozenset[Own]) -> str | None:
    doc = answer_json(answer) if status == 200 else None
    data = doc.get("data") if isinstance(doc, dict) else None
    answered = data.get("nodes") if isinstance(data, dict) else None
    errors = doc.get("errors") if isinstance(doc, dict) else None
    # A string that names no node is answered null with a NOT_FOUND error: it is no id.
    strange = [e for e in errors or [] if not isinstance(e, dict) or e.get("type") != "NOT_FOUND"]
    if not isinstance(answered, list) or len(answered) != len(q.ids) or strange \
            or not isinstance(errors or [], list):
        return (f"what this GraphQL write names could not be learnt from GitHub "
                f"({status or 'no answer'}); a session changes only its own pull request "
                f"(from {mine}), so the write waits until GitHub answers")
    # A node is null too when a field inside it could not be read (its null goes up to the
    # node): only GitHub's NOT_FOUND for the node itself says the string names nothing.
    absent = {e["path"][1] for e in errors or [] if isinstance(e.get("path"), list)
              and len(e["path"]) == 2 and e["path"][0] == "nodes"}
    viewer = data.get("viewer") if isinstance(data, dict) else None
    login = viewer.get("login") if isinstance(viewer, dict) else None
    if q.reacting and not isinstance(login, str):
        return (f"whose reactions are whose could not be learnt from GitHub (it named no "
                f"user); a session takes away only its own reactions (from {mine}), so the "
                "write waits until GitHub answers")
    for at, (node_id, node) in enumerate(zip(q.ids, answered, strict=True)):
        if node is None and at not in absent:
            return (f"what {node_id} is could not be learnt from GitHub (its answer about it "
                    f"is empty, for a reason other than that it names nothing); a session "
                    f"changes only its own pull request (from {mine}), so the write waits "
                    "until GitHub answers")
        if node is None and node_id in q.placed and nodes.node_id_like(node_id):
            return nodes.unmade_yet(node_id)
        if node is None:
            continue
        if not isinstance(node, dict):
            return f"GitHub's answer about {node_id} does not read"
        if q.reacting and isinstance(login, str) and "reactions" in node \
                and (why := nodes.reaction_refusal(q.reacting, node_id, node["reactions"],
                                                   login=login, owned=owned,
                                                   removes=q.removes)):
            return why
        kind = node.get("__typename")
        if kind in _WORDS and ("", "node", node_id) in owned:
            continue  # the session made it
        if q.changes and kind in _WORDS and kind != "Issue":  # the person's, on any pull request
            return _persons(f"{_WORDS[kind]} {node_id}", mine)
        pull = node if kind == "PullRequest" else node.get("pullRequest")
        if pull is None and q.changes and kind in ("Issue", "IssueComment"):
            return _persons(f"{'issue' if kind == 'Issue' else 'comment'} {node_id}", mine)
        if pull is None:  # a repository, a label, a user; an issue or its comment added to
            continue
        if not isinstance(pull, dict):
            return f"GitHub's answer about {node_id} does not read"
        head, base = pull.get("headRepository"), pull.get("repository")
        why = _foreign(f"pull request #{pull.get('number')} ({node_id})", mine,
                       pull.get("headRefName"),
                       head.get("nameWithOwner") if isinstance(head, dict) else None,
                       base.get("nameWithOwner") if isinstance(base, dict) else None)
        if why is not None:
            return why
    return None


def _foreign(what: str, mine: str, ref: object, head_repo: object,
             repo: object) -> str | None:
    """Why a pull request whose head is ``ref`` in ``head_repo`` is not the session's (its
    repository is ``repo``), or None."""
    if ref == mine and isinstance(head_repo, str) and isinstance(repo, str) \
            and head_repo.lower() == repo.lower():
        return None
    where = ref if head_repo == repo or not isinstance(head_repo, str) else f"{head_repo}:{ref}"
    return (f"{what} is not this session's: its head is {where}, and a session changes only "
            f"its own pull request (from {mine}); ask the person to change {what}")

