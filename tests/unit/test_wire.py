"""The wire model (pure): the JSON every client gets matches the schema it is typed by, and
the derived fields (filters, actions) say the same as the rules they come from."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance import sessions, verbs, wire
from appliance.agents.logs import Kind, Message
from appliance.errors import Conflict, InvalidInput
from appliance.sessions import AccessMode, Agent, AgentStatus, Desired, Phase, Session, SessionId
from appliance.store import Event

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def session(**changes: object) -> Session:
    base: dict[str, object] = dict(
        id=SessionId("0b8f6a7e-0000-4000-8000-000000000001"), name="flaky",
        repo_path="/src/app", worktree_path="/home/x/.clauderon/worktrees/flaky",
        branch="clauderon/flaky", base_ref="main", image="debian:bookworm-slim",
        proxy_token_hash="a" * 64, hook_token_hash="b" * 64, created_at=NOW, updated_at=NOW,
        retry_at=NOW)
    base.update(changes)
    return Session(**base)  # type: ignore[arg-type]


def test_no_token_digest_ever_leaves() -> None:
    s = session()
    body = wire.session_json(s)
    assert "proxy_token_hash" not in body and "hook_token_hash" not in body
    assert s.proxy_token_hash not in repr(body) and s.hook_token_hash not in repr(body)


def test_an_events_view_is_the_sessions_less_its_prompt() -> None:
    s = session(initial_prompt="\U0001F600" * 100_000)
    full, seen = wire.session_json(s), wire.event_session_json(s)
    assert "initial_prompt" not in seen
    assert seen == {k: v for k, v in full.items() if k != "initial_prompt"}
    assert len(json.dumps(seen)) < 8192 < len(json.dumps(full))


def test_every_other_field_is_there_as_plain_json() -> None:
    body = wire.session_json(session())
    assert {f.name for f in fields(Session)} - {"proxy_token_hash", "hook_token_hash"} \
        <= set(body)
    # A Docker container is named by the session's id (its name is the agent's task, and
    # the engine's DNS tells it to every neighbour); a pod keeps the session's name.
    assert body["container_name"] == "clauderon-0b8f6a7e-0000-4000-8000-000000000001"
    assert "flaky" not in body["container_name"]
    pod = wire.session_json(session(backend=sessions.BackendKind.KUBERNETES))
    assert pod["container_name"] == "clauderon-flaky"
    assert body["created_at"] == "2024-05-01T12:00:00+00:00" and body["archived_at"] is None
    for name, value in body.items():
        if name not in ("filters", "actions", "extra_repos", "github_repos"):
            assert value is None or type(value) in (str, int, float, bool), name
    assert body["extra_repos"] == [] and body["github_repos"] == []


@given(phase=st.sampled_from(Phase), desired=st.sampled_from(Desired),
       status=st.sampled_from(AgentStatus), agent=st.sampled_from(Agent),
       mode=st.sampled_from(AccessMode), cpu=st.none() | st.floats(0.1, 64),
       backend_id=st.none() | st.text(min_size=1, max_size=64),
       reason=st.none() | st.text(max_size=200))
def test_every_session_matches_its_schema(phase: Phase, desired: Desired, status: AgentStatus,
                                          agent: Agent, mode: AccessMode, cpu: float | None,
                                          backend_id: str | None, reason: str | None) -> None:
    s = session(phase=phase, desired=desired, agent_status=status, agent=agent,
                access_mode=mode, cpu=cpu, backend_id=backend_id, status_reason=reason)
    jsonschema.validate(wire.session_json(s), wire.SCHEMAS["Session"])


def test_events_errors_and_messages_match_their_schemas() -> None:
    event = Event(id=3, ts="2024-05-01T12:00:00Z", session_id=None, kind="progress",
                  payload={"step": "worktree"})
    jsonschema.validate(event.to_json(), wire.SCHEMAS["Event"])
    jsonschema.validate(InvalidInput("bad", field="name").to_json(), wire.SCHEMAS["Error"])
    jsonschema.validate(Conflict("taken").to_json(), wire.SCHEMAS["Error"])
    for m in (Message(kind=Kind.USER, text="hi"),
              Message(kind=Kind.PLAN, tool="TodoWrite", tool_id="t1", input={"todos": []}),
              Message(kind=Kind.TOOL_RESULT, tool_id="t1", text="ok", is_error=True)):
        jsonschema.validate(m.to_json(), wire.SCHEMAS["Message"])


FILTER_TABLE = [
    # phase, agent status -> the filters it shows under
    (Phase.CREATING, AgentStatus.UNKNOWN, ["active"]),
    (Phase.RUNNING, AgentStatus.WORKING, ["active"]),
    (Phase.RUNNING, AgentStatus.WAITING_APPROVAL, ["active", "waiting"]),
    (Phase.RUNNING, AgentStatus.WAITING_INPUT, ["active", "waiting"]),
    (Phase.RUNNING, AgentStatus.IDLE, ["active", "waiting"]),
    # An agent that exited needs a person to restart it.
    (Phase.RUNNING, AgentStatus.EXITED, ["active", "waiting"]),
    (Phase.STOPPED, AgentStatus.WAITING_INPUT, ["active"]),
    (Phase.STOPPED, AgentStatus.EXITED, ["active"]),
    (Phase.FAILED, AgentStatus.WAITING_INPUT, ["failed"]),
    (Phase.ARCHIVED, AgentStatus.IDLE, ["archived"]),
    (Phase.DELETING, AgentStatus.UNKNOWN, ["active"]),
]


def test_filters_are_defined_once() -> None:
    for phase, status, expected in FILTER_TABLE:
        assert wire.filters_of(phase, status) == expected, (phase, status)
        for f in wire.ListFilter:
            assert wire.shown_under(f, phase, status) == (str(f) in expected)
        assert wire.shown_under(None, phase, status)


def test_a_failing_model_shows_instead_of_the_hooks_status_while_running() -> None:
    why = "the model API answered 401: check ANTHROPIC_API_KEY"
    working = wire.session_json(session(phase=Phase.RUNNING, agent_status=AgentStatus.WORKING,
                                        model_error=why))
    assert working["agent_state"] == "model_failing"
    assert working["model_error"] == why
    assert working["agent_status"] == "working"  # what the hooks said stays readable
    assert working["filters"] == ["active", "waiting"]  # it waits for a person to fix it
    assert wire.shown_under(wire.ListFilter.WAITING, Phase.RUNNING, AgentStatus.WORKING, why)
    fine = wire.session_json(session(phase=Phase.RUNNING, agent_status=AgentStatus.WORKING))
    assert fine["agent_state"] == "working" and fine["model_error"] is None
    assert fine["filters"] == ["active"]
    # A stopped session's last model error is history, not its state.
    stopped = wire.session_json(session(phase=Phase.STOPPED, model_error=why))
    assert stopped["agent_state"] == "unknown"
    assert "waiting" not in stopped["filters"]


def test_an_agent_that_exited_shows_so_even_while_its_model_failed() -> None:
    why = "the model API answered 401: check ANTHROPIC_API_KEY"
    gone = wire.session_json(session(phase=Phase.RUNNING, agent_status=AgentStatus.EXITED,
                                     model_error=why))
    assert gone["agent_state"] == "exited" and gone["agent_status"] == "exited"
    assert gone["filters"] == ["active", "waiting"]
    assert wire.AgentState.EXITED in wire.WAITING_FOR_ME
    # Every status the hooks can set is a state the UIs know.
    assert {str(s) for s in AgentStatus} <= {str(s) for s in wire.AgentState}


def test_a_new_agent_no_longer_shows_the_last_one_exited() -> None:
    assert sessions.status_at_start(AgentStatus.EXITED) is AgentStatus.UNKNOWN
    # The others describe the conversation the new agent resumes.
    for status in set(AgentStatus) - {AgentStatus.EXITED}:
        assert sessions.status_at_start(status) is status


def test_actions_are_the_verbs_allowed_now() -> None:
    running = wire.session_json(session(phase=Phase.RUNNING, backend_id="c1"))
    # start is accepted on a running session (a no-op) but not offered.
    assert running["actions"] == ["archive", "stop", "delete", "access-mode", "message",
                                  "attach", "console", "interrupt", "push", "restart-agent",
                                  "recreate", "recreate-fresh", "update-image", "edit",
                                  "retitle"]
    failed = wire.session_json(session(phase=Phase.FAILED))
    assert failed["actions"] == ["retry", "delete", "access-mode", "recreate",
                                 "recreate-fresh", "update-image", "edit", "retitle"]
    no_container = wire.session_json(session(phase=Phase.RUNNING))
    assert "message" not in no_container["actions"] and "attach" not in no_container["actions"]
    assert verbs.refusal(verbs.Verb.MESSAGE, session(phase=Phase.STOPPED, backend_id="c1")) \
        == "flaky is stopped; start it to send a message"


@pytest.mark.parametrize(("phase", "status", "error", "expected"), [
    (Phase.FAILED, AgentStatus.UNKNOWN, None, (1, 0, 0)),
    (Phase.RUNNING, AgentStatus.WORKING, "401", (0, 1, 0)),
    (Phase.RUNNING, AgentStatus.EXITED, None, (0, 0, 1)),
    (Phase.RUNNING, AgentStatus.EXITED, "401", (0, 0, 1)),  # exited wins, as in the lists
    (Phase.STOPPED, AgentStatus.EXITED, "401", (0, 0, 0)),  # history, not a state
    (Phase.RUNNING, AgentStatus.IDLE, None, (0, 0, 0)),
])
def test_the_health_counts_are_the_lists_states(
        phase: Phase, status: AgentStatus, error: str | None, expected: tuple[int, ...]) -> None:
    got = wire.counts([(phase, status, error)])
    assert (got["failed"], got["model_failing"], got["agent_exited"]) == expected
    assert got["total"] == 1
