"""The SQLite store on a real database file: migrations, pragmas, sessions, the journal."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from appliance.errors import Conflict, NotFound, ServiceUnavailable
from appliance.sessions import (
    AgentStatus,
    Desired,
    Phase,
    Session,
    SessionId,
    new_session_id,
)
from appliance.store import MIGRATIONS, AsyncStore, Store
from appliance.store_schema import BUSY_TIMEOUT_MS
from appliance.wire import ListFilter

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_session(name: str, *, repo: str = "/src/app", sub: str = "",
                 created: datetime = T0, **changes: object) -> Session:
    s = Session(
        id=new_session_id(), name=name, repo_path=repo, subdirectory=sub,
        worktree_path=f"/w/{name}", branch=f"clauderon/{name}", base_ref="main",
        image="debian:bookworm-slim", proxy_token_hash="p" * 64, hook_token_hash="h" * 64,
        created_at=created, updated_at=created,
    )
    return replace(s, **changes)  # type: ignore[arg-type]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store.open(db_path)
    yield s
    s.close()


# --- schema and pragmas ---------------------------------------------------------------
def test_migrations_set_user_version(store: Store, db_path: Path) -> None:
    assert store.schema_version() == len(MIGRATIONS)
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        raw.close()
    assert {"sessions", "events", "recent_repos"} <= tables


def test_reopening_is_a_no_op(store: Store, db_path: Path) -> None:
    s = store.insert_session(make_session("keep"))
    last = store.last_event_id()
    again = Store.open(db_path)
    try:
        assert again.schema_version() == len(MIGRATIONS)
        assert again.get_session(s.id) == s
        assert again.last_event_id() == last
    finally:
        again.close()


def test_wal_mode_and_busy_timeout(store: Store) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
    assert BUSY_TIMEOUT_MS > 0


def _open_at_the_barrier(path: str, barrier: Any, errors: Any) -> None:
    barrier.wait()
    try:
        Store.open(Path(path)).close()
    except Exception as exc:  # every failure is the finding
        errors.put(f"{type(exc).__name__}: {exc}")


def test_services_opening_a_new_database_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    """The appliance's services start together on a new home and each opens the store; the
    switch to WAL needs the database alone, and SQLite answers a loser at once ("database is
    locked") without its busy handler. Four real processes, released by one barrier, per round."""
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    rounds, procs = 8, 4
    for n in range(rounds):
        path = tmp_path / f"new-{n}.db"
        barrier = ctx.Barrier(procs)
        started = [ctx.Process(target=_open_at_the_barrier, args=(str(path), barrier, errors))
                   for _ in range(procs)]
        for p in started:
            p.start()
        for p in started:
            p.join(60)
            assert p.exitcode == 0, p.exitcode
        with closing(sqlite3.connect(path)) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    failed = []
    while not errors.empty():
        failed.append(errors.get())
    assert failed == []


def test_database_files_are_private(store: Store, db_path: Path) -> None:
    store.append_event(None, "write", {"prompt": "private"})  # the WAL now holds a write
    for suffix in ("", "-wal", "-shm"):
        path = db_path.with_name(db_path.name + suffix)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# --- sessions -----------------------------------------------------------------------
def test_insert_then_get_round_trips_every_field(store: Store) -> None:
    s = make_session(
        "full", sub="pkg/a", cpu=1.5, memory="2g", model="opus", skip_permissions=True,
        status_reason="why", backend_id="abc", attempts=2, retry_at=T0 + timedelta(seconds=5),
        archived_at=T0, agent_status=AgentStatus.WAITING_INPUT,
    )
    store.insert_session(s)
    assert store.get_session(s.id) == s
    assert store.get_by_name("full") == s


def test_missing_sessions(store: Store) -> None:
    assert store.get_session("nope") is None
    assert store.get_by_name("nope") is None


def test_resolve_by_id_or_name(store: Store) -> None:
    s = store.insert_session(make_session("flaky"))
    assert store.resolve(s.id) == s
    assert store.resolve("flaky") == s


def test_resolve_unknown_names_the_reference(store: Store) -> None:
    with pytest.raises(NotFound) as info:
        store.resolve("ghost")
    assert "'ghost'" in info.value.message
    assert info.value.http_status == 404


def test_duplicate_name_is_a_conflict(store: Store) -> None:
    store.insert_session(make_session("twin"))
    with pytest.raises(Conflict) as info:
        store.insert_session(make_session("twin"))
    assert info.value.field == "name"
    assert len(store.list_sessions()) == 1


def test_failed_insert_appends_no_event(store: Store) -> None:
    store.insert_session(make_session("twin"))
    last = store.last_event_id()
    with pytest.raises(Conflict):
        store.insert_session(make_session("twin"))
    assert store.last_event_id() == last


def test_list_sessions_oldest_first(store: Store) -> None:
    b = store.insert_session(make_session("b", created=T0 + timedelta(seconds=1)))
    a = store.insert_session(make_session("a", created=T0))
    assert [s.id for s in store.list_sessions()] == [a.id, b.id]


def names(store: Store, chosen: ListFilter | Literal["unarchived"] | None = "unarchived"
          ) -> list[str]:
    """The names the session list shows under ``chosen``, in its order."""
    return [json.loads(v)["name"] for v in store.list_views(chosen)]


def test_list_views_oldest_first_from_the_index_with_every_filter(store: Store) -> None:
    """The list walks the ``created_at`` index (no sort of every row and its view), and the
    filters see each row's phase and status: an archived row shows only under ``all``."""
    store.insert_session(make_session("second", created=T0 + timedelta(minutes=1),
                                      phase=Phase.ARCHIVED))
    store.insert_session(make_session("first", created=T0))

    assert names(store, None) == ["first", "second"]
    assert names(store, "unarchived") == ["first"]
    assert names(store, ListFilter.ARCHIVED) == ["second"]
    with store.reading() as conn:
        plan = " ".join(str(r[-1]) for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT view, phase, agent_status FROM sessions "
            "ORDER BY created_at"))
    assert "sessions_created" in plan and "TEMP B-TREE" not in plan, plan


