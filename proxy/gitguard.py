"""What a session may change on a remote with the credential the proxy injects (pure).

The agent never holds the real GitHub credential, but the proxy puts it into the agent's
requests: without a check, an agent could push to ``main``, delete another branch or merge a
pull request with the user's token. Containment invariant 2 ("the agent changes no ref but
its own session branch") therefore holds on the remote too:

* **git pushes** (``POST .../git-receive-pack``): the ref update commands at the head of the
  request body (pkt-lines up to the first flush) are read before anything goes upstream;
  every ref must be the session's branch ``refs/heads/clauderon/<name>``. Signed pushes and
  encoded bodies cannot be checked and are refused.
* **GitHub's REST API**: a session's writes are judged against what it may write, and the
  rest is refused. Writes that move refs (``git/refs``) or commit files (``contents``,
  ``merges``) and pull requests opened (``head``, GraphQL's ``headRefName``) pass where
  they name the session's branch; its pull requests and issues,
  their comments, reviews, labels and reactions, and git objects pass. Merging, CI's
  statuses and runs, releases, deployments, workflow dispatches, the repository's settings,
  keys, hooks and secrets, and everything outside a repository (the person's account and
  SSH keys, organisations, gists) are the person's to do. A path a server might read as
  another (dot or empty segments, percent-escapes) is refused, and so is a JSON body that
  names a key twice.
* **GitHub's GraphQL API** (``/graphql``): every mutation a document names must be one
  of :data:`SESSION_MUTATIONS`, the same things as the REST writes (``graphql.py`` reads
  the document; what it cannot read is refused).

Reads pass. :func:`push_refusal` and :func:`api_refusal` return the reason for a refusal,
or None. Which pull request a write names (by number or node id) is not known here: once
these rules pass a write, ``whose.py`` asks GitHub whether it is the session's own (and
refuses a change to an issue or comment that is not on it: the person's).

The appliance's own identity (``proxy/directory.py``: what a person asks of it from a UI)
has rules of its own, just as narrow for what it does: it pushes session branches
(``refs/heads/clauderon/*``) and nothing else, and its GitHub writes are opening a pull
request from a session branch, merging a pull request and deleting a session branch
(:func:`owner_push_refusal`, :func:`owner_api_refusal`).
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

from appliance.methods import READS
from appliance.onekey import once
from proxy import gqlform, graphql

#: The ref-update commands of a push are read this far at most before deciding.
MAX_COMMANDS = 256 * 1024
_HEX = re.compile(rb"[0-9a-f]{40}|[0-9a-f]{64}")


def own_ref(session_name: str) -> str:
    return f"refs/heads/clauderon/{session_name}"


#: GitHub's REST API host: its writes are judged by :func:`api_refusal` (a session) or
#: :func:`owner_api_refusal` (the appliance's own identity).
GITHUB_API = "api.github.com"


def is_remote_write(method: str, host: str, path: str) -> bool:
    """A push, or a write to GitHub's REST API: what this module's rules judge."""
    return is_push(method, path) or (host == GITHUB_API
                                     and method not in READS)


#: What git sends its fetch negotiation as (``Content-Type``).
UPLOAD_PACK_REQUEST = b"application/x-git-upload-pack-request"


def is_fetch(method: str, path: str, content_type: bytes | None) -> bool:
    """A clone or fetch over smart HTTP: the want/have negotiation is a POST, but it reads.
    Only git's own negotiation: a POST of anything else to a path that ends the same way (a
    form, JSON, to a host that is no git server) is what it is, a write."""
    return (method == "POST" and path.split("?", 1)[0].endswith("/git-upload-pack")
            and (content_type or b"").split(b";", 1)[0].strip().lower() == UPLOAD_PACK_REQUEST)


def is_push(method: str, path: str) -> bool:
    """A POST whose path a server may read as git's push service: decoded (a CGI server
    hands git-http-backend its path unescaped, so ``git-receive-p%61ck`` runs a push),
    whatever the case, wherever the service's name stands (``/git-receive-pack/.``,
    ``/git-receive-pack;x``: a server that reads dot segments or parameters away)."""
    if method != "POST":
        return False
    service = path.split("?", 1)[0]
    for _ in range(4):  # escaped escapes, for a server that decodes twice
        if "%" not in service:
            break
        service = unquote(service)
    return "git-receive-pack" in service.lower()


def push_commands(body: bytes) -> list[str] | str | None:
    """The refs a push updates; None while the commands are not all there yet; a string
    saying why when they are not what a push sends."""
    refs: list[str] = []
    at = 0
    while True:
        if len(body) - at < 4:
            return None
        try:
            size = int(body[at:at + 4], 16)
        except ValueError:
            return "the push does not start with git's pkt-lines"
        if size == 0:
            return refs if refs else "the push names no ref"
        if size < 4:
            return "the push holds a malformed pkt-line"
        if len(body) - at < size:
            return None
        line, _, caps = body[at + 4:at + size].partition(b"\0")
        line = line.rstrip(b"\n")
        at += size
        if b"push-options" in caps.split():
            return ("push options ask the server to act beyond the refs (a merge, on some "
                    "servers) and cannot be checked; push without -o")
        if line.startswith(b"shallow "):
            continue
        if line.startswith(b"push-cert"):
            return "signed pushes cannot be checked by the proxy; push without --signed"
        parts = line.split(b" ")
        if len(parts) != 3 or not _HEX.fullmatch(parts[0]) or not _HEX.fullmatch(parts[1]):
            return "the push holds a command that is not '<old> <new> <ref>'"
        refs.append(parts[2].decode("utf-8", "replace"))


#: git's probe before a push too large for one buffer (``http.postBuffer``), sent chunked:
#: a flush packet alone, which updates nothing.
PROBE = b"0000"


def _refs(body: bytes, *, complete: bool) -> list[str] | str:
    """The refs a push updates (none for git's :data:`PROBE`), or why they cannot be known."""
    if complete and body == PROBE:
        return []
    found = push_commands(body)
    if found is None:
        return ("the push's ref updates are longer than the proxy reads" if not complete
                or len(body) >= MAX_COMMANDS else "the push ended before its ref updates")
    return found


def push_refusal(session_name: str, body: bytes, *, complete: bool) -> str | None:
    """Why this push is refused, or None. ``complete``: ``body`` is the whole request."""
    found = _refs(body, complete=complete)
    if isinstance(found, str):
        return found
    mine = own_ref(session_name)
    others = [r for r in found if r != mine]
    if others:
        return (f"this session may push only {mine.removeprefix('refs/heads/')}, not "
                f"{', '.join(o.removeprefix('refs/heads/') for o in others[:3])}")
    return None


SESSION_REFS = "refs/heads/clauderon/"


def owner_push_refusal(body: bytes, *, complete: bool) -> str | None:
    """Why the appliance's own push is refused (it pushes session branches only)."""
    found = _refs(body, complete=complete)
    if isinstance(found, str):
        return found
    others = [r for r in found if not r.startswith(SESSION_REFS) or r == SESSION_REFS]
    if others:
        return (f"the appliance pushes only session branches (clauderon/...), not "
                f"{', '.join(o.removeprefix('refs/heads/') for o in others[:3])}")
    return None


# --- GitHub's REST API ---------------------------------------------------------------------

_REPO = r"/repos/[^/]+/[^/]+"
_REFS = re.compile(rf"^{_REPO}/git/refs/(?P<ref>.+)$")
#: Writes that name their branch in the body: a ref created, a file committed, a merge, a
#: pull request opened (from the session's branch only: the person's view of another
#: session shows the pull request whose head is that session's branch).
_BODY_BRANCH: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"^{_REPO}/git/refs$"), "ref"),
    (re.compile(rf"^{_REPO}/contents/.+$"), "branch"),
    (re.compile(rf"^{_REPO}/merges$"), "base"),
    (re.compile(rf"^{_REPO}/pulls$"), "head")]
