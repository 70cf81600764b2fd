"""What a session may write on the git host beside a push (pure).

The proxy puts the person's credential into every request to ``github.com`` too, not only
into pushes (``gitguard.py`` judges those) and fetches: Git LFS's API lives there, under
``<repo>.git/info/lfs``. Its objects are content-addressed and move no ref, and its look at
the locks before a push is a read sent as a POST; both pass. Its locks are another matter:
every one is the person's (the credential's user), so a session's unlock frees the person's
lock for anyone, ``force`` or not, and a lock it takes holds the person's own push of that
file. Those, and every other write there, are the person's to do.
"""

from __future__ import annotations

import re

from appliance.methods import READS
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
