"""What the person sent each session's agent, in SQLite: ``sent_messages`` (migration 13).

The API writes a row for a session's first prompt when it creates it, and before it types a
message into the agent's terminal (a digest of the text as the agent is given it, when,
which session; the newest :data:`KEEP` a session), and claims rows for the
transcript's user messages as they are read (:mod:`appliance.sent` decides). The rows go
with the session (``Store.delete_session``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from appliance import sent
from appliance.agents import codex_setup
from appliance.sessions import Agent, Session
from appliance.store import Store

KEEP = 1000  # sent messages kept a session; an older one is no longer matched


def record(store: Store, session_id: str, text: str, *, floor: int = 0) -> None:
    """``floor``: where the session's logs end now (:attr:`appliance.sent.Sent.floor`)."""
    with store.transaction() as conn:
        conn.execute("INSERT INTO sent_messages (session_id, digest, sent_at, floor) "
                     "VALUES (?, ?, ?, ?)",
                     (session_id, sent.digest(text), datetime.now(UTC).isoformat(), floor))
        conn.execute("DELETE FROM sent_messages WHERE session_id = ? AND id NOT IN "
                     "(SELECT id FROM sent_messages WHERE session_id = ? "
                     "ORDER BY id DESC LIMIT ?)", (session_id, session_id, KEEP))


def record_prompt(store: Store, session: Session) -> None:
    """The session's first prompt, as its agent is given it (Codex: plan-first in plan
    mode), when it has one."""
    if session.initial_prompt.strip():
        record(store, session.id, codex_setup.prompt_for(session)
               if session.agent is Agent.CODEX else session.initial_prompt)


def from_person(store: Store, session_id: str,
                asked: Sequence[tuple[int, int, str]]) -> frozenset[int]:
    """Which of ``asked`` (position, where its line starts, text of a user message) the
    person sent; the claims that makes are kept."""
    if not asked:
        return frozenset()
    with store.transaction() as conn:
        rows = conn.execute("SELECT id, digest, claimed, floor FROM sent_messages "
                            "WHERE session_id = ?", (session_id,)).fetchall()
        mine, claims = sent.match(
            [sent.Sent(r["id"], r["digest"], r["claimed"], r["floor"]) for r in rows],
            [(pos, start, sent.digest(text)) for pos, start, text in asked])
        conn.executemany("UPDATE sent_messages SET claimed = ? WHERE id = ?",
                         [(pos, sid) for sid, pos in claims.items()])
    return mine
