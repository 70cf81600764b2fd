"""The reconcile report reads every action the plan can take: as words, or as work under way."""

from __future__ import annotations

from dataclasses import replace

from appliance.reconcile.report import report
from appliance.sessions import Phase, Rebuild
from tests.unit.test_plan import CFG, NOW, sess, wl


def test_a_pending_recreate_is_work_under_way_not_drift() -> None:
    """A person's recreate is under way like a create or a delete: the report lists no
    problem for it (it raised before, and ``GET /api/reconcile`` answered a 500)."""
    s = replace(sess("a", Phase.RUNNING, backend_id="c1"), rebuild=Rebuild.CONTAINER)
    assert report([s], [wl("a", "c1")], now=NOW, cfg=CFG) == []
    failed = replace(sess("b", Phase.FAILED), rebuild=Rebuild.FRESH, status_reason="boom")
    assert [p.problem for p in report([failed], [], now=NOW, cfg=CFG)] == ["failed"]

