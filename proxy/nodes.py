"""GitHub's nodes as the proxy asks about them (pure): the questions asked before a GraphQL
write goes on (:data:`NODES_QUERY`, :data:`REACTIONS_QUERY`), what is written as a node id
(:func:`node_id_like`), and whose reaction is whose.

GitHub sees one user behind the token: the person's reactions and the session's are the
same user's, and an add of a reaction that is there already is answered as an add of a new
one. So a GraphQL reaction is the session's only when its add found none of its content
there (the reaction it made is then remembered from the answer, :mod:`proxy.creates`), and
a session takes away only one it made. Before such a write the proxy asks GitHub who the
token's user is and the reactions on each node it names (:data:`REACTIONS_QUERY`).
"""

from __future__ import annotations

import base64
import binascii
import re

from proxy.creates import Own, owned_node
from proxy.ownrepos import REPOSITORY_FIELDS

#: GitHub's ``nodes`` takes at most 100 ids.
MAX_IDS = 100
#: The most reactions of a node read: the token user's among them are each a reaction's id.
MAX_REACTIONS = 100
#: GitHub's ``ReactionContent``: what a GraphQL reaction is.
CONTENTS = frozenset({"THUMBS_UP", "THUMBS_DOWN", "LAUGH", "HOORAY", "CONFUSED", "HEART",
                      "ROCKET", "EYES"})
#: The GraphQL mutations that add or take away the token user's reaction of a content.
REACTING = frozenset({"addReaction", "removeReaction"})

#: What a node is asked for: the pull request it is, or the one it is on; the repository
#: it is in (``ownrepos.py``).
_PULL = "number headRefName headRepository { nameWithOwner } repository { nameWithOwner }"
_NODE = (
    f"__typename ... on PullRequest {{ {_PULL} }} "
    + " ".join(f"... on {kind} {{ pullRequest {{ {_PULL} }} }}" for kind in (
        "IssueComment", "PullRequestReview", "PullRequestReviewComment",
        "PullRequestReviewThread"))
    + " " + REPOSITORY_FIELDS)
NODES_QUERY = f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ {_NODE} }} }}"
#: What a write that adds or takes away a reaction asks as well: who the token's user is,
#: and the reactions on each node (its own among them, by their ids).
REACTIONS_QUERY = (
    f"query($ids: [ID!]!) {{ viewer {{ login }} nodes(ids: $ids) {{ {_NODE} "
    f"... on Reactable {{ reactions(first: {MAX_REACTIONS}) "
    "{ totalCount nodes { id content user { login } } } } } }")

#: A GitHub node id as GitHub writes one now: its kind's capitals, ``_``, then base64url
#: (never capitals alone: that is an enum's value, ``THUMBS_UP``, ``CHANGES_REQUESTED``),
#: read as a decoder may: its kind in any case (``ic_``), its padding (``=``) given, the
#: standard alphabet's ``+/`` for ``-_``.
_NODE_ID = re.compile(r"[A-Za-z]{1,8}_(?=[A-Za-z0-9_+/-]*[a-z0-9])[A-Za-z0-9_+/-]+=*")
#: What a node id of the older form reads as, once its base64 is undone: ``012:IssueComment1``.
_LEGACY = re.compile(rb"\d{1,4}:[A-Za-z]+\d*")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")


def node_id_like(text: str) -> bool:
    """Whether ``text`` is written as GitHub writes a node id (either form), or as a decoder
    reads as one: such a string that names nothing yet, given where an id goes
    (:func:`proxy.graphql.id_places`), may name what is made next (ids are handed out in
    order)."""
    text = text.strip()
    if _NODE_ID.fullmatch(text):
        return True
    # Read as a lenient decoder reads one (Ruby's ``unpack("m")``): ``-_`` stand for ``+/``,
    # padding and any other character are read away.
    kept = _NOT_BASE64.sub("", text.replace("-", "+").replace("_", "/"))
    kept = kept[:len(kept) - (len(kept) % 4 == 1)]  # a lone last character carries no byte
    try:
        plain = base64.b64decode(kept + "=" * (-len(kept) % 4))
    except (binascii.Error, ValueError):
        return False
    return _LEGACY.fullmatch(plain) is not None


def unmade_yet(what: str) -> str:
    """Why a write given the node id ``what``, which names nothing yet, is refused."""
    return (f"{what} names nothing yet, so a write to it does nothing; but ids are handed "
            "out in order, and what is made under it next (between GitHub's answer and the "
            "write) may be the person's: a session writes only to what is there")

def viewers(reactions: object, login: str) -> dict[object, object]:
    """The token user's reactions among ``reactions`` (GitHub's connection): by content,
    each its node id."""
    got = reactions.get("nodes") if isinstance(reactions, dict) else None
    return {r.get("content"): r.get("id") for r in got or [] if isinstance(r, dict)
            and isinstance(r.get("user"), dict) and r["user"].get("login") == login}


def owned_in(data: object) -> tuple[Own, ...]:
    """The token user's reactions on the nodes of GitHub's answer ``data`` (``viewer`` and
    ``nodes``), each as what a session may have made."""
    viewer = data.get("viewer") if isinstance(data, dict) else None
    nodes = data.get("nodes") if isinstance(data, dict) else None
    login = viewer.get("login") if isinstance(viewer, dict) else None
    if not isinstance(nodes, list) or not isinstance(login, str):
        return ()
    return tuple(own for n in nodes if isinstance(n, dict)
                 for reaction in viewers(n.get("reactions"), login).values()
                 for own in owned_node(reaction))


def reaction_refusal(contents: tuple[str, ...], node_id: str, reactions: object, *,
                     login: str, owned: frozenset[Own], removes: bool) -> str | None:
    """Why a GraphQL write that adds (or, ``removes``, takes away) the token user's
    reactions of ``contents`` on the node ``node_id`` (whose reactions GitHub says are
    ``reactions``, the token user's by ``login``) is refused, or None."""
    got = reactions.get("nodes") if isinstance(reactions, dict) else None
    total = reactions.get("totalCount") if isinstance(reactions, dict) else None
    if not isinstance(got, list) or type(total) is not int:
        return (f"the reactions on {node_id} could not be learnt from GitHub; a session adds "
                "a reaction only where none of its content is there, and takes away only its "
                "own, so the write waits until GitHub answers")
    mine = viewers(reactions, login)
    for content in contents:
        there = mine.get(content)
        if there is None and total > len(got):
            return (f"whether a {content} reaction is on {node_id} could not be learnt (it has "
                    f"over {len(got)} reactions); a session adds a reaction only where none of "
                    "its content is there, and takes away only its own")
        if there is not None and ("", "node", there) in owned:
            continue  # the session added it
        if there is not None:
            return (f"the {content} reaction on {node_id} may be the person's (GitHub sees one "
                    "user, and answers an add of a reaction there already as it answers a new "
                    "one): a session adds a reaction only where none of its content is there, "
                    "and takes away only one it added; ask the person to")
        if removes:
            return (f"no {content} reaction is on {node_id}, so taking it away changes "
                    "nothing; but one the person adds between GitHub's answer and the write "
                    "would be taken away: a session takes away only a reaction it added")
    return None
