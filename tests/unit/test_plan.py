"""The reconcile plan as playbooks: sessions and observed workloads in, actions out.

Each case builds the world with :func:`sess` and :func:`wl` and compares the plan, rendered
by :func:`rows`, with the expected list of ``(action, session, key fields...)`` rows, so a
failure shows a readable diff. The property tests at the end throw random worlds at
:func:`plan` and check the invariants the reconciler relies on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.backends.base import Observed, RunState
from appliance.reconcile.failures import backoff_seconds
from appliance.reconcile.plan import (
    _ORDER,
    SETTLED_PHASES,
    Action,
    Create,
    Delete,
    Mark,
    PlanSettings,
    Recreate,
    Remake,
    RemoveOrphan,
    RemoveWorkload,
    Rename,
    Start,
    Stop,
    SyncBranch,
    Tighten,
    plan,
)
from appliance.reconcile.reconcile_loop import lane, superseded
from appliance.sessions import (
    BackendKind,
    Desired,
    Phase,
    Rebuild,
    Session,
    SessionId,
    can_transition,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CFG = PlanSettings(max_attempts=3, stable_seconds=120.0)

RUNNING, STOPPED, DEAD = RunState.RUNNING, RunState.STOPPED, RunState.DEAD


# --- the playbook vocabulary -------------------------------------------------------
def sess(name: str, phase: Phase = Phase.RUNNING, desired: Desired = Desired.RUNNING, *,
         backend_id: str | None = None, attempts: int = 0,
         retry_at: datetime | None = None) -> Session:
    """A session whose id is ``id-<name>`` (so workloads can name their owner)."""
    return Session(
        id=SessionId(f"id-{name}"), name=name, repo_path="/src/app",
        worktree_path=f"/w/{name}", branch=f"clauderon/{name}", base_ref="main",
        image="img", phase=phase, desired=desired, backend_id=backend_id,
        attempts=attempts, retry_at=retry_at, created_at=NOW, updated_at=NOW,
    )


def wl(owner: str, backend_id: str, state: RunState = RUNNING, detail: str = "", *,
       name: str | None = None, kind: str = "docker") -> Observed:
    """A workload labelled for the session named ``owner`` (named as its id says unless
    ``name`` says otherwise)."""
    return Observed(session_id=f"id-{owner}", backend_id=backend_id,
                    name=name or f"clauderon-id-{owner}", state=state, image="img",
                    detail=detail, kind=kind)


Row = tuple[object, ...]


def row(a: Action) -> Row:
    match a:
        case RemoveOrphan(backend_id=bid, name=name):
            return ("RemoveOrphan", name, bid)
        case Delete(session=s, backend_ids=ids):
            return ("Delete", s.name, ids)
        case RemoveWorkload(session=s, backend_id=bid):
            return ("RemoveWorkload", s.name, bid)
        case Stop(session=s, backend_id=bid, then=then):
            return ("Stop", s.name, bid, f"then {then}")
        case Create(session=s, start=start, recreate=recreate):
            return ("Create", s.name, "start" if start else "no-start",
                    "recreate" if recreate else "first")
        case Start(session=s, backend_id=bid):
            return ("Start", s.name, bid)
        case Mark(session=s, phase=phase, backend_id=bid, reset_attempts=reset):
            return ("Mark", s.name, str(phase), bid) + (("reset",) if reset else ())
        case SyncBranch(session=s, tip=tip):
            return ("SyncBranch", s.name, tip)
        case Recreate(session=s, backend_ids=ids):
            return ("Recreate", s.name, ids)
        case Rename(session=s, backend_id=bid, old=old, name=name):
            return ("Rename", s.name, bid, old, name)
    raise AssertionError(f"unknown action {a!r}")


def rows(actions: Sequence[Action]) -> list[Row]:
    return [row(a) for a in actions]


def run(sessions: Sequence[Session], observed: Sequence[Observed] = (), *,
        busy: Sequence[str] = (), now: datetime = NOW) -> list[Row]:
    return rows(plan(sessions, observed, now=now, busy=busy, cfg=CFG))


# --- delete -------------------------------------------------------------------------
def test_delete_removes_every_workload_of_the_session() -> None:
    s = sess("a", Phase.DELETING, Desired.DELETED)
    assert run([s], [wl("a", "c1"), wl("a", "c2", STOPPED)]) == [
        ("Delete", "a", ("c1", "c2")),
    ]


def test_delete_with_no_workload_still_deletes() -> None:
    assert run([sess("a", Phase.DELETING, Desired.DELETED)]) == [("Delete", "a", ())]


def test_delete_wins_over_failed_and_back_off() -> None:
    s = sess("a", Phase.FAILED, Desired.DELETED, retry_at=NOW + timedelta(hours=1))
    assert run([s], [wl("a", "c1")]) == [("Delete", "a", ("c1",))]


def test_deleting_phase_without_delete_desired_is_left_alone() -> None:
    assert run([sess("a", Phase.DELETING, Desired.RUNNING)], [wl("a", "c1")]) == []


# --- a workspace folder gone --------------------------------------------------------
def test_a_session_whose_workspace_is_gone_has_its_container_made_again() -> None:
    """Its workloads go (the container holds a mount of nothing); the next pass, seeing no
    workload, recreates it, which makes the workspace again from the branch."""
    def gone(s: Session, seen: list[Observed]) -> list[Row]:
        return rows(plan([s], seen, now=NOW, cfg=CFG, missing={"id-a"}))

    running = sess("a", backend_id="c1")
    assert gone(running, [wl("a", "c1"), wl("a", "c2", STOPPED)]) == [
        ("RemoveWorkload", "a", "c1"), ("RemoveWorkload", "a", "c2")]
    assert gone(running, []) == [("Create", "a", "start", "recreate")]
    stopped = sess("a", Phase.STOPPED, Desired.STOPPED, backend_id="c1")
    assert gone(stopped, [wl("a", "c1", STOPPED)]) == [("RemoveWorkload", "a", "c1")]
    # A delete wins; a create under way owns its workspace; nothing in flight is touched.
    assert gone(sess("a", Phase.DELETING, Desired.DELETED), [wl("a", "c1")]) == [
        ("Delete", "a", ("c1",))]
    assert gone(sess("a", Phase.CREATING), [wl("a", "c1")]) == [
        ("Mark", "a", "running", "c1", "reset")]
    assert rows(plan([running], [wl("a", "c1")], now=NOW, cfg=CFG, busy={"id-a"},
                     missing={"id-a"})) == []


@pytest.mark.parametrize(("phase", "desired", "settled"), [
    (Phase.RUNNING, Desired.RUNNING, True),
    (Phase.STOPPED, Desired.STOPPED, True),
    (Phase.ARCHIVED, Desired.ARCHIVED, True),
    (Phase.COMPLETED, Desired.COMPLETED, True),
    (Phase.CREATING, Desired.RUNNING, False),
    (Phase.FAILED, Desired.RUNNING, False),
    (Phase.DELETING, Desired.DELETED, False),
])
def test_a_gone_workspace_is_looked_for_where_it_is_acted_on(
        phase: Phase, desired: Desired, settled: bool) -> None:
    """The phases whose folders the reconciler reads (``SETTLED_PHASES``) are the phases
    whose missing folder gets its workloads removed: a completed session is one of them."""
    s = sess("a", phase, desired, backend_id="c1")
    seen = [wl("a", "c1", STOPPED)]
    acted = rows(plan([s], seen, now=NOW, cfg=CFG, missing={"id-a"}))
    assert (phase in SETTLED_PHASES) is settled
    if settled:
        assert acted == [("RemoveWorkload", "a", "c1")]
    else:
        assert acted == rows(plan([s], seen, now=NOW, cfg=CFG, missing=set()))


# --- a person's recreate -------------------------------------------------------------
@pytest.mark.parametrize("kind", list(Rebuild))
def test_a_recreate_a_person_asked_for(kind: Rebuild) -> None:
    """Whatever is there goes; then the normal create (a failed session's, a stopped one's,
    one whose container vanished or waits out a back-off)."""
    for phase, desired, seen in ((Phase.RUNNING, Desired.RUNNING, [wl("a", "c1")]),
                                 (Phase.STOPPED, Desired.STOPPED, [wl("a", "c1", STOPPED)]),
                                 (Phase.FAILED, Desired.RUNNING, []),
                                 (Phase.RUNNING, Desired.RUNNING, [wl("a", "c1", DEAD),
                                                                   wl("a", "c2")])):
        s = replace(sess("a", phase, desired, backend_id="c1",
                         retry_at=NOW + timedelta(hours=1)), rebuild=kind)
        ids = tuple(w.backend_id for w in seen)
        assert run([s], seen) == [("Recreate", "a", ids)], (phase, seen)


def test_a_recreate_waits_for_a_delete_and_for_its_own_create() -> None:
    s = replace(sess("a", Phase.RUNNING, Desired.DELETED), rebuild=Rebuild.FRESH)
    assert run([s], [wl("a", "c1")]) == [("Delete", "a", ("c1",))]
    creating = replace(sess("a", Phase.CREATING), rebuild=Rebuild.CONTAINER)
    assert run([creating]) == [("Create", "a", "start", "first")]
    assert run([replace(sess("a"), rebuild=Rebuild.CONTAINER)], [wl("a", "c1")],
               busy=["id-a"]) == []


# --- create and recreate ------------------------------------------------------------
def test_first_create_starts_when_running_is_wanted() -> None:
    assert run([sess("a", Phase.CREATING)]) == [("Create", "a", "start", "first")]


def test_first_create_of_a_stopped_session_does_not_start() -> None:
    assert run([sess("a", Phase.CREATING, Desired.STOPPED)]) == [
        ("Create", "a", "no-start", "first"),
    ]


@pytest.mark.parametrize(("phase", "desired", "start"), [
    (Phase.RUNNING, Desired.RUNNING, "start"),
    (Phase.STOPPED, Desired.RUNNING, "start"),
    (Phase.ARCHIVED, Desired.RUNNING, "start"),  # unarchive after the container vanished
    (Phase.STOPPED, Desired.STOPPED, "no-start"),
    (Phase.RUNNING, Desired.STOPPED, "no-start"),
])
def test_vanished_workload_is_recreated(phase: Phase, desired: Desired, start: str) -> None:
    assert run([sess("a", phase, desired, backend_id="old")]) == [
        ("Create", "a", start, "recreate"),
    ]


def test_back_off_over_then_recreated() -> None:
    s = sess("a", Phase.RUNNING, attempts=1, retry_at=NOW - timedelta(seconds=1))
    assert run([s]) == [("Create", "a", "start", "recreate")]


def test_back_off_ends_exactly_at_retry_at() -> None:
    s = sess("a", Phase.RUNNING, attempts=1, retry_at=NOW)
    assert run([s]) == [("Create", "a", "start", "recreate")]


@pytest.mark.parametrize("phase", [Phase.RUNNING, Phase.STOPPED, Phase.ARCHIVED])
def test_recreate_gives_up_after_max_attempts(phase: Phase) -> None:
    s = sess("a", phase, attempts=CFG.max_attempts, retry_at=NOW - timedelta(seconds=1))
    actions = plan([s], [], now=NOW, cfg=CFG)
    assert rows(actions) == [("Mark", "a", "failed", None)]
    assert isinstance(actions[0], Mark)
    assert f"{CFG.max_attempts} attempts" in (actions[0].reason or "")


def test_recreate_below_max_attempts_goes_on() -> None:
    s = sess("a", attempts=CFG.max_attempts - 1)
    assert run([s]) == [("Create", "a", "start", "recreate")]


# --- start, agent exited ------------------------------------------------------------
@pytest.mark.parametrize("phase", [Phase.STOPPED, Phase.CREATING, Phase.ARCHIVED])
def test_stopped_workload_wanted_running_is_started(phase: Phase) -> None:
    assert run([sess("a", phase, backend_id="c1")], [wl("a", "c1", STOPPED)]) == [
        ("Start", "a", "c1"),
    ]


def test_agent_exited_marks_stopped_instead_of_restarting() -> None:
    s = sess("a", Phase.RUNNING, backend_id="c1")
    actions = plan([s], [wl("a", "c1", STOPPED, detail="exited (0)")], now=NOW, cfg=CFG)
    assert rows(actions) == [("Mark", "a", "stopped", "c1")]
    mark = actions[0]
    assert isinstance(mark, Mark)
    assert mark.reason == "the container stopped (exited (0))"


def test_a_container_made_for_a_running_session_that_never_started_is_started() -> None:
    """A remake cut short between its create and its start: the session still names the
    removed container; the new one was never its agent's, so nothing exited."""
    s = sess("a", Phase.RUNNING, backend_id="old")
    assert run([s], [wl("a", "new", STOPPED, detail="Created")]) == [("Start", "a", "new")]
    assert run([replace(s, backend_id=None)], [wl("a", "new", STOPPED)]) == [
        ("Start", "a", "new")]