def test_a_list_sees_every_write_of_another_connection(store: Store, db_path: Path) -> None:
    """The list is kept between reads while the journal stands still; another process's
    insert, update or delete (each with its event) shows on the next list, under every
    filter."""
    other = Store.open(db_path)
    try:
        assert names(store) == []
        a = other.insert_session(make_session("a", created=T0))
        assert names(store) == ["a"] and names(store) == ["a"]
        other.update_session(a.id, phase=Phase.RUNNING)
        assert [json.loads(v)["phase"] for v in store.list_views()] == ["running"]
        other.insert_session(make_session("b", created=T0 + timedelta(seconds=1),
                                          phase=Phase.ARCHIVED))
        assert names(store) == ["a"] and names(store, None) == ["a", "b"]
        assert names(store, ListFilter.ARCHIVED) == ["b"] and names(store) == ["a"]
        other.delete_session(a.id)
        assert names(store) == [] and names(store, None) == ["b"]
    finally:
        other.close()


def test_update_checks_transitions(store: Store) -> None:
    s = store.insert_session(make_session("t", phase=Phase.DELETING))
    last = store.last_event_id()
    with pytest.raises(Conflict):
        store.update_session(s.id, phase=Phase.RUNNING)
    assert store.resolve("t").phase is Phase.DELETING
    assert store.last_event_id() == last


def test_update_of_unknown_session(store: Store) -> None:
    with pytest.raises(NotFound):
        store.update_session("nope", phase=Phase.RUNNING)


def test_update_keeps_fields_written_by_another_call(store: Store) -> None:
    s = store.insert_session(make_session("k"))
    # The API writes desired; the reconciler, holding an older copy, writes the phase.
    store.update_session(s.id, desired=Desired.STOPPED)
    after = store.update_session(s.id, phase=Phase.RUNNING, backend_id="c1")
    assert after.desired is Desired.STOPPED
    stored = store.resolve("k")
    assert stored.desired is Desired.STOPPED
    assert stored.phase is Phase.RUNNING
    assert stored.backend_id == "c1"
    assert stored.updated_at >= s.updated_at
    assert stored.created_at == s.created_at


def test_update_expect_can_refuse(store: Store) -> None:
    s = store.insert_session(make_session("e"))

    def only_failed(current: Session) -> None:
        if current.phase is not Phase.FAILED:
            raise Conflict("not failed")

    with pytest.raises(Conflict, match="not failed"):
        store.update_session(s.id, expect=only_failed, desired=Desired.STOPPED)
    assert store.resolve("e").desired is Desired.RUNNING


