"""A hook that races the person: the agent's hook reads its session, the person stops,
archives or deletes it, then the hook writes. Played with the real API app, the real store
(SQLite) and the person's write landing exactly between the hook's read and its write (the
store's read is wrapped to make it so: no timing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from quart_trio import QuartTrio

from api.app import create_app
from api.context import ApiContext
from api.events import EventHub
from appliance.audit_index import AuditIndex
from appliance.backends.docker import DockerBackend
from appliance.config import Settings
from appliance.sessions import AgentStatus, Desired, Phase, Session
from appliance.store import AsyncStore, Store
from appliance.tokens import Purpose, derive_token, hash_token
from tests.unit.test_store import make_session

KEY = b"k" * 32


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    settings = Settings(home=tmp_path / "home")
    settings.ensure_layout()
    sync = Store.open(settings.db_path)
    yield sync
    sync.close()


def api(tmp_path: Path, store: Store) -> QuartTrio:
    settings = Settings(home=tmp_path / "home")
    astore = AsyncStore(store)
    return create_app(ApiContext(
        settings=settings, store=astore,
        backends={"docker": DockerBackend(url=f"unix://{tmp_path}/no-docker.sock",
                                          instance="test")},
        hub=EventHub(astore), instance_key=KEY, audit=AuditIndex(settings.audit_path)))


def running(store: Store, **changes: Any) -> Session:
    s = make_session("racer")
    s = replace(s, hook_token_hash=hash_token(derive_token(KEY, s.id, Purpose.HOOK)),
                phase=Phase.RUNNING, desired=Desired.RUNNING, **changes)
    return store.insert_session(s)


@pytest.mark.parametrize(("event", "asked"), [
    ("Completed", Desired.ARCHIVED),   # a print-mode agent's end over the person's archive
    ("Completed", Desired.STOPPED),
    ("PermissionRequest", Desired.STOPPED),  # "needs your approval" on a session stopped
    ("Stop", Desired.ARCHIVED),
])
async def test_a_hook_never_writes_over_what_the_person_asked_meanwhile(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch, event: str,
        asked: Desired) -> None:
    s = running(store, print_mode=True)
    read = store.get_session

    def read_then_the_person_acts(sid: str) -> Session | None:
        found = read(sid)
        if sid == s.id and found is not None and found.desired is Desired.RUNNING:
            store.update_session(sid, desired=asked)  # the person, between read and write
        return found

    monkeypatch.setattr(store, "get_session", read_then_the_person_acts)
    client = api(tmp_path, store).test_client()
    token = derive_token(KEY, s.id, Purpose.HOOK)
    answer = await client.post("/api/hooks", json={"session_id": s.id, "event": {"type": event}},
                               headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 204, await answer.get_data()
    after = read(s.id)
    assert after is not None
    assert (after.desired, after.agent_status) == (asked, AgentStatus.UNKNOWN), after
    # Recorded all the same, as a hook to a session that is over is.
    assert [e.payload.get("hook") for e in store.session_events(s.id) if e.kind == "hook"] \
        == [event]