def test_agent_exited_without_detail_says_exited() -> None:
    actions = plan([sess("a", backend_id="c1")], [wl("a", "c1", STOPPED)], now=NOW, cfg=CFG)
    assert isinstance(actions[0], Mark)
    assert actions[0].reason == "the container stopped (exited)"


def test_agent_exit_is_not_restarted_on_the_next_pass() -> None:
    """Pass 1 records the exit; pass 2, on what pass 1 wrote, must not start it again.

    Only a person (``clauderon start`` / ``attach``) brings an exited agent back, so the
    exit has to be written as what is now wanted: otherwise the next pass sees "stopped,
    wanted running" -- the very state ``start`` produces -- and restarts it, forever.
    """
    s = sess("a", Phase.RUNNING, backend_id="c1")
    observed = [wl("a", "c1", STOPPED, detail="exited (0)")]
    [mark] = plan([s], observed, now=NOW, cfg=CFG)
    assert isinstance(mark, Mark)
    assert mark.desired is Desired.STOPPED  # type: ignore[attr-defined]
    written = replace(s, phase=mark.phase, desired=mark.desired,  # type: ignore[attr-defined]
                      backend_id=mark.backend_id, status_reason=mark.reason)
    assert run([written], observed) == []
    # A person's `start` afterwards sets desired=running: now it is started.
    assert run([replace(written, desired=Desired.RUNNING)], observed) == [("Start", "a", "c1")]


