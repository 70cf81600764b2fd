"""Back up and restore the database with SQLite's online backup API.

``clauderon backup PATH`` copies the live database page by page while the services keep
writing (``sqlite3.Connection.backup``: each step holds a read lock only briefly, and a
write in between restarts the copy from the changed pages), so the copy is one consistent
state of the database, WAL included. It is written beside ``PATH`` first and renamed into
place, so a backup that fails half-way never replaces a good one.

``clauderon restore PATH`` is the reverse into ``CLAUDERON_HOME``'s database. It refuses
while any service could be writing (the caller checks: ``cli/ops.py``), refuses a file that
is not a Clauderon database or is newer than this code, and refuses to replace a database
that holds sessions unless asked (``force``), so nothing is lost by a slip of the hand.

What it holds: sessions, their events, usage, budgets, sign-in and every other table. What
it does not: worktrees and session branches (in the repositories themselves), the proxy's CA
and the instance key (in the home; a restore into a fresh home makes new ones, so sessions'
containers are recreated with fresh tokens by the reconciler), the audit log.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import Conflict, InvalidInput
from appliance.store import Store
from appliance.store_schema import MIGRATIONS

#: Pages copied per step: small steps let the services' writes go on between them.
PAGES_PER_STEP = 256
#: How long a step waits for a service's write to finish.
BUSY_SECONDS = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Copied:
    path: Path
    sessions: int
    schema: int
    size: int


def _sessions(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM sessions").fetchone()[0])


def backup(db_path: Path, target: Path) -> Copied:
    """Copy the live database at ``db_path`` to ``target`` (replaced atomically)."""
    if not db_path.is_file():
        raise InvalidInput(f"there is no database at {db_path}: nothing to back up (is "
                           "CLAUDERON_HOME right? `clauderon config paths`)")
    if target.is_dir():
        raise InvalidInput(f"{target} is a folder: give the backup file's path")
    if not target.parent.is_dir():
        raise InvalidInput(f"{target.parent} does not exist: create it first")
    partial = target.with_name(f".{target.name}.partial")
    _discard(partial)
    # A plain reader: it never writes (no migration), and its busy timeout makes a step
    # that meets a write wait instead of failing.
    source = sqlite3.connect(db_path, timeout=BUSY_SECONDS)
    try:
        sessions, schema = _copy_out(source, partial)
    except (OSError, sqlite3.Error) as exc:
        _discard(partial)
        raise InvalidInput(f"cannot back up to {target}: {exc}; nothing was replaced") from exc
    except BaseException:
        _discard(partial)
        raise
    finally:
        source.close()
    os.replace(partial, target)
    return Copied(path=target, sessions=sessions, schema=schema, size=target.stat().st_size)


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _copy_out(source: sqlite3.Connection, partial: Path) -> tuple[int, int]:
    """The online backup into ``partial``: its session count and schema version."""
    fd = os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    os.close(fd)  # the copy holds secrets' hashes: owner only, from the first byte
    dest = sqlite3.connect(partial)
    try:
        source.backup(dest, pages=PAGES_PER_STEP)
        dest.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        return _sessions(dest), int(dest.execute("PRAGMA user_version").fetchone()[0])
    finally:
        dest.close()


def _check_source(source: Path) -> sqlite3.Connection:
    if not source.is_file():
        raise InvalidInput(f"{source} is not a file: give the path of a backup made by "
                           "`clauderon backup PATH`")
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute("SELECT id, name, phase FROM sessions LIMIT 1")
        ok = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise InvalidInput(f"{source} is not a Clauderon backup ({exc}): nothing was "
                           "restored") from exc
    if ok != "ok":
        conn.close()
        raise InvalidInput(f"{source} is damaged ({ok}): nothing was restored")
    if version > len(MIGRATIONS):
        conn.close()
        raise InvalidInput(f"{source} was made by a newer Clauderon (schema {version}, this "
                           f"one knows {len(MIGRATIONS)}): upgrade, then restore")
    return conn


def _copy_in(src: sqlite3.Connection, db_path: Path) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    if not db_path.exists():
        os.close(os.open(db_path, os.O_CREAT | os.O_WRONLY, 0o600))
    dest = sqlite3.connect(db_path, timeout=BUSY_SECONDS)
    try:
        src.backup(dest, pages=PAGES_PER_STEP)
        dest.execute("PRAGMA journal_mode = WAL")  # as the services open it
    finally:
        dest.close()


def restore(source: Path, db_path: Path, *, force: bool = False) -> Copied:
    """Copy the backup ``source`` into the database at ``db_path`` (none may be running)."""
    src = _check_source(source)
    try:
        if db_path.exists() and not force:
            existing = sqlite3.connect(db_path, timeout=BUSY_SECONDS)
            try:
                held = _sessions(existing)
            except sqlite3.DatabaseError:
                held = 0 if db_path.stat().st_size == 0 else -1
            finally:
                existing.close()
            if held < 0:
                raise Conflict(f"{db_path} exists and cannot be read as a Clauderon "
                               "database; move it aside (or restore with --force)")
            if held:
                raise Conflict(f"the database {db_path} holds {held} session(s); restoring "
                               "would replace them. Back it up first (`clauderon backup "
                               "PATH`), then restore with --force")
        try:
            _copy_in(src, db_path)
        except (OSError, sqlite3.Error) as exc:
            raise InvalidInput(f"cannot restore into {db_path}: {exc} (a failed copy is "
                               "rolled back: the database is as it was)") from exc
    finally:
        src.close()
    # Bring it to this code's schema now, so the first service to start finds it current.
    store = Store.open(db_path)
    try:
        with store.reading() as conn:
            sessions = _sessions(conn)
        schema = store.schema_version()
    finally:
        store.close()
    return Copied(path=db_path, sessions=sessions, schema=schema, size=db_path.stat().st_size)