#: What else a session may write: its pull requests and issues, their comments, reviews,
#: labels and reactions, a new label, and git objects (which move no ref). Everything else
#: -- merging, CI's statuses and runs, releases, deployments, workflow dispatches, the
#: repository's settings, its labels renamed or deleted (from every issue at once), keys,
#: hooks and secrets, and everything outside a repository (the person's account and keys,
#: organisations, gists) -- is the person's to do.
_SESSION_WRITES = re.compile(rf"""^{_REPO}/(
      pulls | pulls/\d+ | pulls/\d+/(comments|reviews|requested_reviewers)
    | pulls/\d+/comments/\d+/replies | pulls/\d+/reviews/\d+(/events|/comments)?
    | pulls/comments/\d+ | (pulls|issues)/comments/\d+/reactions(/\d+)?
    | issues | issues/\d+ | issues/\d+/(comments|labels|assignees|reactions)(/[^/]+)?
    | issues/comments/\d+ | labels
    | git/(blobs|trees|commits)
)$|^/markdown(/raw)?$""", re.VERBOSE)
#: A review written or submitted: its ``event`` may not approve.
_REVIEW = re.compile(rf"^{_REPO}/pulls/\d+/reviews(/\d+/events)?$")
#: A review with no ``event`` stays pending (the person submits it).
_PENDING = object()
#: A pull request edited: its ``base`` is the person's to choose (a retargeted pull request
#: would land the session's work on another branch once merged).
_PULL_EDIT = re.compile(rf"^{_REPO}/pulls/\d+$")
#: The writes judged by their body (beside GraphQL's).
_BODY_READ = (_REVIEW, _PULL_EDIT, *(p for p, _ in _BODY_BRANCH))
_RETARGET = ("a pull request's base is the person's to choose, not a session's (a session "
             "may edit its title, body and state; the person retargets it on GitHub)")
