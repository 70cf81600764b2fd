"""What a session may write on the git host beside a push (pure).

The proxy puts the person's credential into every request to ``github.com`` too, not only
into pushes (``gitguard.py`` judges those) and fetches: Git LFS's API lives there, under
``<repo>.git/info/lfs``. Its objects are content-addressed and move no ref, and its look at
the locks before a push is a read sent as a POST; both pass. Its locks are another matter:
every one is the person's (the credential's user), so a session's unlock frees the person's
lock for anyone, ``force`` or not, and a lock it takes holds the person's own push of that
file. Those, and every other write there, are the person's to do. A batch that uploads (its
answer authorises storing objects in the repository) goes only to one of the session's own
repositories (:func:`batch_refusal`); a download is a read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection

from appliance.methods import READS
from appliance.onekey import once
from proxy import ownrepos
from proxy.gitguard import checkable_path

#: The git host: :func:`refusal` judges its writes that are no push.
GIT_HOST = "github.com"
#: A fetch's negotiation, Git LFS's object transfers and its look at the locks.
_WRITES = re.compile(
    r"^/[^/]+/[^/]+/(git-upload-pack|info/lfs/objects/batch|info/lfs/locks/verify)$")


def refusal(method: str, path: str) -> str | None:
    """Why a write to the git host that is not a push is refused, or None."""
    if method in READS:
        return None
    clean = checkable_path(path)
    if clean is None or "?" in path:
        return (f"{method} {path.split('?', 1)[0]}: a path written this way, or with a "
                "query string, cannot be checked")
    if method == "POST" and _WRITES.match(clean):
        return None
    return (f"{method} {clean} is for the repository's owner to do, not a session (Git "
            "LFS's locks are yours: lock and unlock files yourself)")


#: Git LFS's batch: its body says whether it uploads or downloads.
_BATCH = re.compile(r"^/(?P<owner>[^/]+)/(?P<name>[^/]+?)(?:\.git)?/info/lfs/objects/batch$")


def reads_body(method: str, path: str) -> bool:
    """Whether a session's write to the git host is judged by its body too (a batch)."""
    return method == "POST" and _BATCH.match(checkable_path(path) or "") is not None


def batch_refusal(path: str, body: bytes | None, own: Collection[str],
                  session_name: str) -> str | None:
    """Why a session's Git LFS batch (``body``: all of it, None when too long to be read)
    is refused: an upload lands only in one of its own repositories; a download is free."""
    m = _BATCH.match(checkable_path(path) or "")
    if m is None:
        return None
    try:
        doc = json.loads(body or b"", object_pairs_hook=once)
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict):
        return ("a Git LFS batch whose body does not read as one JSON object (each key once "
                "in any case, read whole) cannot be checked")
    if doc.get("operation") == "download":
        return None
    return ownrepos.foreign(f"{m.group('owner')}/{m.group('name')}", own, session_name)