# --- mark running -------------------------------------------------------------------
def test_first_running_observation_marks_running_and_resets_attempts() -> None:
    assert run([sess("a", Phase.CREATING)], [wl("a", "c1")]) == [
        ("Mark", "a", "running", "c1", "reset"),
    ]


@pytest.mark.parametrize("phase", [Phase.STOPPED, Phase.ARCHIVED])
def test_running_workload_marks_a_lagging_phase(phase: Phase) -> None:
    assert run([sess("a", phase, backend_id="c1")], [wl("a", "c1")]) == [
        ("Mark", "a", "running", "c1"),
    ]


def test_new_backend_id_is_written_back() -> None:
    assert run([sess("a", backend_id="old")], [wl("a", "new")]) == [
        ("Mark", "a", "running", "new"),
    ]


def test_in_sync_running_session_needs_nothing() -> None:
    assert run([sess("a", backend_id="c1")], [wl("a", "c1")]) == []


# --- a container named after its session (made before names were ids) ---------------
def test_a_container_named_after_its_session_is_renamed_once_settled() -> None:
    old = wl("a", "c1", name="clauderon-a")
    assert run([sess("a", backend_id="c1")], [old]) == [
        ("Rename", "a", "c1", "clauderon-a", "clauderon-id-a"),
    ]
    stopped = wl("a", "c1", STOPPED, name="clauderon-a")
    assert run([sess("a", Phase.STOPPED, Desired.STOPPED, backend_id="c1")], [stopped]) == [
        ("Rename", "a", "c1", "clauderon-a", "clauderon-id-a"),
    ]
    # Found by its label all the same: adopted (or started) first, renamed on a later pass.
    assert run([sess("a", Phase.CREATING)], [old]) == [("Mark", "a", "running", "c1", "reset")]
    assert run([sess("a", Phase.STOPPED, backend_id="c1")], [stopped]) == [
        ("Start", "a", "c1")]
    assert run([sess("a", backend_id="c1")], [old], busy=["id-a"]) == []


