"""The SQLite store: sessions, the events journal, recent repositories.

The database is the only channel between the daemons (DESIGN.md). Every write that changes
a session appends a row to ``events`` in the same transaction, so the journal and the state
can never disagree; readers tail ``events`` by its monotonic id. WAL mode lets the API read
while the reconciler writes; a busy timeout absorbs short write contention.

The tables and a session's row are in :mod:`appliance.store_schema`. This module is
synchronous and small on purpose: services call it through :class:`AsyncStore`, which
runs each call on a worker thread so the trio loop never blocks on the disk.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

import trio

from appliance import wire
from appliance.errors import Conflict, NotFound, ServiceUnavailable
from appliance.limits import SessionLimits, check_room, occupancy
from appliance.sessions import Desired, Phase, Session, check_transition, utcnow
from appliance.store_schema import (
    MIGRATIONS,
    PHASES,
    STATUSES,
    connect,
    from_row,
    to_row,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    id: int
    ts: str
    session_id: str | None
    kind: str
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "ts": self.ts, "session_id": self.session_id, "kind": self.kind,
                "payload": self.payload}


class Store:
    """One SQLite connection; safe to share between threads (calls are serialized)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        #: The last list read, under the journal's last id then: (filter, id, views).
        self._listed: tuple[object, int, list[str]] | None = None

    @classmethod
    def open(cls, path: Path) -> Store:
        store = cls(connect(path))
        store._migrate()
        store._refresh_views()
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- plumbing -------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``), also of modules with tables here."""
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
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:  # SQLite may have rolled back already
                    self._conn.execute("ROLLBACK")
                if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                    raise ServiceUnavailable(
                        "the appliance's disk is full: its database cannot be written, and "
                        "nothing was changed. Free space on that disk (`clauderon status` "
                        "shows how much is free; the sessions' workspaces are under its "
                        "worktrees folder), then try again") from exc
                raise

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, held for a read."""
        with self._lock:
            yield self._conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Every row of one read query."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _migrate(self) -> None:
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for index, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {index}")

    def _refresh_views(self) -> None:
        """Re-render every stored session view when the wire shape changed since it was
        written (a new derived field): listing never parses rows, so it must be current."""
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'session_view'").fetchone()
            if row is not None and row[0] == str(wire.SESSION_VERSION):
                return
            for found in conn.execute("SELECT * FROM sessions").fetchall():
                conn.execute("UPDATE sessions SET view = ? WHERE id = ?",
                             (json.dumps(wire.session_json(from_row(found))), found["id"]))
            conn.execute("INSERT INTO meta (key, value) VALUES ('session_view', ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                         (str(wire.SESSION_VERSION),))

    def schema_version(self) -> int:
        return int(self.rows("PRAGMA user_version")[0][0])

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap "anything new?" probe."""
        return int(self.rows("PRAGMA data_version")[0][0])

    def changes(self) -> tuple[int, int]:
        """Changes whenever anyone commits, this connection too (:meth:`data_version` and
        the connection's own count of changes)."""
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0]), \
                self._conn.total_changes

    def journal(self, conn: sqlite3.Connection, session_id: str | None, kind: str,
                payload: Mapping[str, Any]) -> int:
        """An event inside a transaction the caller holds (:meth:`transaction`)."""
        cur = conn.execute(
            "INSERT INTO events (ts, session_id, kind, payload) VALUES (?, ?, ?, ?)",
            (utcnow().isoformat(), session_id, kind, json.dumps(payload)),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

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
        row = to_row(session)
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.transaction() as conn:
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
            self.journal(conn, session.id, "created", {"session": wire.session_json(session)})
        return session

    def get_session(self, session_id: str) -> Session | None:
        return self._one("id", session_id)

    def get_by_name(self, name: str) -> Session | None:
        return self._one("name", name)

    def _one(self, column: str, value: str) -> Session | None:
        # A column of ours, not input.
        found = self.rows(f"SELECT * FROM sessions WHERE {column} = ?", (value,))
        return from_row(found[0]) if found else None

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
            last = self.last_event_id()
            if self._listed is not None and self._listed[:2] == (chosen, last):
                return list(self._listed[2])
            rows = self._conn.execute(
                "SELECT view, phase, agent_status, model_error FROM sessions "
                "ORDER BY created_at").fetchall()
            # A dict look-up per row, not an Enum call: a list reads every row.
            views = [r[0] for r in rows if chosen is None
                     or wire.shown_under(chosen, PHASES[r[1]], STATUSES[r[2]], r[3])]
            self._listed = (chosen, last, views)
        return list(views)

    def list_sessions(self) -> list[Session]:
        return [from_row(r) for r in self.rows("SELECT * FROM sessions ORDER BY created_at")]

    def update_session(self, session_id: str, **changes: Any) -> Session:
        """Change fields of one session atomically (:meth:`update_in`, in a transaction of
        its own)."""
        with self.transaction() as conn:
            return self.update_in(conn, session_id, **changes)

    def update_in(self, conn: sqlite3.Connection, session_id: str, *, event: str = "updated",
                  detail: Mapping[str, Any] | None = None,
                  expect: Callable[[Session], None] | None = None,
                  limits: SessionLimits | None = None, **changes: Any) -> Session:
        """Change fields of one session, checking the phase transition, inside a
        transaction a neighbour module holds (:meth:`transaction`), so its other writes
        commit with it.

        ``expect`` runs inside the transaction on the current row and may raise to refuse
        the change (for example "only a failed session can be retried"). ``limits``: the
        change brings the session (back) to life; refused (429) when there is no room.
        """
        row = conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise NotFound(f"no session with id {session_id!r}")
        current = from_row(row)
        if expect is not None:
            expect(current)
        self._check_room(conn, limits, other_than=session_id,
                         creating=changes.get("phase") is Phase.CREATING)
        if "phase" in changes:
            check_transition(current.phase, changes["phase"])
        updated = replace(current, updated_at=utcnow(), **changes)
        new_row = to_row(updated)
        sets = ", ".join(f"{k} = ?" for k in new_row if k != "id")  # columns, not input
        values = [v for k, v in new_row.items() if k != "id"]
        conn.execute(f"UPDATE sessions SET {sets} WHERE id = ?", (*values, session_id))
        payload: dict[str, Any] = {"session": wire.event_session_json(updated)}
        if detail:
            payload.update(detail)
        self.journal(conn, session_id, event, payload)
        return updated

    def delete_session(self, session_id: str) -> None:
        with self.transaction() as conn:
            row = conn.execute("SELECT name FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                return
            # What it made on GitHub, what it was sent, its asks and its egress list go with it.
            for table, key in (("sessions", "id"), ("github_made", "session_id"),
                               ("sent_messages", "session_id"),
                               ("egress_asks", "session_id"), ("egress_hosts", "scope")):
                conn.execute(f"DELETE FROM {table} WHERE {key} = ?", (session_id,))
            self.journal(conn, session_id, "deleted", {"id": session_id, "name": row["name"]})

    # --- events ---------------------------------------------------------------------
    def append_event(self, session_id: str | None, kind: str, payload: Mapping[str, Any]
                     ) -> int:
        with self.transaction() as conn:
            return self.journal(conn, session_id, kind, payload)

    def _events(self, sql: str, params: tuple[Any, ...]) -> list[Event]:
        return [Event(id=r["id"], ts=r["ts"], session_id=r["session_id"], kind=r["kind"],
                      payload=json.loads(r["payload"])) for r in self.rows(sql, params)]

    def events_after(self, after: int, limit: int = 500) -> list[Event]:
        return self._events("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?",
                            (after, limit))

    def session_events(self, session_id: str, limit: int = 200) -> list[Event]:
        """The session's ``limit`` newest events, oldest first."""
        return self.session_events_before(session_id, None, limit)[::-1]

    def session_events_before(self, session_id: str, before: int | None,
                              limit: int) -> list[Event]:
        """The session's ``limit`` newest events with an id below ``before`` (newest first)."""
        return self._events(
            "SELECT * FROM events WHERE session_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (session_id, before if before is not None else 2**62, limit))

    def last_session_event(self, session_id: str, kind: str) -> Event | None:
        """The session's newest event of ``kind``, or None."""
        found = self._events("SELECT * FROM events WHERE session_id = ? AND kind = ? "
                             "ORDER BY id DESC LIMIT 1", (session_id, kind))
        return found[0] if found else None

    def last_event_id(self) -> int:
        return int(self.rows("SELECT MAX(id) FROM events")[0][0] or 0)

    def prune_events(self, before: datetime, *, batch: int = 5000) -> int:
        """Remove the journal's events older than ``before`` (how many went), in
        transactions of at most ``batch`` rows, so no writer waits long. The newest event
        always stays: its id is where every reader resumes (ids are never used again).
        Ids grow with time, so the old events are the first rows, read in id order."""
        cutoff = before.isoformat()
        gone = 0
        while True:
            with self.transaction() as conn:
                rows = conn.execute("SELECT id, ts FROM events ORDER BY id LIMIT ?",
                                    (batch,)).fetchall()
                newest = conn.execute("SELECT MAX(id) FROM events").fetchone()[0]
                old = [r["id"] for r in rows if r["ts"] < cutoff and r["id"] != newest]
                if old:
                    conn.execute("DELETE FROM events WHERE id <= ? AND ts < ? AND id != ?",
                                 (old[-1], cutoff, newest))
            gone += len(old)
            if len(old) < len(rows) or len(rows) < batch:
                return gone

    def trim_hooks(self, session_id: str | None, keep: int, *, batch: int = 5000) -> int:
        """Remove the hook events of ``session_id`` (None: of every session that has more)
        older than its ``keep`` newest (how many went), in transactions of at most
        ``batch`` rows; its other events stay (they say what happened to it), and so does
        the journal's newest. An agent may post its hook some 20 times a second for as long
        as it runs: this bounds what that costs the journal."""
        if keep <= 0:
            return 0
        sessions = [session_id] if session_id is not None else [
            r["session_id"] for r in self.rows(
                "SELECT session_id FROM events WHERE kind = 'hook' AND session_id IS NOT NULL "
                "GROUP BY session_id HAVING COUNT(*) > ?", (keep,))]
        gone = 0
        for sid in sessions:
            while True:
                with self.transaction() as conn:
                    cut = conn.execute(
                        "SELECT id FROM events WHERE session_id = ? AND kind = 'hook' "
                        "ORDER BY id DESC LIMIT 1 OFFSET ?", (sid, keep)).fetchone()
                    if cut is None:
                        break
                    newest = conn.execute("SELECT MAX(id) FROM events").fetchone()[0]
                    done = conn.execute(
                        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE "
                        "session_id = ? AND kind = 'hook' AND id <= ? AND id != ? "
                        "ORDER BY id LIMIT ?)", (sid, cut[0], newest, batch)).rowcount
                gone += done
                if done < batch:
                    break
        return gone

    # --- recent repositories --------------------------------------------------------
    def recent_repos(self, limit: int = 20) -> list[dict[str, str]]:
        return [dict(r) for r in self.rows(
            "SELECT repo_path, subdirectory, last_used FROM recent_repos "
            "ORDER BY last_used DESC LIMIT ?", (limit,))]


P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore:
    """Runs :class:`Store` calls on a worker thread, one at a time."""

    def __init__(self, store: Store) -> None:
        self.sync = store
        self._limiter = trio.CapacityLimiter(1)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await trio.to_thread.run_sync(lambda: fn(*args, **kwargs),
                                             limiter=self._limiter)
