"""A create that fails while the person deletes its session never undoes the delete.

Real: the reconciler, its store (SQLite), git and the Docker backend, whose create fails at
the container, once the workspace is made (the session names a network that is not the
backend's: a permanent failure). The person deleted the session while its create
was under way (the create holds the snapshot it read before); the create's failure wrote
``failed`` and its reason over ``deleting``, which offered the person a retry that would have
made the session they deleted again. The failure is told in the session's events; the
delete goes on and leaves no container and no workspace, and the session's branch stays in
the person's repository. (The decision is table-tested in ``test_failure_policy``.)
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from appliance.backends.docker import DockerBackend
from appliance.config import Settings
from appliance.contract import HostContext
from appliance.errors import Conflict
from appliance.reconcile.plan import Create
from appliance.reconcile.reconcile_loop import Reconciler
from appliance.sessions import Desired, Phase
from appliance.store import AsyncStore, Store
from appliance.verbs import Verb, changes_for
from tests.conftest import make_repo
from tests.unit.test_store import make_session

pytestmark = pytest.mark.docker


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path / "home")
    settings.ensure_layout()
    return settings


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    sync = Store.open(settings.db_path)
    yield sync
    sync.close()


@pytest.fixture
def engine() -> Iterator[DockerBackend]:
    backend = DockerBackend(url=None, instance=f"t-{uuid.uuid4().hex[:8]}")
    yield backend
    if backend._client is not None:
        backend._client.close()


def _reconciler(settings: Settings, store: Store, engine: DockerBackend) -> Reconciler:
    host = HostContext(instance="test", network="n", gateway="g", proxy_port=3128,
                       hook_port=3031, ca_cert_path=None, uploads_root="/u",
                       git_name="Dev", git_email="dev@example.invalid")
    return Reconciler(settings=settings, store=AsyncStore(store), backends={"docker": engine},
                      host=host, instance_key=b"k" * 32)


async def test_a_create_failing_under_a_delete_never_undoes_it(
        tmp_path: Path, settings: Settings, store: Store, engine: DockerBackend) -> None:
    repo = make_repo(tmp_path / "app")
    worktree = settings.worktrees_dir / "gone"
    stale = store.insert_session(replace(
        make_session("gone", repo=str(repo)), worktree_path=str(worktree),
        desired=Desired.RUNNING))
    deleted = store.update_session(stale.id, **changes_for(Verb.DELETE, stale))
    assert (deleted.phase, deleted.desired) == (Phase.DELETING, Desired.DELETED)
    reconciler = _reconciler(settings, store, engine)
    # The create read the session before the person deleted it, and fails at the container.
    await reconciler._run_action(stale.id, Create(session=stale, start=True, recreate=False))
    after = store.get_session(stale.id)
    assert after is not None
    assert (after.phase, after.desired, after.status_reason) \
        == (Phase.DELETING, Desired.DELETED, None), after.status_reason
    told = [e.payload for e in store.session_events(stale.id) if e.kind == "action_failed"]
    assert [t["action"] for t in told] == ["creating"], told
    assert "network n is not this backend's" in str(told[0]["reason"]), told
    with pytest.raises(Conflict):  # nothing offers to make again what the person deleted
        changes_for(Verb.RETRY, after)
    # The next pass carries the delete out.
    async with trio.open_nursery() as nursery:
        await reconciler.run_pass(nursery)
    assert store.get_session(stale.id) is None
    assert await engine.list_workloads() == []
    assert not worktree.exists()
    tip = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo), "rev-parse",
                          "--verify", "refs/heads/clauderon/gone"], capture_output=True,
                         text=True, check=False)
    assert tip.returncode == 0, f"the session's branch was deleted: {tip.stderr}"