def test_a_pod_keeps_the_sessions_name() -> None:
    pod = replace(sess("a", backend_id="p1"), backend=BackendKind.KUBERNETES)
    assert run([pod], [wl("a", "p1", name="clauderon-a", kind="kubernetes")]) == []


# --- stop, archive ------------------------------------------------------------------
@pytest.mark.parametrize(("desired", "then"), [
    (Desired.STOPPED, "then stopped"), (Desired.ARCHIVED, "then archived"),
])
def test_running_workload_is_stopped(desired: Desired, then: str) -> None:
    assert run([sess("a", Phase.RUNNING, desired, backend_id="c1")], [wl("a", "c1")]) == [
        ("Stop", "a", "c1", then),
    ]


def test_stopped_workload_wanted_stopped_marks_stopped() -> None:
    assert run([sess("a", Phase.RUNNING, Desired.STOPPED, backend_id="c1")],
               [wl("a", "c1", STOPPED)]) == [("Mark", "a", "stopped", "c1")]


def test_stopped_and_in_sync_needs_nothing() -> None:
    assert run([sess("a", Phase.STOPPED, Desired.STOPPED, backend_id="c1")],
               [wl("a", "c1", STOPPED)]) == []


def test_stopped_workload_wanted_archived_marks_archived() -> None:
    assert run([sess("a", Phase.STOPPED, Desired.ARCHIVED, backend_id="c1")],
               [wl("a", "c1", STOPPED)]) == [("Mark", "a", "archived", "c1")]