#: GitHub's GraphQL endpoint: its mutations are judged by name (``graphql.py``).
GRAPHQL = "/graphql"
#: The longest GraphQL document a session's request may carry, in characters: scanning one
#: is pure Python on the proxy's one event loop (``gh``'s are a few KiB; text such as a
#: comment's body travels in the variables, which are not scanned).
GRAPHQL_LIMIT = 64 * 1024
#: The GraphQL mutations a session may use: the same things as its REST writes.
SESSION_MUTATIONS = frozenset({
    "createPullRequest", "updatePullRequest", "closePullRequest", "reopenPullRequest",
    "markPullRequestReadyForReview", "convertPullRequestToDraft", "requestReviews",
    # Not addPullRequestReview or submitPullRequestReview: their event may approve, and
    # an approval is the person's judgement (REST reviews are read for it).
    "addPullRequestReviewComment", "addPullRequestReviewThread",
    "addPullRequestReviewThreadReply", "updatePullRequestReview",
    "deletePullRequestReview", "updatePullRequestReviewComment",
    "deletePullRequestReviewComment", "resolveReviewThread", "unresolveReviewThread",
    "addComment", "updateIssueComment", "deleteIssueComment", "createIssue", "updateIssue",
    "closeIssue", "reopenIssue", "addLabelsToLabelable", "removeLabelsFromLabelable",
    "addAssigneesToAssignable", "removeAssigneesFromAssignable", "addReaction",
    "removeReaction"})


def _branch_of(ref: str) -> str:
    """The branch ``ref`` names: a plain name, or one under ``refs/heads/``. Any other
    spelling (``heads/x``, ``refs/x``) is kept whole, so it is never the session's branch:
    ``refs/clauderon/<name>`` would be a ref outside the branches, free to move."""
    return ref.removeprefix("refs/heads/")


