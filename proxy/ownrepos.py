"""Which GitHub repository a session's write lands in, and whether it is one of the
session's own (pure).

A session's own repositories are the GitHub remotes its repositories had when it was made
(the primary and each further one: every remote on github.com, ``origin`` and, on a fork,
``upstream`` when the person added it), recorded on the session row. A write reaches only
those: a REST write by the ``{owner}/{repo}`` of its ``/repos/...`` path, a push by the
``owner/repo(.git)`` of its URL, a GraphQL write by the repository of every node it names
(GitHub is asked, :data:`REPOSITORY_FIELDS`, with the question ``whose.py`` asks already).
Names are compared without regard to case, as GitHub does. Reads stay free.
"""

from __future__ import annotations

import re
from collections.abc import Collection

#: The REST path of anything in a repository: ``/repos/{owner}/{repo}[/...]``.
_REST = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)(?:/.*)?$")
#: A push's path: ``/{owner}/{repo}[.git]/git-receive-pack``.
_PUSH = re.compile(r"^/(?P<owner>[^/]+)/(?P<name>[^/]+?)(?:\.git)?/git-receive-pack$")
#: What a GraphQL ``nodes`` question asks as well, so each node says its repository.
REPOSITORY_FIELDS = ("... on Repository { nameWithOwner } "
                     "... on RepositoryNode { repository { nameWithOwner } } "
                     "... on Label { repository { nameWithOwner } } "
                     "... on Milestone { repository { nameWithOwner } }")
#: Nodes in no repository a write may name (an assignee, a reviewer, a team asked).
ACTORS = frozenset({"User", "Bot", "Mannequin", "Organization", "Team"})


def rest_repo(path: str) -> str | None:
    """The ``owner/repo`` a REST path (query and all) is in, or None when it names none."""
    m = _REST.match(path.split("?", 1)[0])
    return m.group("repo") if m else None


def push_repo(path: str) -> str | None:
    """The ``owner/repo`` a push's path names (``.git`` or not), or None."""
    m = _PUSH.match(path.split("?", 1)[0])
    return f"{m.group('owner')}/{m.group('name')}" if m else None


def foreign(repo: str, own: Collection[str], session_name: str) -> str | None:
    """Why a write to ``repo`` is refused when ``own`` are the session's repositories, or
    None when it is one of them (any case)."""
    if repo.lower() in {r.lower() for r in own}:
        return None
    mine = ", ".join(sorted(own)) or "none on GitHub"
    return (f"{repo} is not one of this session's repositories ({mine}): a session writes "
            f"on GitHub only to the repositories it runs on, never elsewhere under the "
            f"person's name; to work on {repo}, run a session on a clone of it "
            f"(session {session_name})")


def node_repo(node: object) -> str | None:
    """The ``owner/repo`` a node of GitHub's ``nodes`` answer is in, or None."""
    if not isinstance(node, dict):
        return None
    if node.get("__typename") == "Repository" and isinstance(node.get("nameWithOwner"), str):
        return str(node["nameWithOwner"])
    pull = node.get("pullRequest")  # a review thread: the pull request it is on
    repo = node.get("repository") or (pull.get("repository") if isinstance(pull, dict)
                                      else None)
    named = repo.get("nameWithOwner") if isinstance(repo, dict) else None
    return named if isinstance(named, str) else None


def node_refusal(node_id: str, node: object, own: Collection[str],
                 session_name: str) -> str | None:
    """Why a GraphQL write naming ``node_id`` (GitHub answered ``node`` about it) is
    refused: it is in another repository, or GitHub did not say which."""
    repo = node_repo(node)
    if repo is not None:
        return foreign(repo, own, session_name)
    if isinstance(node, dict) and node.get("__typename") in ACTORS:
        return None
    kind = node.get("__typename") if isinstance(node, dict) else None
    return (f"which repository {node_id} ({kind or 'of no kind GitHub named'}) is in could "
            "not be learnt from GitHub; a session writes only to its own repositories, so "
            "the write waits until GitHub says")


def nodes_refusal(ids: tuple[str, ...], doc: object, own: Collection[str],
                  session_name: str, placed: Collection[str]) -> str | None:
    """Why a GraphQL write naming ``ids`` is refused for the repository of one of them given
    where GitHub reads a node id (``placed``: ``graphql.id_places``), given GitHub's answer
    ``doc`` to the ``nodes`` question, or None. A string elsewhere (a comment's body that
    happens to spell another repository's id) names nothing; a node answered null names
    nothing either; an answer that does not read is ``whose.py``'s to refuse."""
    data = doc.get("data") if isinstance(doc, dict) else None
    found = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(found, list) or len(found) != len(ids):
        return None
    return next((why for node_id, node in zip(ids, found, strict=True)
                 if node is not None and node_id in placed
                 and (why := node_refusal(node_id, node, own, session_name)) is not None), None)