# --- the journal --------------------------------------------------------------------
def test_every_write_appends_an_event_with_a_monotonic_id(store: Store) -> None:
    s = store.insert_session(make_session("j"))
    store.update_session(s.id, phase=Phase.RUNNING)
    store.update_session(s.id, event="progress", detail={"step": "container"})
    store.append_event(None, "note", {"x": 1})
    store.delete_session(s.id)
    events = store.events_after(0)
    assert [e.kind for e in events] == ["created", "updated", "progress", "note", "deleted"]
    ids = [e.id for e in events]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert events[0].payload["session"]["name"] == "j"
    assert events[1].payload["session"]["phase"] == "running"
    assert events[2].payload["step"] == "container"
    assert store.last_event_id() == ids[-1]


def test_event_payloads_hold_no_token_hashes(store: Store) -> None:
    s = store.insert_session(make_session("secret"))
    store.update_session(s.id, phase=Phase.RUNNING)
    for e in store.events_after(0):
        assert s.proxy_token_hash not in repr(e.payload)
        assert s.hook_token_hash not in repr(e.payload)


def test_events_after_resumes_exactly(store: Store) -> None:
    for i in range(7):
        store.append_event(None, "tick", {"i": i})
    everything = store.events_after(0)
    assert [e.payload["i"] for e in everything] == list(range(7))
    cursor = everything[2].id
    assert [e.payload["i"] for e in store.events_after(cursor)] == [3, 4, 5, 6]
    assert [e.payload["i"] for e in store.events_after(cursor, limit=2)] == [3, 4]
    assert store.events_after(everything[-1].id) == []


def test_session_events_only_that_session_in_order(store: Store) -> None:
    a = store.insert_session(make_session("a"))
    b = store.insert_session(make_session("b"))
    store.update_session(a.id, event="progress", detail={"step": "one"})
    store.update_session(b.id, event="progress", detail={"step": "other"})
    store.update_session(a.id, event="progress", detail={"step": "two"})
    kinds = [(e.kind, e.payload.get("step")) for e in store.session_events(a.id)]
    assert kinds == [("created", None), ("progress", "one"), ("progress", "two")]
    assert [e.payload.get("step") for e in store.session_events(a.id, limit=2)] == ["one", "two"]


def test_delete_appends_a_deleted_event(store: Store) -> None:
    s = store.insert_session(make_session("gone"))
    store.delete_session(s.id)
    assert store.get_session(s.id) is None
    last = store.events_after(0)[-1]
    assert last.kind == "deleted"
    assert last.session_id == s.id
    assert last.payload == {"id": s.id, "name": "gone"}


def test_deleting_a_missing_session_writes_nothing(store: Store) -> None:
    before = store.last_event_id()
    store.delete_session(SessionId("missing"))
    assert store.last_event_id() == before


def test_data_version_moves_when_another_connection_commits(
    store: Store, db_path: Path
) -> None:
    before = store.data_version()
    assert store.data_version() == before
    other = Store.open(db_path)
    try:
        other.append_event(None, "from-elsewhere", {})
    finally:
        other.close()
    assert store.data_version() != before
    assert store.events_after(0)[-1].kind == "from-elsewhere"


# --- recent repositories ------------------------------------------------------------
def test_recent_repos_newest_first_and_upserted(store: Store) -> None:
    store.insert_session(make_session("a", repo="/r/one", created=T0))
    store.insert_session(make_session("b", repo="/r/two", created=T0 + timedelta(minutes=1)))
    store.insert_session(make_session("c", repo="/r/two", sub="web",
                                      created=T0 + timedelta(minutes=2)))
    store.insert_session(make_session("d", repo="/r/one", created=T0 + timedelta(minutes=3)))
    recent = store.recent_repos()
    assert [(r["repo_path"], r["subdirectory"]) for r in recent] == [
        ("/r/one", ""), ("/r/two", "web"), ("/r/two", ""),
    ]
    assert recent[0]["last_used"] == (T0 + timedelta(minutes=3)).isoformat()
    assert len(store.recent_repos(limit=1)) == 1


