"""The verbs table (pure): every verb in every phase, and what it asks for."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from appliance import verbs
from appliance.errors import Conflict
from appliance.pullstate import PullState, PullStatus
from appliance.sessions import Desired, Phase, Rebuild, Session, SessionId
from appliance.verbs import Verb

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
C, R, S, A, D, F, K = (Phase.CREATING, Phase.RUNNING, Phase.STOPPED, Phase.ARCHIVED,
                       Phase.DELETING, Phase.FAILED, Phase.COMPLETED)

#: verb -> the phases that allow it. The one place a reader checks the API's behaviour.
TABLE: dict[Verb, set[Phase]] = {
    Verb.ARCHIVE: {R, S, A, K},
    Verb.UNARCHIVE: {A},
    Verb.START: {C, R, S},
    Verb.STOP: {R, S},
    Verb.RETRY: {F},
    Verb.DELETE: {C, R, S, A, D, F, K},
    Verb.ACCESS_MODE: {C, R, S, A, F, K},
    Verb.MESSAGE: {R},
    Verb.ATTACH: {R, S},
    Verb.CONSOLE: {R},
    Verb.INTERRUPT: {R},
    Verb.PUSH: {R, S, A, K},
    Verb.MERGE: {C, R, S, A, F, K},
    Verb.RESTART_AGENT: {R},
    Verb.RECREATE: {R, S, F},
    Verb.RECREATE_FRESH: {R, S, F},
    Verb.UPDATE_IMAGE: {R, S, F},
    Verb.EDIT: {C, R, S, A, F, K},
    Verb.RETITLE: {C, R, S, A, F, K},
}
OPEN = PullStatus(repo="o/r", branch="clauderon/flaky", number=7, state=PullState.OPEN)


def session(phase: Phase, backend_id: str | None = "c1",
            pull: PullStatus | None = OPEN) -> Session:
    return Session(id=SessionId("s1"), name="flaky", repo_path="/r", worktree_path="/w",
                   branch="clauderon/flaky", base_ref="main", image="img", phase=phase,
                   backend_id=backend_id, status_reason="boom", created_at=NOW, updated_at=NOW,
                   pull=pull)


@pytest.mark.parametrize("verb", list(Verb))
@pytest.mark.parametrize("phase", list(Phase))
def test_the_table(verb: Verb, phase: Phase) -> None:
    s = session(phase)
    if phase in TABLE[verb]:
        changes = verbs.changes_for(verb, s)
        assert changes.get("desired") == verbs.RULES[verb].desired or \
            verbs.RULES[verb].desired is None
    else:
        with pytest.raises(Conflict) as refused:
            verbs.changes_for(verb, s)
        assert "flaky" in refused.value.message and str(phase) in refused.value.message
        if phase is F:
            assert "(boom)" in refused.value.message  # why it failed is said too


def test_what_each_verb_asks_for() -> None:
    assert verbs.changes_for(Verb.RETRY, session(F)) == {
        "phase": C, "attempts": 0, "retry_at": None, "status_reason": None,
        "desired": Desired.RUNNING}
    assert verbs.changes_for(Verb.UNARCHIVE, session(A)) == {
        "archived_at": None, "desired": Desired.RUNNING}
    assert verbs.changes_for(Verb.DELETE, session(R)) == {
        "phase": D, "desired": Desired.DELETED}
    assert verbs.changes_for(Verb.ACCESS_MODE, session(R)) == {}
    assert verbs.changes_for(Verb.RECREATE_FRESH, session(R)) == {
        "attempts": 0, "retry_at": None, "rebuild": Rebuild.FRESH}
    assert {v for v, rule in verbs.RULES.items() if rule.revives} == {
        Verb.UNARCHIVE, Verb.RETRY, Verb.RECREATE, Verb.RECREATE_FRESH, Verb.UPDATE_IMAGE}


def test_merge_needs_an_open_pull_request() -> None:
    for pull in (None, PullStatus(repo="o/r", branch="b"),
                 PullStatus(repo="o/r", branch="b", number=7, state=PullState.MERGED)):
        with pytest.raises(Conflict) as refused:
            verbs.check(Verb.MERGE, session(R, pull=pull))
        assert "no open pull request" in refused.value.message
        assert "merge" not in verbs.allowed_verbs(session(R, pull=pull))
    assert "merge" in verbs.allowed_verbs(session(R))


def test_a_recreate_is_asked_for_once() -> None:
    busy = replace(session(R), rebuild=Rebuild.CONTAINER)
    for verb in (Verb.RECREATE, Verb.RECREATE_FRESH, Verb.UPDATE_IMAGE):
        with pytest.raises(Conflict, match="being recreated already"):
            verbs.check(verb, busy)


def test_every_recovery_verb_says_what_it_loses() -> None:
    for verb in (Verb.RESTART_AGENT, Verb.RECREATE, Verb.RECREATE_FRESH, Verb.UPDATE_IMAGE):
        assert len(verbs.RULES[verb].warning) > 40
    fresh = verbs.RULES[Verb.RECREATE_FRESH].warning
    assert "Discards uncommitted work" in fresh and "never deleted" in fresh


def test_a_live_verb_needs_a_workload() -> None:
    for verb in (Verb.MESSAGE, Verb.ATTACH, Verb.CONSOLE):
        with pytest.raises(Conflict):
            verbs.check(verb, session(R, backend_id=None))
