"""The store's file and tables: how it is opened, the migrations in the order they run,
and a session's row.

:data:`MIGRATIONS` is append-only: the database's ``user_version`` counts the ones that
ran, so a migration once released is never edited (a later one changes what it made).
:func:`to_row` and :func:`from_row` turn a :class:`~appliance.sessions.Session` into the
``sessions`` row and back; the row carries ``view``, the session as the API serves it, so
lists are read without building sessions. :mod:`appliance.store` runs both.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from appliance import multirepo, wire
from appliance.errors import ServiceUnavailable
from appliance.pullstate import PullStatus
from appliance.sessions import (
    AccessMode,
    Agent,
    AgentStatus,
    BackendKind,
    Desired,
    Phase,
    Rebuild,
    Session,
    SessionId,
)

#: How long a write waits for another process's (SQLite's busy timeout).
BUSY_TIMEOUT_MS = 5000


def connect(path: Path) -> sqlite3.Connection:
    """The database at ``path``, opened as every service opens it: private, in WAL mode,
    waiting up to :data:`BUSY_TIMEOUT_MS` for another process's write."""
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise ServiceUnavailable(f"cannot open the database {path}: {exc}") from exc
    # Before the first write: SQLite gives the -wal and -shm files the database's mode.
    path.chmod(0o600)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _write_ahead(conn)
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _write_ahead(conn: sqlite3.Connection) -> None:
    """Switch the database to WAL. The switch needs the database alone, and when services
    open a new one at the same moment SQLite tells the losers "database is locked" at once,
    without waiting on the busy timeout: they try again until it has passed."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise ServiceUnavailable(
                    f"the database is busy ({exc}); another process holds it: "
                    "try again") from exc
            time.sleep(0.01)
            continue
        if mode == "wal":
            return
        raise ServiceUnavailable(f"the database could not be switched to WAL (it is {mode})")


MIGRATIONS: tuple[str, ...] = (
    # 1: sessions, events, recent repos
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        repo_path TEXT NOT NULL,
        subdirectory TEXT NOT NULL DEFAULT '',
        worktree_path TEXT NOT NULL,
        branch TEXT NOT NULL,
        base_ref TEXT NOT NULL,
        agent TEXT NOT NULL,
        model TEXT,
        backend TEXT NOT NULL,
        image TEXT NOT NULL,
        cpu REAL,
        memory TEXT,
        access_mode TEXT NOT NULL,
        initial_prompt TEXT NOT NULL DEFAULT '',
        skip_permissions INTEGER NOT NULL DEFAULT 0,
        phase TEXT NOT NULL,
        desired TEXT NOT NULL,
        agent_status TEXT NOT NULL,
        status_reason TEXT,
        backend_id TEXT,
        proxy_token_hash TEXT NOT NULL,
        hook_token_hash TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        retry_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        archived_at TEXT
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        session_id TEXT,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX events_session ON events (session_id, id);
    CREATE TABLE recent_repos (
        repo_path TEXT NOT NULL,
        subdirectory TEXT NOT NULL DEFAULT '',
        last_used TEXT NOT NULL,
        PRIMARY KEY (repo_path, subdirectory)
    );
    """,
    # 2: each session's public JSON, kept beside the row so listing is one read, no parsing
    """
    ALTER TABLE sessions ADD COLUMN view TEXT NOT NULL DEFAULT '{}'
    """,
    # 3: sign-in (appliance/authstore.py): links, browser sessions, passkeys, API tokens and
    # pending WebAuthn ceremonies. Secrets are stored as SHA-256 digests only.
    """
    CREATE TABLE auth_links (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT
    );
    CREATE TABLE auth_sessions (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL UNIQUE,
        method TEXT NOT NULL,
        passkey_id TEXT,
        label TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL
    );
    CREATE TABLE auth_passkeys (
        id TEXT PRIMARY KEY,
        credential_id TEXT NOT NULL UNIQUE,
        public_key BLOB NOT NULL,
        sign_count INTEGER NOT NULL,
        rp_id TEXT NOT NULL,
        name TEXT NOT NULL,
        backed_up INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        last_used_at TEXT
    );
    CREATE TABLE auth_tokens (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL UNIQUE,
        scope TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_used_at TEXT
    );
    CREATE TABLE auth_challenges (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        challenge BLOB NOT NULL,
        rp_id TEXT NOT NULL,
        origin TEXT NOT NULL,
        session_id TEXT,
        expires_at TEXT NOT NULL
    )
    """,
    # 4: facts about the stored data itself (the version of the stored session views)
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
    """,
    # 5: the proxy as the control point (appliance/controlstore.py): token usage per session,
    # model and day; budgets; egress lists and held requests; the session's control fields.
    """
    ALTER TABLE sessions ADD COLUMN egress_mode TEXT;
    ALTER TABLE sessions ADD COLUMN alert TEXT;
    ALTER TABLE sessions ADD COLUMN budget_exceeded TEXT;
    CREATE TABLE usage (
        session_id TEXT NOT NULL,
        day TEXT NOT NULL,
        model TEXT NOT NULL,
        session_name TEXT NOT NULL DEFAULT '',
        requests INTEGER NOT NULL DEFAULT 0,
        unmetered INTEGER NOT NULL DEFAULT 0,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cache_read_tokens INTEGER NOT NULL DEFAULT 0,
        cache_write_tokens INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (session_id, day, model)
    );
    CREATE INDEX usage_day ON usage (day);
    CREATE TABLE budgets (
        scope TEXT PRIMARY KEY,
        tokens INTEGER,
        cost REAL,
        tokens_per_day INTEGER,
        cost_per_day REAL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE egress_hosts (
        scope TEXT NOT NULL,
        host TEXT NOT NULL,
        verdict TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (scope, host)
    );
    CREATE TABLE egress_asks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL,
        host TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        decision TEXT,
        decided_at TEXT
    );
    CREATE INDEX egress_asks_session ON egress_asks (session_id, host, id)
    """,
    # 6: operations. Why a session's model requests fail, as the proxy saw them
    # (appliance/modelhealth.py); every service's metrics samples (appliance/metrics), which
    # the API's /metrics serves.
    """
    ALTER TABLE sessions ADD COLUMN model_error TEXT;
    CREATE TABLE metrics (
        service TEXT NOT NULL,
        name TEXT NOT NULL,
        labels TEXT NOT NULL,
        family TEXT NOT NULL,
        kind TEXT NOT NULL,
        help TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (service, name, labels)
    )
    """,
    # 7: the session list's order from an index: sorting every row (each with its view)
    # was most of a list's time at 1,000 sessions
    """
    CREATE INDEX sessions_created ON sessions (created_at)
    """,
    # 8: the daily workflow: plan and print modes, custom agents, titles
    """
    ALTER TABLE sessions ADD COLUMN plan_mode INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN print_mode INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN custom_agent TEXT;
    ALTER TABLE sessions ADD COLUMN title TEXT NOT NULL DEFAULT '';
    ALTER TABLE sessions ADD COLUMN description TEXT NOT NULL DEFAULT ''
    """,
    # 9: push, pull request, CI and merge: the branch on its remote (appliance/pullstate.py,
    # JSON) and a recreate a person asked for (appliance/sessions.py Rebuild)
    """
    ALTER TABLE sessions ADD COLUMN pull TEXT;
    ALTER TABLE sessions ADD COLUMN rebuild TEXT
    """,
    # 10: multi-repo sessions: each further repository (appliance/multirepo.py) as JSON
    """
    ALTER TABLE sessions ADD COLUMN extra_repos TEXT NOT NULL DEFAULT '[]'
    """,
    # 11: the GitHub issues and comments a session created (appliance/madestore.py), which
    # it may change: written by the proxy from GitHub's answers, trimmed with the session
    """
    CREATE TABLE github_made (
        session_id TEXT NOT NULL,
        repo TEXT NOT NULL,
        kind TEXT NOT NULL,
        ident TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (session_id, repo, kind, ident)
    )
    """,
    # 12: the session's repositories on GitHub (its repositories' GitHub remotes when it
    # was made), the only ones its writes there reach (proxy/ownrepos.py), as JSON; NULL
    # for a session made before, until the reconciler reads its remotes at its start
    # (admission.fill_github_repos)
    """
    ALTER TABLE sessions ADD COLUMN github_repos TEXT
    """,
    # 13: what the person sent each session's agent through the API (appliance/sentstore.py):
    # a transcript's user message is marked the person's only when it matches one
    """
    CREATE TABLE sent_messages (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        floor INTEGER NOT NULL,
        claimed INTEGER
    );
    CREATE INDEX sent_messages_session ON sent_messages (session_id, id)
    """,
)

_ENUMS: dict[str, type] = {
    "agent": Agent,
    "backend": BackendKind,
    "access_mode": AccessMode,
    "phase": Phase,
    "desired": Desired,
    "agent_status": AgentStatus,
    "rebuild": Rebuild,
}
PHASES = {str(p.value): p for p in Phase}
STATUSES = {str(s.value): s for s in AgentStatus}
_DATES = {"created_at", "updated_at", "archived_at", "retry_at"}
_BOOLS = {"skip_permissions", "plan_mode", "print_mode"}
_COLUMNS = tuple(f.name for f in fields(Session))


def to_row(session: Session) -> dict[str, Any]:
    row: dict[str, Any] = {"view": json.dumps(wire.session_json(session))}
    for name in _COLUMNS:
        value = getattr(session, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, PullStatus):
            value = json.dumps(value.to_json())
        elif isinstance(value, bool):
            value = int(value)
        elif name == "extra_repos":
            value = json.dumps(multirepo.to_json(value))
        elif name == "github_repos":
            value = json.dumps(list(value))
        row[name] = value
    return row


def from_row(row: sqlite3.Row) -> Session:
    data: dict[str, Any] = {}
    for name in _COLUMNS:
        value = row[name]
        if name in _ENUMS and value is not None:
            value = _ENUMS[name](value)
        elif name in _DATES and value is not None:
            value = datetime.fromisoformat(value)
        elif name in _BOOLS:
            value = bool(value)
        elif name == "pull" and value is not None:
            value = PullStatus.from_json(json.loads(value))
        elif name == "extra_repos":
            value = multirepo.from_json(json.loads(value or "[]"))
        elif name == "github_repos":
            value = tuple(json.loads(value or "[]"))
        data[name] = value
    data["id"] = SessionId(data["id"])
    return Session(**data)
