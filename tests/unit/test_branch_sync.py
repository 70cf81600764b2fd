"""When a session's branch is due to be brought in again (pure: times are given)."""

from __future__ import annotations

from appliance.reconcile.sync import MIN_GAP_SECONDS, RETRY_SECONDS, BranchSync


def test_an_agent_committing_in_a_loop_gets_one_sync_a_gap() -> None:
    b = BranchSync()
    assert b.due(0.0, {"a": "t1", "b": None}) == {}  # never synced: both due (b has no tip)
    b.begin("a", 10.0)
    b.synced["a"] = "t1"
    # New commits under the gap: counted as in step, so the plan makes no SyncBranch.
    assert b.due(10.0 + MIN_GAP_SECONDS / 2, {"a": "t2"}) == {"a": "t2"}
    assert b.due(10.0 + MIN_GAP_SECONDS / 2, {"a": "t3"}) == {"a": "t3"}
    # The gap over: what was brought in last is what the plan compares again.
    assert b.due(10.0 + MIN_GAP_SECONDS, {"a": "t3"}) == {"a": "t1"}
    b.forget("a")
    assert b.due(10.1, {"a": "t3"}) == {}


def test_a_failed_sync_waits_its_retry_then_is_due() -> None:
    b = BranchSync()
    b.begin("a", 0.0)
    b.synced["a"] = "bad"
    b._retry_at["a"] = RETRY_SECONDS
    assert b.due(RETRY_SECONDS - 1, {"a": "bad"}) == {"a": "bad"}
    assert b.due(RETRY_SECONDS, {"a": "bad"}) == {}