def checkable_path(path: str) -> str | None:
    """The path without its query, or None when a server might read it as another path:
    dot or empty segments, percent-escapes, backslashes (what is checked is what runs)."""
    clean = path.split("?", 1)[0].rstrip("/")
    segments = clean.split("/")[1:]
    if not clean.startswith("/") or any(s in ("", ".", "..") for s in segments) \
            or "%" in clean or "\\" in clean:
        return None
    return clean


def _unchecked(method: str, path: str) -> str:
    if "?" in path:  # a server may read a write's parameters from its URL as from its body
        return (f"{method} {path.split('?', 1)[0]}: a write's parameters go in its body; "
                "one with a query string cannot be checked")
    return f"{method} {path.split('?', 1)[0]}: a path written this way cannot be checked"


def reads_body(path: str) -> bool:
    """Whether a session's GitHub write to ``path`` is judged by its body (which is then
    read ahead whole): GraphQL, creating a ref, committing a file or a merge to a branch,
    a review, a pull request's edit. A path that cannot be checked is refused unread."""
    clean = checkable_path(path)
    return clean is not None and (clean == GRAPHQL or any(p.match(clean) for p in _BODY_READ))


def api_refusal(session_name: str, method: str, path: str, body: bytes | None) -> str | None:
    """Why a GitHub API request of a session is refused, or None. Only writes are judged,
    against what a session may write (:data:`_SESSION_WRITES`, its own branch's refs and
    commits, :data:`SESSION_MUTATIONS`); the rest is the person's to do. ``body`` is None
    when it was too long to be read whole: a write judged by its body is then refused."""
    if method in READS:
        return None
    clean = checkable_path(path)
    if clean is None or "?" in path:
        return _unchecked(method, path)
    mine = f"clauderon/{session_name}"
    if body is None and (clean == GRAPHQL or any(p.match(clean) for p in _BODY_READ)):
        return (f"{method} {clean}: a body too long to be read whole cannot be checked "
                "(send a shorter one)")
    if clean == GRAPHQL:
        return _graphql_refusal(body, mine)
    if (m := _REFS.match(clean)) is not None:  # the path names the ref as "heads/<branch>"
        ref = m.group("ref")
        return None if ref == f"heads/{mine}" else (
            f"this session may move only the branch {mine} (git/refs/heads/{mine}), "
            f"not {ref.removeprefix('heads/')}")
    for pattern, key in _BODY_BRANCH:
        if pattern.match(clean):
            named = _json_field(body, key)
            if key == "head" and isinstance(named, str):
                named = named.rpartition(":")[2]  # owner:branch
            if key == "ref" and isinstance(named, str) and not named.startswith("refs/heads/"):
                named = None  # a ref created is named in full: only a branch is the session's
            if not (isinstance(named, str) and _branch_of(named) == mine):
                return (f"this session may write only to its branch {mine} (give \"{key}\": "
                        f"\"{'refs/heads/' if key == 'ref' else ''}{mine}\")")
            if key == "head" and _json_field(body, "issue", missing=_PENDING) is not _PENDING:
                return ("a pull request opened from an issue turns the person's issue into "
                        "the session's pull request; open it with a title instead")
            return None
    if _REVIEW.match(clean) and _json_field(body, "event", missing=_PENDING) not in (
            _PENDING, "COMMENT", "REQUEST_CHANGES"):
        return ("approving a pull request is the person's judgement, not a session's "
                "(a session may comment or ask for changes)")
    if _PULL_EDIT.match(clean) and _json_field(body, "base", missing=_PENDING) is not _PENDING:
        return _RETARGET
    if _SESSION_WRITES.match(clean):
        return None
    return (f"{method} {clean} is for the repository's owner to do, not a session "
            "(merge, settings, CI, releases and your account are yours; merge from "
            "Clauderon, not from the agent)")