def test_archived_with_no_workload_is_marked_not_created() -> None:
    assert run([sess("a", Phase.STOPPED, Desired.ARCHIVED, backend_id="c1")]) == [
        ("Mark", "a", "archived", None),
    ]


def test_archived_and_in_sync_needs_nothing() -> None:
    assert run([sess("a", Phase.ARCHIVED, Desired.ARCHIVED)]) == []
    assert run([sess("a", Phase.ARCHIVED, Desired.ARCHIVED, backend_id="c1")],
               [wl("a", "c1", STOPPED)]) == []


# --- failed, orphans, duplicates, dead ----------------------------------------------
def test_failed_session_leftovers_are_removed() -> None:
    s = sess("a", Phase.FAILED, backend_id="c1")
    assert run([s], [wl("a", "c1"), wl("a", "c2", STOPPED)]) == [
        ("RemoveWorkload", "a", "c2"), ("RemoveWorkload", "a", "c1"),
    ]


def test_failed_session_without_workloads_needs_nothing() -> None:
    assert run([sess("a", Phase.FAILED)]) == []


def test_orphans_are_removed() -> None:
    assert run([sess("a", backend_id="c1")], [wl("a", "c1"), wl("ghost", "g1", STOPPED)]) == [
        ("RemoveOrphan", "clauderon-id-ghost", "g1"),
    ]


def test_duplicates_keep_the_running_one() -> None:
    s = sess("a", backend_id="c2")
    assert run([s], [wl("a", "c1", STOPPED), wl("a", "c2"), wl("a", "c3", STOPPED)]) == [
        ("RemoveWorkload", "a", "c1"), ("RemoveWorkload", "a", "c3"),
    ]


def test_duplicates_none_running_keep_the_first() -> None:
    s = sess("a", Phase.STOPPED, Desired.STOPPED, backend_id="c1")
    assert run([s], [wl("a", "c1", STOPPED), wl("a", "c2", STOPPED)]) == [
        ("RemoveWorkload", "a", "c2"),
    ]


def test_dead_workload_is_waited_for() -> None:
    assert run([sess("a", backend_id="c1")], [wl("a", "c1", DEAD)]) == []


