"""Sessions read from the real SQLite store, cached for at most a second."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import trio
import trio.testing

from appliance.sessions import AccessMode as StoreMode
from appliance.sessions import Session, new_session_id
from appliance.store import Store
from appliance.tokens import hash_token
from proxy.directory import AccessMode, SessionAuth, StoreDirectory, authenticate, proven
from proxy.heads import ProxyCredentials


async def test_lookup_reads_the_mode_live(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite")
    now = datetime.now(UTC)
    sid = new_session_id()
    store.insert_session(Session(
        id=sid, name="one", repo_path="/r", worktree_path="/w", branch="b", base_ref="main",
        image="i", proxy_token_hash=hash_token("tok"), created_at=now, updated_at=now))
    clock = [0.0]
    directory = StoreDirectory(store, clock=lambda: clock[0])
    found = await directory.lookup(sid)
    assert found is not None and found.access_mode is AccessMode.READ_WRITE
    assert authenticate(ProxyCredentials(session_id=sid, token="tok"), found)
    assert not authenticate(ProxyCredentials(session_id=sid, token="nope"), found)
    store.update_session(sid, access_mode=StoreMode.READ_ONLY)
    clock[0] = 0.5  # inside the cache window: the old answer
    assert (await directory.lookup(sid)).access_mode is AccessMode.READ_WRITE  # type: ignore[union-attr]
    clock[0] = 1.5
    assert (await directory.lookup(sid)).access_mode is AccessMode.READ_ONLY  # type: ignore[union-attr]
    assert await directory.lookup("missing") is None
    store.close()


async def test_the_appliances_own_identity(tmp_path: Path) -> None:
    """Known from the instance key, never from the store; no session's token opens it; one
    identity for the title call and the pushes and pull requests, read-only but for what
    the owner rules allow."""
    from appliance.tokens import APPLIANCE_ID, Purpose, appliance_token, derive_token
    from proxy.directory import appliance_identity

    store = Store.open(tmp_path / "db.sqlite")
    key = b"k" * 32
    plain = StoreDirectory(store)
    assert await plain.lookup(APPLIANCE_ID) is None  # a proxy without it knows no such user
    directory = StoreDirectory(store, appliance=appliance_identity(key))
    found = await directory.lookup(APPLIANCE_ID)
    assert found is not None and found.owner and found.access_mode is AccessMode.READ_ONLY
    assert authenticate(ProxyCredentials(session_id=APPLIANCE_ID, token=appliance_token(key)),
                        found)
    for wrong in (derive_token(key, APPLIANCE_ID, Purpose.HOOK), appliance_token(b"x" * 32),
                  ""):
        assert not authenticate(ProxyCredentials(session_id=APPLIANCE_ID, token=wrong), found)
    store.close()


def test_a_request_is_recorded_under_the_session_its_credentials_prove_only() -> None:
    """Any client can name any session's id: a refusal for credentials names none."""
    found = SessionAuth(session_id="s1", name="one", access_mode=AccessMode.READ_WRITE,
                        proxy_token_hash=hash_token("tok"))
    assert proven(ProxyCredentials(session_id="s1", token="tok"), found) == "s1"
    assert proven(ProxyCredentials(session_id="s1", token="guess"), found) is None
    assert proven(ProxyCredentials(session_id="s1", token=""), found) is None
    assert proven(ProxyCredentials(session_id="s2", token="tok"), found) is None
    assert proven(None, found) is None
    assert proven(ProxyCredentials(session_id="s1", token="tok"), None) is None


def _session(store: Store, name: str) -> str:
    now = datetime.now(UTC)
    sid = new_session_id()
    store.insert_session(Session(
        id=sid, name=name, repo_path="/r", worktree_path="/w", branch="b", base_ref="main",
        image="i", proxy_token_hash=hash_token("tok"), created_at=now, updated_at=now))
    return sid


