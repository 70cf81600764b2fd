"""A database made by the previous schema version opens, migrates and keeps everything.

``tests/fixtures/schema3/db.sqlite`` was written by the real code at schema version 3 (see
``make.py`` beside it for the commit and the command). The image-level upgrade (a new
appliance image started on that database) is in tests/e2e/test_appliance_image.py.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from appliance import wire
from appliance.authstore import AuthStore
from appliance.sessions import Phase
from appliance.store import MIGRATIONS, Store

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "schema3"


def test_the_schema_3_database_migrates_and_keeps_sessions_events_and_tokens(
        tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    shutil.copy(FIXTURE / "db.sqlite", db)
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 3
    store = Store.open(db)
    try:
        assert store.schema_version() == len(MIGRATIONS) > 3
        sessions = {s.name: s for s in store.list_sessions()}
        assert set(sessions) == {"old-one", "old-two"}
        assert all(s.phase is Phase.ARCHIVED for s in sessions.values())
        assert sessions["old-one"].initial_prompt == "the first session, before the upgrade"
        assert len(store.session_events(sessions["old-one"].id)) == 3
        # The stored list views were re-rendered in the current wire shape.
        views = [json.loads(v) for v in store.list_views()]
        assert views == [wire.session_json(sessions[v["name"]]) for v in views]
        with store.reading() as conn:
            [(version,)] = conn.execute("SELECT value FROM meta WHERE key = 'session_view'")
        assert version == str(wire.SESSION_VERSION)
        token = AuthStore(store).token_by_secret((FIXTURE / "token.txt").read_text().strip())
        assert token is not None and str(token.scope) == "read-only"
    finally:
        store.close()
    # Opening again is a no-op: the migration ran once.
    again = Store.open(db)
    assert again.schema_version() == len(MIGRATIONS)
    again.close()