# --- busy and back-off ----------------------------------------------------------------
def test_busy_sessions_are_skipped() -> None:
    sessions = [sess("a", Phase.CREATING), sess("b", Phase.RUNNING, Desired.STOPPED,
                                                 backend_id="b1")]
    observed = [wl("b", "b1"), wl("b", "b2")]
    assert run(sessions, observed, busy=["id-a", "id-b"]) == []
    assert run(sessions, observed, busy=["id-a"]) == [
        ("RemoveWorkload", "b", "b2"), ("Stop", "b", "b1", "then stopped"),
    ]


def test_workloads_of_a_busy_unknown_session_are_not_orphans() -> None:
    # The session row is being created or deleted right now.
    assert run([], [wl("new", "n1")], busy=["id-new"]) == []


@pytest.mark.parametrize(("phase", "observed"), [
    (Phase.RUNNING, []),
    (Phase.STOPPED, [wl("a", "c1", STOPPED)]),
    (Phase.CREATING, [wl("a", "c1")]),
])
def test_waiting_out_a_back_off_is_skipped(phase: Phase, observed: list[Observed]) -> None:
    s = sess("a", phase, attempts=1, retry_at=NOW + timedelta(seconds=30))
    assert run([s], observed) == []


# --- stable reset -------------------------------------------------------------------
def test_stable_for_long_enough_resets_attempts() -> None:
    s = sess("a", backend_id="c1", attempts=2,
             retry_at=NOW - timedelta(seconds=CFG.stable_seconds + 1))
    assert run([s], [wl("a", "c1")]) == [("Mark", "a", "running", "c1", "reset")]


def test_not_yet_stable_keeps_attempts() -> None:
    s = sess("a", backend_id="c1", attempts=2,
             retry_at=NOW - timedelta(seconds=CFG.stable_seconds - 1))
    assert run([s], [wl("a", "c1")]) == []


def test_no_attempts_nothing_to_reset() -> None:
    s = sess("a", backend_id="c1", retry_at=NOW - timedelta(days=1))
    assert run([s], [wl("a", "c1")]) == []


# --- ordering -----------------------------------------------------------------------
def test_deletes_before_stops_before_creates_before_marks() -> None:
    sessions = [
        sess("mark", Phase.STOPPED, backend_id="m1"),
        sess("create", Phase.CREATING),
        sess("stop", Phase.RUNNING, Desired.STOPPED, backend_id="s1"),
        sess("start", Phase.STOPPED, backend_id="t1"),
        sess("del", Phase.DELETING, Desired.DELETED),
    ]
    observed = [wl("mark", "m1"), wl("stop", "s1"), wl("start", "t1", STOPPED),
                wl("del", "d1"), wl("orphan", "o1")]
    assert run(sessions, observed) == [
        ("RemoveOrphan", "clauderon-id-orphan", "o1"),
        ("Delete", "del", ("d1",)),
        ("Stop", "stop", "s1", "then stopped"),
        ("Create", "create", "start", "first"),
        ("Start", "start", "t1"),
        ("Mark", "mark", "running", "m1"),
    ]


# --- back-off -----------------------------------------------------------------------
@pytest.mark.parametrize(("attempt", "expected"), [
    (-1, 0.0), (0, 0.0), (1, 30.0), (2, 60.0), (3, 120.0), (4, 240.0), (5, 300.0), (50, 300.0),
])
def test_backoff_seconds(attempt: int, expected: float) -> None:
    assert backoff_seconds(attempt, 30.0, 300.0) == expected


# --- properties ---------------------------------------------------------------------
def _session_id(a: Action) -> str | None:
    return None if isinstance(a, RemoveOrphan) else a.session.id


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[Session], list[Observed], set[str], datetime]:
    names = draw(st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=6))
    sessions = []
    for name in names:
        phase = draw(st.sampled_from(Phase))
        desired = draw(st.sampled_from(Desired))
        offset = draw(st.none() | st.integers(-600, 600))
        sessions.append(sess(
            name, phase, desired,
            backend_id=draw(st.none() | st.sampled_from(["c0", "c1", "c2"])),
            attempts=draw(st.integers(0, 4)),
            retry_at=None if offset is None else NOW + timedelta(seconds=offset),
        ))
    owners = [*names, "x", "y"]  # x and y own no session: orphans
    observed = [
        wl(owner, f"{owner}-{i}", draw(st.sampled_from(RunState)),
           name=draw(st.sampled_from([None, f"clauderon-{owner}"])))  # an id's, or the old
        for i, owner in enumerate(draw(st.lists(st.sampled_from(owners), max_size=10)))
    ]
    busy = set(draw(st.lists(st.sampled_from([f"id-{o}" for o in owners]), max_size=4)))
    return sessions, observed, busy, NOW


