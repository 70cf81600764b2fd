"""Usage and budgets in SQLite: the ``usage`` and ``budgets`` tables (store migration 5).

Synchronous like the store it rides on; services call it through ``AsyncStore.run`` (the
proxy from its ledger's flusher, never from a request). The proxy is the only writer of
``usage``: :func:`add_usage` adds a batch of counts in one transaction, upserting each row
(session, day, model) by addition, and journals one ``usage`` event per session so the UIs
refresh; the sessions' ``model_error`` and the proxy's published facts (``meta``) ride in
the same transaction. Budgets are written by the API (:func:`set_budget`) and read by both;
a budget row replaces the configured default for its scope (a session id, or ``*`` for all
sessions).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from appliance.budgets import GLOBAL, LIMITS, Budget, Spent
from appliance.store import Store
from appliance.usage import PriceTable, Usage


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageRow:
    session_id: str
    session_name: str
    day: str
    model: str
    requests: int = 0
    #: Model answers whose usage could not be read (malformed, encoded, cut short).
    unmetered: int = 0
    usage: Usage = field(default_factory=Usage)


def today() -> str:
    return datetime.now(UTC).date().isoformat()


_ADD = """
INSERT INTO usage (session_id, day, model, session_name, requests, unmetered, input_tokens,
                   output_tokens, cache_read_tokens, cache_write_tokens)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (session_id, day, model) DO UPDATE SET
    session_name = excluded.session_name,
    requests = requests + excluded.requests,
    unmetered = unmetered + excluded.unmetered,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
    cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens
"""


def add_usage(store: Store, rows: Iterable[UsageRow],
              model_errors: Mapping[str, str | None] | None = None,
              meta: Mapping[str, str] | None = None) -> None:
    """Add a batch of counts (one transaction) and say so once per session; with them, the
    sessions' model errors that changed (:func:`set_model_errors`) and ``meta`` values the
    proxy publishes (its credentials' summary)."""
    per_session: dict[str, tuple[str, int]] = {}
    with store.transaction() as conn:
        set_model_errors(store, conn, model_errors or {})
        for key, value in (meta or {}).items():
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", (key, value))
        for r in rows:
            u = r.usage
            conn.execute(_ADD, (r.session_id, r.day, r.model, r.session_name, r.requests,
                                r.unmetered, u.input, u.output, u.cache_read, u.cache_write))
            name, tokens = per_session.get(r.session_id, (r.session_name, 0))
            per_session[r.session_id] = (name, tokens + u.tokens)
        for sid, (name, tokens) in per_session.items():
            store.journal(conn, sid, "usage", {"id": sid, "name": name, "tokens": tokens})


def set_model_errors(store: Store, conn: sqlite3.Connection,
                     changes: Mapping[str, str | None]) -> None:
    """Each session's ``model_error`` as the proxy last saw it (None: its model calls work),
    written with an event only where it changed; a session gone meanwhile is skipped."""
    for sid, reason in changes.items():
        row = conn.execute("SELECT model_error FROM sessions WHERE id = ?", (sid,)).fetchone()
        if row is None or row[0] == reason:
            continue
        store.update_in(conn, sid, event="model_failing" if reason else "model_recovered",
                        detail={"model_error": reason}, model_error=reason)


def read_meta(store: Store, key: str) -> str | None:
    found = store.rows("SELECT value FROM meta WHERE key = ?", (key,))
    return str(found[0][0]) if found else None


def _row(r: tuple[object, ...]) -> UsageRow:
    (sid, name, day, model, requests, unmetered, inp, out, read, write) = r
    return UsageRow(session_id=str(sid), session_name=str(name), day=str(day), model=str(model),
                    requests=int(str(requests)), unmetered=int(str(unmetered)),
                    usage=Usage(input=int(str(inp)), output=int(str(out)),
                                cache_read=int(str(read)), cache_write=int(str(write))))


def usage_rows(store: Store, *, session_id: str | None = None, since: str | None = None,
               limit: int = 10_000) -> list[UsageRow]:
    """Usage rows, newest day first; one session's, or every session's since a day."""
    where, args = [], []
    if session_id is not None:
        where.append("session_id = ?")
        args.append(session_id)
    if since is not None:
        where.append("day >= ?")
        args.append(since)
    sql = ("SELECT session_id, session_name, day, model, requests, unmetered, input_tokens, "
           "output_tokens, cache_read_tokens, cache_write_tokens FROM usage"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY day DESC, session_id, model LIMIT ?")
    return [_row(tuple(r)) for r in store.rows(sql, (*args, limit))]


def spent_by_scope(rows: Iterable[UsageRow], prices: PriceTable, day: str
                   ) -> dict[str, Spent]:
    """What each session, and all of them together (``*``), has spent (pure)."""
    acc: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0.0])
    for r in rows:
        cost = prices.bound(r.model, r.usage)
        for scope in (r.session_id, GLOBAL):
            a = acc[scope]
            a[0] += r.usage.tokens
            a[1] += cost
            if r.day == day:
                a[2] += r.usage.tokens
                a[3] += cost
    return {scope: Spent(tokens=int(a[0]), cost=a[1], tokens_today=int(a[2]), cost_today=a[3])
            for scope, a in acc.items()}


def totals_by_session_model(store: Store) -> list[UsageRow]:
    """Every session's usage per model, all days and today's, for budget checks: one
    grouped read (the proxy refreshes it about once a second)."""
    day = today()
    found = store.rows(
        "SELECT session_id, MAX(session_name), CASE WHEN day = ? THEN day ELSE '' END AS d, "
        "model, SUM(requests), SUM(unmetered), SUM(input_tokens), SUM(output_tokens), "
        "SUM(cache_read_tokens), SUM(cache_write_tokens) FROM usage "
        "GROUP BY session_id, d, model", (day,))
    return [_row(tuple(r)) for r in found]


# --- budgets ----------------------------------------------------------------------------


def budgets(store: Store) -> dict[str, Budget]:
    """Every budget set from a UI, by scope (a session id, or ``*``)."""
    found = store.rows(f"SELECT scope, {', '.join(LIMITS)} FROM budgets")
    return {r[0]: Budget(tokens=r[1], cost=r[2], tokens_per_day=r[3], cost_per_day=r[4])
            for r in found}


def refused_sessions(store: Store) -> dict[str, str]:
    """The sessions whose model requests are marked refused for their budget: id -> name."""
    found = store.rows("SELECT id, name FROM sessions WHERE budget_exceeded IS NOT NULL")
    return {str(r[0]): str(r[1]) for r in found}


def set_budget(store: Store, scope: str, budget: Budget | None, *, name: str = "") -> None:
    """Set a scope's budget; None removes it (the configured default applies again)."""
    now = datetime.now(UTC).isoformat()
    with store.transaction() as conn:
        if budget is None:
            conn.execute("DELETE FROM budgets WHERE scope = ?", (scope,))
        else:
            conn.execute(
                f"INSERT INTO budgets (scope, {', '.join(LIMITS)}, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope) DO UPDATE SET "
                + ", ".join(f"{k} = excluded.{k}" for k in (*LIMITS, "updated_at")),
                (scope, budget.tokens, budget.cost, budget.tokens_per_day,
                 budget.cost_per_day, now))
        store.journal(conn, None if scope == GLOBAL else scope, "budget",
                      {"scope": scope, "name": name,
                       "budget": budget.to_json() if budget is not None else None})
