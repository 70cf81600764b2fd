"""The verbs table (pure): every verb in every phase, and what it asks for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from appliance import verbs
from appliance.errors import Conflict
from appliance.sessions import Desired, Phase, Session, SessionId
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
    Verb.EDIT: {C, R, S, A, F, K},
    Verb.RETITLE: {C, R, S, A, F, K},
}


def session(phase: Phase, backend_id: str | None = "c1") -> Session:
    return Session(id=SessionId("s1"), name="flaky", repo_path="/r", worktree_path="/w",
                   branch="clauderon/flaky", base_ref="main", image="img", phase=phase,
                   backend_id=backend_id, status_reason="boom", created_at=NOW, updated_at=NOW)


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
    assert {v for v, rule in verbs.RULES.items() if rule.revives} == {
        Verb.UNARCHIVE, Verb.RETRY}


def test_a_live_verb_needs_a_workload() -> None:
    for verb in (Verb.MESSAGE, Verb.ATTACH, Verb.CONSOLE):
        with pytest.raises(Conflict):
            verbs.check(verb, session(R, backend_id=None))