def _graphql_refusal(body: bytes | None, mine: str) -> str | None:
    if (stored := gqlform.keys_refusal(body)) is not None:  # a document run by its hash
        return stored
    query = _json_field(body, "query")
    if not isinstance(query, str):
        return "a GraphQL request whose query cannot be read cannot be checked"
    if len(query) > GRAPHQL_LIMIT:  # scanning takes the proxy's one loop: kept short
        return (f"a GraphQL document over {GRAPHQL_LIMIT >> 10} KiB cannot be checked (put "
                "long text in the variables, which are not scanned)")
    try:
        names = graphql.mutations(query)
    except graphql.Unreadable as exc:
        return f"a GraphQL document that cannot be checked ({exc})"
    foreign = [n for n in names if n not in SESSION_MUTATIONS]
    if foreign:
        return (f"the GraphQL mutation {foreign[0]} is for the repository's owner to do, "
                "not a session (merge from Clauderon, not from the agent)")
    variables = _json_field(body, "variables")
    if variables is not None and not isinstance(variables, dict):
        # GitHub reads variables sent as JSON text as it reads an object, but the ids in
        # the text would go unasked: only an object's are judged.
        return ("GraphQL variables are judged only as a JSON object (\"variables\": "
                "{\"id\": ...}), not as JSON text or anything else; send them as an object")
    if "updatePullRequest" in names and (
            "baseRefName" in query or graphql.values_of(variables, "baseRefName")):
        return _RETARGET
    if "createPullRequest" in names:
        # The head, written in the document as a plain string or in the variables; any
        # other spelling (a variable of another name, escapes) cannot be checked.
        inline = _INLINE_HEAD.findall(query)
        heads = [*inline, *graphql.values_of(variables, "headRefName")]
        if query.count("headRefName") != len(inline) or not heads or any(
                not isinstance(h, str) or _branch_of(h.rpartition(":")[2]) != mine
                for h in heads):
            return (f"this session opens pull requests from its branch {mine} only "
                    f"(headRefName \"{mine}\", as a plain string or in the variables)")
    return None


_INLINE_HEAD = re.compile(r'headRefName\s*:\s*"([^"\\]*)"')


_OWNER_MERGE = re.compile(rf"^{_REPO}/pulls/\d+/merge$")
_OWNER_OPEN = re.compile(rf"^{_REPO}/pulls$")
_OWNER_DELETE = re.compile(rf"^{_REPO}/git/refs/heads/clauderon/[^/].*$")


def owner_api_refusal(method: str, path: str, body: bytes | None) -> str | None:
    """Why a GitHub API write of the appliance's own identity is refused, or None."""
    if method in READS:
        return None
    clean = checkable_path(path)
    if clean is None or "?" in path:
        return _unchecked(method, path)
    if method == "PUT" and _OWNER_MERGE.match(clean):
        return None
    if method == "DELETE" and _OWNER_DELETE.match(clean):
        return None
    if method == "POST" and _OWNER_OPEN.match(clean):
        head = _json_field(body, "head")
        branch = head.rpartition(":")[2] if isinstance(head, str) else ""
        if branch.startswith("clauderon/") and len(branch) > len("clauderon/"):
            return None
        return "the appliance opens pull requests from session branches (clauderon/...) only"
    return (f"{method} {clean}: the appliance's own identity only opens, merges and cleans "
            "up pull requests of session branches")


def _json_field(body: bytes | None, key: str, *, missing: object = None) -> object:
    """``key`` of the JSON object ``body``: ``missing`` when the object (or the empty body)
    has none, None when the body is not such an object, names any key twice (which servers
    read differently) or is None: too long to be read whole, so nothing in it is known."""
    if body is None:
        return None
    if not body:
        return missing
    try:
        doc = json.loads(body, object_pairs_hook=once)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested past Python's stack
        return None
    return doc.get(key, missing) if isinstance(doc, dict) else None

