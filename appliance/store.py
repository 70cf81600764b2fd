"""The SQLite store: sessions, the events journal, recent repositories.

The database is the only channel between the daemons (DESIGN.md). Every write that changes
a session appends a row to ``events`` in the same transaction, so the journal and the state
can never disagree; readers tail ``events`` by its monotonic id. WAL mode lets the API read
while the reconciler writes; a busy timeout absorbs short write contention.

This module is synchronous and small on purpose: services call it through
:class:`AsyncStore`, which runs each call on a worker thread so the trio loop never blocks
on the disk.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

import trio

from appliance import multirepo, wire
from appliance.errors import Conflict, NotFound, ServiceUnavailable
from appliance.limits import SessionLimits, check_room, occupancy
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
    check_transition,
    utcnow,
)

BUSY_TIMEOUT_MS = 5000

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
_PHASES = {str(p.value): p for p in Phase}
_STATUSES = {str(s.value): s for s in AgentStatus}
_DATES = {"created_at", "updated_at", "archived_at", "retry_at"}
_BOOLS = {"skip_permissions", "plan_mode", "print_mode"}
_COLUMNS = tuple(f.name for f in fields(Session))


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    id: int
    ts: str
    session_id: str | None
    kind: str
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "session_id": self.session_id,
            "kind": self.kind,
            "payload": self.payload,
        }


def _to_row(session: Session) -> dict[str, Any]:
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
        row[name] = value
    return row


def _from_row(row: sqlite3.Row) -> Session:
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
        data[name] = value
    data["id"] = SessionId(data["id"])
    return Session(**data)


class Store:
    """One SQLite connection; safe to share between threads (calls are serialized)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        #: The last list read, under the journal's last id then: (filter, id, views).
        self._listed: tuple[object, int, list[str]] | None = None

    @classmethod
    def open(cls, path: Path) -> Store:
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
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        store = cls(conn)
        store._migrate()
        store._refresh_views()
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- plumbing -------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``) for modules that keep their own
        tables here (:mod:`appliance.authstore`)."""
        with self._tx() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, held for a read."""
        with self._lock:
            yield self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                # Another process held the write lock past the busy timeout.
                raise ServiceUnavailable(
                    f"the database is busy ({exc}); another process holds it: try again"
                ) from exc
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for index, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {index}")

    def _refresh_views(self) -> None:
        """Re-render every stored session view when the wire shape changed since it was
        written (a new derived field): listing never parses rows, so it must be current."""
        with self._tx() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'session_view'").fetchone()
            if row is not None and row[0] == str(wire.SESSION_VERSION):
                return
            for found in conn.execute("SELECT * FROM sessions").fetchall():
                conn.execute("UPDATE sessions SET view = ? WHERE id = ?",
                             (json.dumps(wire.session_json(_from_row(found))), found["id"]))
            conn.execute("INSERT INTO meta (key, value) VALUES ('session_view', ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                         (str(wire.SESSION_VERSION),))

    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap "anything new?" probe."""
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _event(
        self, conn: sqlite3.Connection, session_id: str | None, kind: str,
        payload: Mapping[str, Any],
    ) -> int:
        cur = conn.execute(
            "INSERT INTO events (ts, session_id, kind, payload) VALUES (?, ?, ?, ?)",
            (utcnow().isoformat(), session_id, kind, json.dumps(payload)),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def journal(self, conn: sqlite3.Connection, session_id: str | None, kind: str,
                payload: Mapping[str, Any]) -> int:
        """An event inside a transaction a neighbour module holds (:meth:`transaction`)."""
        return self._event(conn, session_id, kind, payload)

    # --- sessions -------------------------------------------------------------------
    @staticmethod
    def _check_room(conn: sqlite3.Connection, limits: SessionLimits | None, *, other_than: str,
                    creating: bool) -> None:
        if limits is None:
            return
        rows = conn.execute("SELECT phase, desired FROM sessions WHERE id != ?",
                            (other_than,)).fetchall()
        check_room(occupancy((Phase(r["phase"]), Desired(r["desired"])) for r in rows), limits,
                   creating=creating)

    def insert_session(self, session: Session, *, limits: SessionLimits | None = None
                       ) -> Session:
        """Insert a new session; with ``limits``, refused (429) when there is no room."""
        row = _to_row(session)
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._tx() as conn:
            self._check_room(conn, limits, other_than=session.id, creating=True)
            try:
                conn.execute(f"INSERT INTO sessions ({cols}) VALUES ({marks})", tuple(row.values()))
            except sqlite3.IntegrityError as exc:
                raise Conflict(
                    f"a session named {session.name!r} already exists; pick another name "
                    "or delete it first", field="name",
                ) from exc
            conn.execute(
                "INSERT INTO recent_repos (repo_path, subdirectory, last_used) VALUES (?, ?, ?) "
                "ON CONFLICT (repo_path, subdirectory) "
                "DO UPDATE SET last_used = excluded.last_used",
                (session.repo_path, session.subdirectory, row["created_at"]),
            )
            self._event(conn, session.id, "created", {"session": wire.session_json(session)})
        return session

    def get_session(self, session_id: str) -> Session | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        return _from_row(row) if row else None

    def get_by_name(self, name: str) -> Session | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM sessions WHERE name = ?", (name,)
            ).fetchone()
        return _from_row(row) if row else None

    def resolve(self, ref: str) -> Session:
        """A session by id or by name, or :class:`NotFound` saying which."""
        session = self.get_session(ref) or self.get_by_name(ref)
        if session is None:
            raise NotFound(f"no session named or with id {ref!r} (see `clauderon list --all`)")
        return session

    def list_views(self, chosen: wire.ListFilter | Literal["unarchived"] | None = None
                   ) -> list[str]:
        """Sessions' public JSON, oldest first; with ``chosen``, those its filter shows
        (``unarchived``: all but the archived, what a plain list shows)."""
        with self._lock:
            # Every write to a session appends to the journal in its own transaction, and
            # the journal's ids only grow: while its last id stands, the rows do too. The
            # id is read first, so the rows read after it are never older than their key.
            last = self._conn.execute("SELECT MAX(id) FROM events").fetchone()[0] or 0
            if self._listed is not None and self._listed[:2] == (chosen, last):
                return list(self._listed[2])
            rows = self._conn.execute(
                "SELECT view, phase, agent_status, model_error FROM sessions "
                "ORDER BY created_at").fetchall()
            # A dict look-up per row, not an Enum call: a list reads every row.
            views = [r[0] for r in rows if chosen is None
                     or wire.shown_under(chosen, _PHASES[r[1]], _STATUSES[r[2]], r[3])]
            self._listed = (chosen, last, views)
        return list(views)

    def list_sessions(self) -> list[Session]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM sessions ORDER BY created_at").fetchall()
        return [_from_row(r) for r in rows]

    def update_session(
        self,
        session_id: str,
        *,
        event: str = "updated",
        detail: Mapping[str, Any] | None = None,
        expect: Callable[[Session], None] | None = None,
        limits: SessionLimits | None = None,
        **changes: Any,
    ) -> Session:
        """Change fields of one session atomically, checking the phase transition.

        ``expect`` runs inside the transaction on the current row and may raise to refuse
        the change (for example "only a failed session can be retried"). ``limits``: the
        change brings the session (back) to life; refused (429) when there is no room.
        """
        with self._tx() as conn:
            return self.update_in(conn, session_id, event=event, detail=detail,
                                  expect=expect, limits=limits, **changes)

    def update_in(
        self,
        conn: sqlite3.Connection,
        session_id: str,
        *,
        event: str = "updated",
        detail: Mapping[str, Any] | None = None,
        expect: Callable[[Session], None] | None = None,
        limits: SessionLimits | None = None,
        **changes: Any,
    ) -> Session:
        """:meth:`update_session` inside a transaction a neighbour module holds
        (:meth:`transaction`), so its other writes commit with it."""
        row = conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise NotFound(f"no session with id {session_id!r}")
        current = _from_row(row)
        if expect is not None:
            expect(current)
        self._check_room(conn, limits, other_than=session_id,
                         creating=changes.get("phase") is Phase.CREATING)
        if "phase" in changes:
            check_transition(current.phase, changes["phase"])
        updated = replace(current, updated_at=utcnow(), **changes)
        new_row = _to_row(updated)
        sets = ", ".join(f"{k} = ?" for k in new_row if k != "id")  # columns, not input
        values = [v for k, v in new_row.items() if k != "id"]
        conn.execute(f"UPDATE sessions SET {sets} WHERE id = ?", (*values, session_id))
        payload: dict[str, Any] = {"session": wire.session_json(updated)}
        if detail:
            payload.update(detail)
        self._event(conn, session_id, event, payload)
        return updated

    def delete_session(self, session_id: str) -> None:
        with self._tx() as conn:
            row = conn.execute("SELECT name FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                return
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            self._event(conn, session_id, "deleted", {"id": session_id, "name": row["name"]})

    # --- events ---------------------------------------------------------------------
    def append_event(
        self, session_id: str | None, kind: str, payload: Mapping[str, Any]
    ) -> int:
        with self._tx() as conn:
            return self._event(conn, session_id, kind, payload)

    def events_after(self, after: int, limit: int = 500) -> list[Event]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            ).fetchall()
        return [
            Event(id=r["id"], ts=r["ts"], session_id=r["session_id"], kind=r["kind"],
                  payload=json.loads(r["payload"]))
            for r in rows
        ]

    def session_events(self, session_id: str, limit: int = 200) -> list[Event]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM events WHERE session_id = ? ORDER BY id DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
        return [
            Event(id=r["id"], ts=r["ts"], session_id=r["session_id"], kind=r["kind"],
                  payload=json.loads(r["payload"]))
            for r in reversed(rows)
        ]

    def session_events_before(self, session_id: str, before: int | None,
                              limit: int) -> list[Event]:
        """The session's ``limit`` newest events with an id below ``before`` (newest first)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM events WHERE session_id = ? AND id < ? ORDER BY id DESC "
                "LIMIT ?", (session_id, before if before is not None else 2**62, limit),
            ).fetchall()
        return [
            Event(id=r["id"], ts=r["ts"], session_id=r["session_id"], kind=r["kind"],
                  payload=json.loads(r["payload"]))
            for r in rows
        ]

    def last_event_id(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT MAX(id) FROM events").fetchone()
        return int(row[0] or 0)

    # --- recent repositories --------------------------------------------------------
    def recent_repos(self, limit: int = 20) -> list[dict[str, str]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT repo_path, subdirectory, last_used FROM recent_repos "
                "ORDER BY last_used DESC LIMIT ?", (limit,),
            ).fetchall()
        return [dict(r) for r in rows]


P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore:
    """Runs :class:`Store` calls on a worker thread, one at a time."""

    def __init__(self, store: Store) -> None:
        self.sync = store
        self._limiter = trio.CapacityLimiter(1)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await trio.to_thread.run_sync(
            lambda: fn(*args, **kwargs), limiter=self._limiter
        )
