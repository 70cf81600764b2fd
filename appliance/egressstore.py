"""Egress lists and held requests in SQLite: ``egress_hosts`` and ``egress_asks`` (migration 5).

The lists: one row per scope (a session id, or ``*`` for every session) and host, allowed or
denied, with where it came from (``user``, ``learned``, ``asked``). The proxy reads them
about once a second, and adds ``learned`` rows in ``learn`` mode.

A held request (``ask`` mode) is one ``egress_asks`` row: the proxy opens it (or joins one
still open for the same session and host, so ten requests ask once), the API writes the
person's decision into it, and the proxy, polling the row, lets the request go or refuses
it. A decision also writes a list entry, so the next request to that host is not held
again. An ask that nobody decided expires (the proxy refuses the request). Every step is
journaled (``egress_ask``, ``egress_decided``, ``egress_learned``, ``egress_list``) so the
UIs show pending asks live.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from appliance.egress import HostEntry, Verdict, asks_to_forget
from appliance.errors import Conflict, NotFound
from appliance.store import Store

#: Requests of one session waiting for a person at once (each for another host).
MAX_OPEN_ASKS = 20
#: Closed asks (decided or expired) one session keeps, the newest: a request that shared an
#: ask reads its decision a moment after; the older ones are of no use to anyone.
MAX_CLOSED_ASKS = 40
#: Hosts one session learns at most in ``learn`` mode.
MAX_LEARNED = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Listed:
    scope: str
    host: str
    verdict: Verdict
    source: str
    created_at: str

    @property
    def entry(self) -> HostEntry:
        return HostEntry(host=self.host, verdict=self.verdict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ask:
    id: int
    session_id: str
    host: str
    created_at: str
    expires_at: str
    decision: str | None
    decided_at: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def listed(store: Store, scope: str | None = None) -> list[Listed]:
    """The list entries of one scope, or of every scope."""
    sql = "SELECT scope, host, verdict, source, created_at FROM egress_hosts"
    args: tuple[str, ...] = ()
    if scope is not None:
        sql, args = sql + " WHERE scope = ?", (scope,)
    return [Listed(scope=r[0], host=r[1], verdict=Verdict(r[2]), source=r[3], created_at=r[4])
            for r in store.rows(sql + " ORDER BY scope, host", args)]


def _put(conn: sqlite3.Connection, scope: str, host: str, verdict: Verdict, *, source: str,
         now: str) -> None:
    conn.execute(
        "INSERT INTO egress_hosts (scope, host, verdict, source, created_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, host) DO UPDATE SET "
        "verdict = excluded.verdict, source = excluded.source",
        (scope, host, str(verdict), source, now))


def put_host(store: Store, scope: str, host: str, verdict: Verdict, *, source: str = "user"
             ) -> None:
    with store.transaction() as conn:
        _put(conn, scope, host, verdict, source=source, now=datetime.now(UTC).isoformat())
        store.journal(conn, None if scope == "*" else scope, "egress_list",
                      {"scope": scope, "host": host, "verdict": str(verdict), "source": source})


def remove_host(store: Store, scope: str, host: str) -> None:
    with store.transaction() as conn:
        gone = conn.execute("DELETE FROM egress_hosts WHERE scope = ? AND host = ?",
                            (scope, host)).rowcount
        if not gone:
            raise NotFound(f"{host} is not in that list")
        store.journal(conn, None if scope == "*" else scope, "egress_list",
                      {"scope": scope, "host": host, "verdict": None, "source": "user"})


def learn_host(store: Store, session_id: str, host: str) -> bool:
    """Record a host a session in ``learn`` mode reached; True when it was new. A session
    learns :data:`MAX_LEARNED` hosts at most (an agent reaching a new name in a loop would
    grow the lists without end); past them, what it reaches is not recorded."""
    with store.transaction() as conn:
        [learned] = conn.execute(
            "SELECT COUNT(*) FROM egress_hosts WHERE scope = ? AND source = 'learned'",
            (session_id,)).fetchone()
        if learned >= MAX_LEARNED:
            return False
        added = conn.execute(
            "INSERT OR IGNORE INTO egress_hosts (scope, host, verdict, source, created_at) "
            "VALUES (?, ?, 'allow', 'learned', ?)",
            (session_id, host, datetime.now(UTC).isoformat())
        ).rowcount
        if added:
            store.journal(conn, session_id, "egress_learned", {"id": session_id, "host": host})
    return bool(added)


_ASK_COLUMNS = "id, session_id, host, created_at, expires_at, decision, decided_at"


def _ask(r: Any) -> Ask:
    return Ask(id=r[0], session_id=r[1], host=r[2], created_at=r[3], expires_at=r[4],
               decision=r[5], decided_at=r[6])


def open_ask(store: Store, session_id: str, name: str, host: str, seconds: float) -> Ask | None:
    """The open ask for this session and host, or a new one held ``seconds`` at most; None
    when the session already has :data:`MAX_OPEN_ASKS` open (an agent asking for host
    after host would bury the person's questions and fill the journal)."""
    now = datetime.now(UTC)
    with store.transaction() as conn:
        found = conn.execute(
            f"SELECT {_ASK_COLUMNS} FROM egress_asks WHERE session_id = ? AND host = ? "
            "AND decision IS NULL AND expires_at > ? ORDER BY id DESC LIMIT 1",
            (session_id, host, now.isoformat())).fetchone()
        if found is not None:
            return _ask(found)
        [waiting] = conn.execute(
            "SELECT COUNT(*) FROM egress_asks WHERE session_id = ? AND decision IS NULL "
            "AND expires_at > ?", (session_id, now.isoformat())).fetchone()
        if waiting >= MAX_OPEN_ASKS:
            return None
        _forget_closed(conn, session_id, now.isoformat())
        expires = (now + timedelta(seconds=seconds)).isoformat()
        cur = conn.execute(
            "INSERT INTO egress_asks (session_id, host, created_at, expires_at) "
            "VALUES (?, ?, ?, ?)", (session_id, host, now.isoformat(), expires))
        assert cur.lastrowid is not None
        ask = Ask(id=cur.lastrowid, session_id=session_id, host=host,
                  created_at=now.isoformat(), expires_at=expires, decision=None,
                  decided_at=None)
        store.journal(conn, session_id, "egress_ask",
                      {"id": session_id, "name": name, "ask": ask.to_json()})
    return ask


def _forget_closed(conn: sqlite3.Connection, session_id: str, now: str) -> None:
    """Remove the session's closed asks beyond the newest :data:`MAX_CLOSED_ASKS`, as it
    opens another (each ask was a row kept for ever: an agent asking again and again, each
    ask expiring, wrote some 28,800 a day)."""
    rows = conn.execute("SELECT id, decision, expires_at FROM egress_asks WHERE session_id = ?",
                        (session_id,)).fetchall()
    gone = asks_to_forget(((r[0], r[1], r[2]) for r in rows), now, MAX_CLOSED_ASKS)
    conn.executemany("DELETE FROM egress_asks WHERE id = ?", [(i,) for i in gone])


def ask_decision(store: Store, ask_id: int) -> str | None:
    found = store.rows("SELECT decision FROM egress_asks WHERE id = ?", (ask_id,))
    return found[0][0] if found else "deny"


def expire_ask(store: Store, ask_id: int) -> None:
    """Nobody decided in time: the ask is closed as denied (the list is left alone)."""
    now = datetime.now(UTC).isoformat()
    with store.transaction() as conn:
        row = conn.execute(
            f"UPDATE egress_asks SET decision = 'expired', decided_at = ? "
            f"WHERE id = ? AND decision IS NULL RETURNING {_ASK_COLUMNS}",
            (now, ask_id)).fetchone()
        if row is not None:
            ask = _ask(row)
            store.journal(conn, ask.session_id, "egress_decided",
                          {"id": ask.session_id, "ask": ask.to_json()})


def decide_ask(store: Store, ask_id: int, verdict: Verdict) -> Ask:
    """A person's decision on an open ask; it also goes into the session's list."""
    now = datetime.now(UTC).isoformat()
    with store.transaction() as conn:
        row = conn.execute(f"SELECT {_ASK_COLUMNS} FROM egress_asks WHERE id = ?",
                           (ask_id,)).fetchone()
        if row is None:
            raise NotFound(f"no pending request with id {ask_id}")
        ask = _ask(row)
        if ask.decision is not None:
            raise Conflict(f"the request to {ask.host} was already decided ({ask.decision})")
        conn.execute("UPDATE egress_asks SET decision = ?, decided_at = ? WHERE id = ?",
                     (str(verdict), now, ask_id))
        _put(conn, ask.session_id, ask.host, verdict, source="asked", now=now)
        decided = replace(ask, decision=str(verdict), decided_at=now)
        store.journal(conn, ask.session_id, "egress_decided",
                      {"id": ask.session_id, "ask": decided.to_json()})
    return decided


def pending_asks(store: Store, session_id: str | None = None) -> list[Ask]:
    now = datetime.now(UTC).isoformat()
    sql = (f"SELECT {_ASK_COLUMNS} FROM egress_asks WHERE decision IS NULL AND expires_at > ?")
    args: tuple[str, ...] = (now,)
    if session_id is not None:
        sql, args = sql + " AND session_id = ?", (now, session_id)
    return [_ask(r) for r in store.rows(sql + " ORDER BY id", args)]
