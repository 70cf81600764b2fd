"""The Session record: the phase transition table, name rules and the public JSON view."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from appliance.errors import Conflict, InvalidInput
from appliance.sessions import (
    NAME_MAX,
    BackendKind,
    Phase,
    Session,
    SessionId,
    branch_for,
    can_transition,
    check_transition,
    container_name_for,
    docker_name_for,
    utcnow,
    validate_name,
)

C, R, S, A, D, F, K = (Phase.CREATING, Phase.RUNNING, Phase.STOPPED, Phase.ARCHIVED,
                       Phase.DELETING, Phase.FAILED, Phase.COMPLETED)

#: The legal phase changes, written out by hand from the lifecycle in DESIGN.md:
#:   creating -> running <-> stopped; running | stopped -> archived -> running;
#:   any -> deleting; any but deleting -> failed; failed -> creating (retry); running | stopped ->
#:   creating (a person's recreate); a print session's agent done: creating | running |
#:   stopped | archived -> completed -> archived | deleting. Staying put is always legal.
EXPECTED: dict[Phase, set[Phase]] = {
    C: {C, R, S, D, F, K},
    R: {R, S, A, D, F, C, K},
    S: {S, R, A, D, F, C, K},
    A: {A, R, S, D, F, K},
    D: {D},
    F: {F, C, D},
    K: {K, A, D},
}


def test_the_expected_table_covers_every_phase() -> None:
    assert set(EXPECTED) == set(Phase)


@pytest.mark.parametrize(("old", "new"), list(itertools.product(Phase, Phase)),
                         ids=str)
def test_transition_matrix(old: Phase, new: Phase) -> None:
    allowed = new in EXPECTED[old]
    assert can_transition(old, new) is allowed
    if allowed:
        check_transition(old, new)
    else:
        with pytest.raises(Conflict) as info:
            check_transition(old, new)
        assert str(old) in info.value.message
        assert str(new) in info.value.message


@pytest.mark.parametrize(("old", "new"), [
    (D, R), (D, C), (D, S), (D, A),   # a deleting session never comes back
    (F, R), (F, S), (F, A),           # a failed one is retried (creating) or deleted
    (C, A),                           # nothing to archive yet
    (A, C),                           # creating: a retry, or a recreate of a live one
    (K, R), (K, S), (K, C), (K, F),   # a completed session never runs again as itself
    (D, K), (F, K),                   # nor is anything but a live one completed
])
def test_sample_of_forbidden_transitions(old: Phase, new: Phase) -> None:
    with pytest.raises(Conflict):
        check_transition(old, new)


@pytest.mark.parametrize("name", [
    "a", "0", "fix-flaky-test", "a1-b2-c3", "x" * NAME_MAX, "9lives", "a--b",
])
def test_good_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", [
    "",
    "x" * (NAME_MAX + 1),
    "Fix",
    "fix_flaky",
    "-fix",
    "fix-",
    "-",
    "fix/flaky",
    "fix.flaky",
    "..",
    "fix flaky",
    "fïx",
    "fix\n",
])
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_name(name)
    assert info.value.field == "name"
    assert info.value.to_json()["field"] == "name"


def test_too_long_name_message_gives_the_limit() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_name("y" * 41)
    assert "41" in info.value.message
    assert str(NAME_MAX) in info.value.message


def test_branch_and_container_names() -> None:
    assert branch_for("flaky") == "clauderon/flaky"
    assert container_name_for("flaky") == "clauderon-flaky"
    assert docker_name_for("0b8f6a7e") == "clauderon-0b8f6a7e"


def test_a_docker_container_is_named_by_id_a_pod_by_name() -> None:
    """The engine's name of a Docker container is all its neighbours on the sessions'
    network can learn of it (the engine's DNS answers it): the id, never the name."""
    now = utcnow()
    s = Session(id=SessionId("0b8f6a7e-0000-4000-8000-000000000001"), name="secret-plan",
                repo_path="/src/app", worktree_path="/w/secret-plan",
                branch="clauderon/secret-plan", base_ref="main", image="img",
                created_at=now, updated_at=now)
    assert s.workload_name == "clauderon-0b8f6a7e-0000-4000-8000-000000000001"
    pod = replace(s, backend=BackendKind.KUBERNETES)
    assert pod.workload_name == pod.container_name == "clauderon-secret-plan"
