"""What the proxy reads of the sessions in SQLite (``proxy/directory.py``): every session's
credentials at once, and which of some ids a session has, by the key alone."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection

from appliance.store import Store


def credentials(store: Store) -> list[sqlite3.Row]:
    """What the proxy knows a session by: its id, name, modes, token digest and its
    repositories on GitHub."""
    return store.rows("SELECT id, name, access_mode, proxy_token_hash, egress_mode, "
                      "budget_exceeded, github_repos FROM sessions")


def github_repos(column: str | None) -> frozenset[str]:
    """The ``github_repos`` column read: none when it does not read as a list of names."""
    try:
        names = json.loads(column or "[]")
    except ValueError:
        return frozenset()
    return frozenset(n for n in names if isinstance(n, str)) if isinstance(names, list) \
        else frozenset()


def known(store: Store, ids: Collection[str]) -> set[str]:
    """Which of ``ids`` a session has (read by the key alone, no row read)."""
    marks = ", ".join("?" * len(ids))
    return {str(row[0]) for row in
            store.rows(f"SELECT id FROM sessions WHERE id IN ({marks})", tuple(ids))}