@settings(max_examples=400)
@given(worlds())
def test_plan_invariants(world: tuple[list[Session], list[Observed], set[str], datetime]) -> None:
    sessions, observed, busy, now = world
    actions = plan(sessions, observed, now=now, busy=busy, cfg=CFG)

    # Deterministic: the same world gives the same plan.
    assert actions == plan(sessions, observed, now=now, busy=busy, cfg=CFG)
    # At most one decision per session; only duplicate removals come on top.
    decisions = Counter(_session_id(a) for a in actions if not isinstance(
        a, (RemoveWorkload, RemoveOrphan)))
    assert all(n == 1 for n in decisions.values()), rows(actions)
    # A busy session (or a busy id with no row yet) is never touched.
    owner = {w.backend_id: w.session_id for w in observed}
    for a in actions:
        assert _session_id(a) not in busy
        if isinstance(a, RemoveOrphan):
            assert owner[a.backend_id] not in busy
            assert owner[a.backend_id] not in {s.id for s in sessions}
    # Every backend id acted on is observed and belongs to the session acted for.
    for a in actions:
        if isinstance(a, (RemoveWorkload, Stop, Start, Rename)):
            assert owner[a.backend_id] == a.session.id
        if isinstance(a, Mark) and a.backend_id is not None:
            assert owner[a.backend_id] == a.session.id
        if isinstance(a, Delete):
            assert set(a.backend_ids) == {b for b, sid in owner.items() if sid == a.session.id}
    # Nothing removed is also used.
    removed = {a.backend_id for a in actions if isinstance(a, RemoveWorkload)}
    used = {a.backend_id for a in actions if isinstance(a, (Stop, Start, Mark, Rename))}
    assert not removed & used
    # Frees come first, then stops, then creates and starts, then marks.
    order = [_ORDER[type(a)] for a in actions]
    assert order == sorted(order)


@settings(max_examples=400)
@given(worlds())
def test_plan_asks_only_for_legal_phase_changes(
    world: tuple[list[Session], list[Observed], set[str], datetime],
) -> None:
    sessions, observed, busy, now = world
    # Only worlds the API can produce: a session is archived only from running or stopped.
    sessions = [s for s in sessions
                if not (s.desired is Desired.ARCHIVED and s.phase is Phase.CREATING)]
    for a in plan(sessions, observed, now=now, busy=busy, cfg=CFG):
        if isinstance(a, Mark):
            assert can_transition(a.session.phase, a.phase), row(a)
        if isinstance(a, Stop):
            assert can_transition(a.session.phase, a.then), row(a)


# --- bringing the session branch into the user's repository -------------------------
def test_a_moved_branch_is_brought_in_once_nothing_else_is_to_do() -> None:
    a, b, c = sess("a", backend_id="c1"), sess("b", backend_id="c2"), sess("c", backend_id="c3")
    world = [wl("a", "c1"), wl("b", "c2", STOPPED), wl("c", "c3")]
    tips = {"id-a": "1" * 40, "id-b": "2" * 40, "id-c": "3" * 40}
    synced = {"id-c": "3" * 40}
    got = rows(plan([a, b, c], world, now=NOW, cfg=CFG, tips=tips, synced=synced))
    # b has work to do first (its container stopped on its own); c is already in.
    assert got == [("Mark", "b", "stopped", "c2"), ("SyncBranch", "a", "1" * 40)]


