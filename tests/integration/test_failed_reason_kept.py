"""A failed session keeps the reason it failed until the person retries it.

Real: the reconciler, its store (SQLite) and the Docker engine, asked to start a container
it does not have. An attempt that was under way when its session failed fails in turn, on
the snapshot of the session it was started with: its "attempt 1/3 failed ...; retrying" was
written over the reason the session failed, the one the person needs to act on, and so was
its own permanent failure ("No such container"). It is told
in the session's events instead. A retry the person asks for starts afresh: its next
failure is written as any is. (The decision is table-tested in ``test_failure_policy``.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.backends.docker import DockerBackend
from appliance.config import Settings
from appliance.contract import HostContext
from appliance.reconcile.plan import Start
from appliance.reconcile.reconcile_loop import Reconciler
from appliance.sessions import Desired, Phase, Session
from appliance.store import AsyncStore, Store
from appliance.verbs import Verb, changes_for
from tests.unit import test_hook_race
from tests.unit.test_store import make_session

pytestmark = pytest.mark.docker
store = test_hook_race.store  # the fixture: a real store
FIRST = "the session's pod reached its node's kubelet: this cluster does not enforce them"
#: A container id the engine does not have: its start fails as a missing one's does.
NONE = "0" * 64


@pytest.fixture
def reconciler(tmp_path: Path, store: Store) -> Iterator[Reconciler]:
    host = HostContext(instance="test", network="n", gateway="g", proxy_port=3128,
                       hook_port=3031, ca_cert_path=None, uploads_root="/u",
                       git_name="Dev", git_email="dev@example.invalid")
    engine = DockerBackend(url=None, instance=f"t-{uuid.uuid4().hex[:8]}")
    yield Reconciler(settings=Settings(home=tmp_path / "home"), store=AsyncStore(store),
                     backends={"docker": engine}, host=host, instance_key=b"k" * 32)
    if engine._client is not None:
        engine._client.close()


def _failed_meanwhile(store: Store) -> tuple[Session, Session]:
    """A session as an attempt read it (creating), and as it is now: failed, and why."""
    s = store.insert_session(replace(make_session("kept"), desired=Desired.RUNNING))
    failed = store.update_session(s.id, phase=Phase.FAILED, status_reason=FIRST, attempts=1)
    return s, failed


async def test_a_later_attempt_keeps_the_reason_a_session_failed(
        reconciler: Reconciler, store: Store) -> None:
    stale, _ = _failed_meanwhile(store)
    await reconciler._run_action(stale.id, Start(session=stale, backend_id=NONE))
    after = store.get_session(stale.id)
    assert after is not None
    assert (after.phase, after.status_reason, after.attempts, after.retry_at) \
        == (Phase.FAILED, FIRST, 1, None), after.status_reason
    told = [e.payload for e in store.session_events(stale.id) if e.kind == "action_failed"]
    assert len(told) == 1 and NONE in str(told[0]["reason"]), told


async def test_a_retry_the_person_asked_for_starts_afresh(
        reconciler: Reconciler, store: Store) -> None:
    _, failed = _failed_meanwhile(store)
    retried = store.update_session(failed.id, **changes_for(Verb.RETRY, failed))
    assert (retried.phase, retried.status_reason, retried.attempts) == (Phase.CREATING, None, 0)
    await reconciler._run_action(retried.id, Start(session=retried, backend_id=NONE))
    after = store.get_session(retried.id)
    assert after is not None
    # Its own failure is what the person reads now (the engine has no such container: that
    # cannot be tried again), counted from the retry.
    assert (after.phase, after.attempts) == (Phase.FAILED, 1), after
    assert after.status_reason == f"start container: No such container: {NONE}", after
