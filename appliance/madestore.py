"""What a session created on GitHub, in SQLite: ``github_made`` (migration 11).

The proxy writes a row when GitHub answers a session's create (``proxy/whose.py`` reads
the answer): the repository (lower case, "" for a node id), the kind (``issue``,
``issue_comment``, ``review_comment``, ``node``) and its number or id. A change to one of
them is the session's own; the rows go with the session (``Store.delete_session``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from appliance.store import Store

#: One row: repository, kind, number or id.
Made = tuple[str, str, str]


def record(store: Store, session_id: str, made: Iterable[Made]) -> None:
    now = datetime.now(UTC).isoformat()
    with store.transaction() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO github_made (session_id, repo, kind, ident, created_at) "
            "VALUES (?, ?, ?, ?, ?)", [(session_id, *m, now) for m in made])


def made_of(store: Store, session_id: str, named: Iterable[Made]) -> frozenset[Made]:
    """Which of ``named`` the session made."""
    found: set[Made] = set()
    for repo, kind, ident in named:
        if store.rows("SELECT 1 FROM github_made WHERE session_id = ? AND repo = ? AND "
                      "kind = ? AND ident = ?", (session_id, repo, kind, ident)):
            found.add((repo, kind, ident))
    return frozenset(found)