@pytest.mark.parametrize("phase, desired", [
    (Phase.CREATING, Desired.RUNNING), (Phase.FAILED, Desired.RUNNING),
    (Phase.DELETING, Desired.DELETED), (Phase.RUNNING, Desired.DELETED)])
def test_no_sync_while_creating_failing_or_deleting(phase: Phase, desired: Desired) -> None:
    s = sess("a", phase, desired, backend_id="c1")
    got = plan([s], [wl("a", "c1")], now=NOW, cfg=CFG, tips={"id-a": "1" * 40})
    assert not any(isinstance(x, SyncBranch) for x in got)


def test_no_sync_without_a_readable_tip_or_when_busy() -> None:
    s = sess("a", backend_id="c1")
    assert plan([s], [wl("a", "c1")], now=NOW, cfg=CFG, tips={"id-a": None}) == []
    assert plan([s], [wl("a", "c1")], now=NOW, cfg=CFG, busy=["id-a"],
                tips={"id-a": "1" * 40}) == []


def test_syncs_wait_in_a_lane_of_their_own_and_a_waiting_one_gives_way() -> None:
    """An agent can hold its sync's read for host git's whole timeout: no other action
    waits behind it, and a sync still waiting behind others' gives way to whatever is
    wanted of its session now (the session is busy while it waits)."""
    s = sess("a")
    sync = SyncBranch(session=s, tip="c" * 40)
    create = Create(session=s, start=True, recreate=False)
    assert lane(sync) == "sync"
    assert {lane(a) for a in (create, Delete(session=s, backend_ids=()),
                              Start(session=s, backend_id="b"))} == {"ops"}
    deleted = replace(s, desired=Desired.DELETED)
    stopped = replace(s, desired=Desired.STOPPED)
    assert superseded(sync, deleted, waiting=True) == "it is wanted deleted now"
    assert superseded(sync, stopped, waiting=True) == "it is wanted stopped now"
    assert superseded(sync, s, waiting=True) is None  # nothing else is wanted
    assert superseded(sync, deleted, waiting=False) is None  # under way: it ends itself
    assert superseded(create, deleted, waiting=False) == "it was deleted"
    remake = Remake(session=s, backend_id="b", reason="made by an older version")
    assert superseded(remake, deleted, waiting=False) == "it was deleted"
    assert superseded(remake, stopped, waiting=False) is None
    assert superseded(create, s, waiting=True) is None
    assert superseded(Start(session=s, backend_id="b"), deleted, waiting=True) is None


# --- a running workload made before today's containment ------------------------------
LATER = NOW + timedelta(seconds=30)


@pytest.mark.parametrize(("s", "uncontained", "loose", "want"), [
    # The policy is replaced at once, even while the session waits out a back-off.
    (sess("a", backend_id="b1", attempts=1, retry_at=LATER), "", "policy", [Tighten]),
    (sess("a", backend_id="b1"), "old pod", "policy", [Tighten]),  # the policy first
    (sess("a", backend_id="b1"), "old pod", "", [Remake]),
    (sess("a", backend_id="b1", attempts=1, retry_at=LATER), "old pod", "", []),  # backs off
    (sess("a", backend_id="b1", attempts=3, retry_at=NOW - timedelta(seconds=1)),
     "old pod", "", [Mark]),  # gave up: no loop, the session fails
    (sess("a", Phase.STOPPED, Desired.STOPPED, backend_id="b1"), "old pod", "", [Stop]),
    (sess("a", backend_id="b1"), "", "", []),
])
@pytest.mark.parametrize("kind", ["kubernetes", "docker"])  # one rule for both
def test_a_workload_without_todays_containment(s: Session, uncontained: str, loose: str,
                                               want: list[type], kind: str) -> None:
    w = replace(wl("a", "b1", kind=kind), uncontained=uncontained, loose=loose)
    actions = plan([s], [w], now=NOW, cfg=CFG)
    assert [type(a) for a in actions] == want, actions
    for a in actions:
        if isinstance(a, Mark):
            assert a.phase is Phase.FAILED and "old pod" in (a.reason or ""), a
        if isinstance(a, Remake):
            assert a.reason == "old pod"