# --- the async wrapper --------------------------------------------------------------
async def test_async_store_runs_calls(store: Store) -> None:
    astore = AsyncStore(store)
    s = await astore.run(store.insert_session, make_session("async"))
    got = await astore.run(store.resolve, "async")
    assert got == s


def test_a_write_lock_held_past_the_busy_timeout_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    first = Store.open(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        first._conn.execute("PRAGMA busy_timeout = 50")
        with pytest.raises(ServiceUnavailable, match="database is busy"):
            first.append_event(None, "test", {})
    finally:
        other.execute("ROLLBACK")
        other.close()
        first.close()


def _aged(db_path: Path, ids: range, when: datetime) -> None:
    """Events written ``when`` (the store stamps its own clock; a test moves them back)."""
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.executemany("UPDATE events SET ts = ? WHERE id = ?",
                         [(when.isoformat(), i) for i in ids])


def test_pruning_removes_old_events_in_batches_and_never_the_newest(store: Store,
                                                                    db_path: Path) -> None:
    ids = [store.append_event(None, "hook", {"n": i}) for i in range(23)]
    now = datetime.now(UTC)
    _aged(db_path, range(ids[0], ids[16] + 1), now - timedelta(days=40))
    assert store.prune_events(now - timedelta(days=30), batch=5) == 17
    assert [e.payload["n"] for e in store.events_after(0)] == list(range(17, 23))
    assert store.prune_events(now - timedelta(days=30), batch=5) == 0
    # Everything old: the newest stays, where readers resume, and ids go on from it.
    _aged(db_path, range(ids[0], ids[-1] + 1), now - timedelta(days=40))
    assert store.prune_events(now - timedelta(days=30), batch=4) == 5
    assert [e.id for e in store.events_after(0)] == [ids[-1]] == [store.last_event_id()]
    assert store.append_event(None, "hook", {}) == ids[-1] + 1


def test_a_sessions_hook_events_are_trimmed_to_its_newest_and_nothing_else_goes(
        store: Store) -> None:
    """An agent posting its hook in a loop within its rate: its hook events past the newest
    ``keep`` go, in batches; its other events, the other sessions' and the journal's newest
    stay."""
    loud, calm = (store.insert_session(make_session(n)) for n in ("loud", "calm"))
    store.append_event(loud.id, "progress", {"n": -1})
    for i in range(25):
        store.append_event(loud.id, "hook", {"n": i})
        store.append_event(calm.id, "hook", {"n": i})
    store.append_event(None, "test", {})

    def hooks(sid: str) -> list[int]:
        return [e.payload["n"] for e in store.session_events(sid, 1000) if e.kind == "hook"]

    assert store.trim_hooks(loud.id, 10, batch=4) == 15
    assert hooks(loud.id) == list(range(15, 25)) and hooks(calm.id) == list(range(25))
    assert [e.kind for e in store.session_events(loud.id, 1000)][:2] == ["created", "progress"]
    assert store.trim_hooks(loud.id, 10) == 0 and store.trim_hooks(loud.id, 0) == 0
    # Every session over the bound (the reconciler's round), the journal's newest kept.
    newest = store.append_event(calm.id, "hook", {"n": 25})
    assert store.trim_hooks(None, 3) == 7 + 23
    assert hooks(loud.id) == [22, 23, 24] and hooks(calm.id) == [23, 24, 25]
    assert store.last_event_id() == newest


def test_pruning_an_empty_journal_removes_nothing(store: Store) -> None:
    assert store.prune_events(datetime.now(UTC)) == 0


def test_a_full_disk_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    """A real small filesystem, filled: the write is refused saying what to do, the
    transaction is rolled back, and the store goes on once there is room."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=True)
    try:
        s = Store.open(disk / "db.sqlite")
        s.insert_session(make_session("before"))
        filler = disk / "fill"
        with filler.open("wb") as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        with pytest.raises(ServiceUnavailable, match="the appliance's disk is full") as err:
            for n in range(200):  # until the journal needs a page the disk cannot give
                s.append_event(None, "bulk", {"n": n, "pad": "x" * 4000})
        assert "nothing was changed" in err.value.message
        assert [x.name for x in s.list_sessions()] == ["before"]
        filler.unlink()
        s.insert_session(make_session("after"))
        assert sorted(x.name for x in s.list_sessions()) == ["after", "before"]
        s.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