def _statements(store: Store) -> list[str]:
    """Every statement the store's connection runs from now on, as SQLite traces it."""
    ran: list[str] = []
    store._conn.set_trace_callback(ran.append)
    return ran


async def test_a_flood_of_ids_no_session_has_holds_no_neighbours_lookup(tmp_path: Path) -> None:
    """Any client can name any session id, a new one per request, and each went to the
    database on the proxy's few worker threads: a neighbour's own lookup (once a second, its
    answer kept that long) queued behind the whole flood. An id no session has now costs no
    read of the sessions while nothing changed, and a lookup waits for at most the one read
    running and its own."""
    store = Store.open(tmp_path / "db.sqlite")
    victim = _session(store, "victim")
    directory = StoreDirectory(store, cache_seconds=0)
    assert await directory.lookup(victim) is not None
    ran = _statements(store)
    before_victim: list[int] = []
    victim_done: list[int] = []

    async def forged() -> None:
        assert await directory.lookup(new_session_id()) is None

    async def neighbour() -> None:
        before_victim.append(len(ran))
        assert await directory.lookup(victim) is not None
        victim_done.append(len(ran))

    async with trio.open_nursery() as flood:
        for _ in range(500):
            flood.start_soon(forged)
        await trio.testing.wait_all_tasks_blocked()
        flood.start_soon(neighbour)
    store._conn.set_trace_callback(None)
    sessions_read = [s for s in ran if "FROM sessions" in s]
    assert sessions_read == [], f"{len(sessions_read)} reads of the sessions for forged ids"
    assert victim_done[0] - before_victim[0] <= 2, ran[before_victim[0]:victim_done[0]][:5]
    store.close()


async def test_a_session_made_or_changed_since_the_last_read_is_seen_at_once(
        tmp_path: Path) -> None:
    """An id missing from what was read is read again when the database changed since: a
    session made just now is known at its first request, its token too; a deleted one is
    gone. The proxy's own writes (same connection) count as changes."""
    store = Store.open(tmp_path / "db.sqlite")
    other = Store.open(tmp_path / "db.sqlite")
    directory = StoreDirectory(store, cache_seconds=3600)
    assert await directory.lookup("nobody-yet") is None
    made = _session(other, "made-elsewhere")
    found = await directory.lookup(made)
    assert found is not None and found.name == "made-elsewhere"
    mine = _session(store, "made-here")
    assert (await directory.lookup(mine)) is not None
    other.delete_session(made)
    assert await directory.lookup(made) is not None  # known ids are kept cache_seconds
    assert await StoreDirectory(store).lookup(made) is None
    other.close()
    store.close()


async def test_ids_no_session_has_named_while_the_store_changes_keep_nothing_fresh(
        tmp_path: Path) -> None:
    """A forged id after each write is asked for by its key, not answered by reading every
    session: and what was read stays as old as it was, so a known session's mode changed in
    between still applies once the cache is up; a session made meanwhile is known at once."""
    store = Store.open(tmp_path / "db.sqlite")
    other = Store.open(tmp_path / "db.sqlite")
    clock = [0.0]
    directory = StoreDirectory(store, clock=lambda: clock[0])
    known = _session(other, "known")
    assert (await directory.lookup(known)) is not None
    ran: list[str] = []
    store._conn.set_trace_callback(ran.append)
    other.update_session(known, access_mode=StoreMode.READ_ONLY)
    for step in range(5):
        clock[0] = 0.1 * step
        other.append_event(known, "hook", {"step": step})
        assert await directory.lookup(new_session_id()) is None
    made = _session(other, "made")
    assert (await directory.lookup(made)) is not None
    store._conn.set_trace_callback(None)
    assert len([s for s in ran if "proxy_token_hash" in s]) == 1, ran
    clock[0] = 1.0
    assert (await directory.lookup(known)).access_mode is AccessMode.READ_ONLY  # type: ignore[union-attr]
    other.close()
    store.close()
