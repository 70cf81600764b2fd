"""Backup and restore of the database: SQLite's online backup on real files.

A backup taken while another connection keeps writing is one consistent state; a restore
brings the sessions into an empty home, and refuses what would lose data: a file that is
not a backup, one from a newer schema, or a database that holds sessions (without force).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from appliance import backup
from appliance.errors import Conflict, InvalidInput
from appliance.store import MIGRATIONS, Store
from tests.unit.test_store import make_session


def test_a_backup_taken_while_writing_is_consistent_and_restores(tmp_path: Path) -> None:
    live = Store.open(tmp_path / "live.sqlite")
    for i in range(20):
        live.insert_session(make_session(f"before-{i}"))
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        # A second process's connection in spirit: its own, writing all along.
        other = Store.open(tmp_path / "live.sqlite")
        i = 0
        while not stop.is_set() and i < 2000:
            other.insert_session(make_session(f"during-{i}"))
            i += 1
            written.append(i)
        other.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        copies = [backup.backup(tmp_path / "live.sqlite", tmp_path / f"copy-{n}.db")
                  for n in range(3)]
    finally:
        stop.set()
        thread.join(timeout=60)
    assert written, "the writer never wrote"
    for copy in copies:
        conn = sqlite3.connect(copy.path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        names = {r[0] for r in conn.execute("SELECT name FROM sessions")}
        conn.close()
        assert {f"before-{i}" for i in range(20)} <= names
        assert len(names) == copy.sessions
        assert copy.schema == len(MIGRATIONS)
        assert copy.path.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob(".*partial"))

    fresh = tmp_path / "fresh" / "db.sqlite"
    done = backup.restore(copies[-1].path, fresh)
    assert done.sessions == copies[-1].sessions
    restored = Store.open(fresh)
    assert restored.get_by_name("before-7") is not None
    restored.close()
    live.close()


def test_restore_refuses_to_replace_sessions_unless_forced(tmp_path: Path) -> None:
    old = Store.open(tmp_path / "old.sqlite")
    old.insert_session(make_session("kept"))
    old.close()
    current = Store.open(tmp_path / "db.sqlite")
    current.insert_session(make_session("precious"))
    current.close()
    with pytest.raises(Conflict, match=r"holds 1 session.*--force"):
        backup.restore(tmp_path / "old.sqlite", tmp_path / "db.sqlite")
    check = Store.open(tmp_path / "db.sqlite")
    assert check.get_by_name("precious") is not None  # nothing lost
    check.close()
    backup.restore(tmp_path / "old.sqlite", tmp_path / "db.sqlite", force=True)
    after = Store.open(tmp_path / "db.sqlite")
    assert after.get_by_name("kept") is not None and after.get_by_name("precious") is None
    after.close()


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    target = tmp_path / "db.sqlite"
    (tmp_path / "notes.txt").write_text("not a database at all\n" * 100)
    with pytest.raises(InvalidInput, match="not a Clauderon backup"):
        backup.restore(tmp_path / "notes.txt", target)
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    with pytest.raises(InvalidInput, match="not a Clauderon backup"):
        backup.restore(tmp_path / "other.db", target)
    with pytest.raises(InvalidInput, match="not a file"):
        backup.restore(tmp_path / "missing.db", target)
    assert not target.exists()


def test_restore_refuses_a_newer_schema(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "new.sqlite")
    store.close()
    conn = sqlite3.connect(tmp_path / "new.sqlite")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(InvalidInput, match="newer Clauderon"):
        backup.restore(tmp_path / "new.sqlite", tmp_path / "db.sqlite")


def test_backup_says_what_is_wrong_with_its_paths(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no database"):
        backup.backup(tmp_path / "none.sqlite", tmp_path / "b.db")
    Store.open(tmp_path / "db.sqlite").close()
    with pytest.raises(InvalidInput, match="is a folder"):
        backup.backup(tmp_path / "db.sqlite", tmp_path)
    with pytest.raises(InvalidInput, match="does not exist"):
        backup.backup(tmp_path / "db.sqlite", tmp_path / "no" / "b.db")


def test_a_backup_that_cannot_be_written_says_so_and_replaces_nothing(tmp_path: Path) -> None:
    Store.open(tmp_path / "db.sqlite").close()
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "b.db").write_text("the previous backup")
    (locked / ".b.db.partial").mkdir()  # in the way of the copy: it cannot be made
    (locked / ".b.db.partial" / "x").write_text("")
    with pytest.raises(InvalidInput, match="cannot back up to"):
        backup.backup(tmp_path / "db.sqlite", locked / "b.db")
    assert (locked / "b.db").read_text() == "the previous backup"
