"""An orphan the engine will not remove is told in the events once, not on every pass.

Real: the reconciler and its store (SQLite). The orphans are of a backend this appliance
has not configured (a workload left by a configuration since changed), so every removal
really fails the same way without touching an engine.
"""

from __future__ import annotations

from pathlib import Path

from appliance.config import Settings
from appliance.contract import HostContext
from appliance.reconcile.plan import RemoveOrphan
from appliance.reconcile.reconcile_loop import Reconciler
from appliance.store import AsyncStore, Store
from tests.unit import test_hook_race

store = test_hook_race.store  # the fixture: a real store


def _told(store: Store) -> int:
    return len(store.rows("SELECT id FROM events WHERE kind = 'orphan_removal_failed'"))


async def test_a_failing_orphan_removal_is_told_once(tmp_path: Path, store: Store) -> None:
    host = HostContext(instance="test", network="n", gateway="g", proxy_port=3128,
                       hook_port=3031, ca_cert_path=None, uploads_root="/u",
                       git_name="Dev", git_email="dev@example.invalid")
    rec = Reconciler(settings=Settings(home=tmp_path / "home"), store=AsyncStore(store),
                     backends={}, host=host, instance_key=b"k" * 32)
    orphan = RemoveOrphan(backend_id="c0ffee", name="clauderon-gone", kind="kubernetes")
    for _ in range(5):  # five passes, each failing the same way
        await rec._run_action(orphan.backend_id, orphan)
    assert _told(store) == 1, "the same failure was told on every pass"
    other = RemoveOrphan(backend_id="beef", name="clauderon-other", kind="kubernetes")
    await rec._run_action(other.backend_id, other)
    assert _told(store) == 2  # another orphan is news
