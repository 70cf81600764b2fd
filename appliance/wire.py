"""The wire model: every JSON shape the API serves, defined once, with its schema.

Theory of operation
-------------------
A shape is a tuple of :class:`~appliance.wire_fields.Field` — a name, its JSON Schema and
how to read it from the record (``wire_fields.py``). :func:`render` turns a record into JSON
by its shape; :func:`schema` turns the shape into the JSON Schema that the OpenAPI document
publishes (``api/openapi.py``) and from which the web UI's TypeScript types are generated.
So the JSON a client gets and the schema it is typed against cannot disagree.

The session's shape carries derived fields that every UI used to decide for itself:
``filters`` (which of the list's filters — active, waiting for me, failed, archived — show
it: :func:`filters_of`), ``actions`` (the verbs allowed now: :mod:`appliance.verbs`) and
``agent_state`` (the agent's status as the UIs show it: what its hooks said, unless the
proxy sees its model requests fail — ``model_error`` says why: :func:`agent_state`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Literal

from appliance import multirepo, pullstate, verbs
from appliance.agents import plans
from appliance.pullstate import Checks, Mergeable, PullState, Review
from appliance.sessions import Agent, AgentStatus, BackendKind, Desired, Phase, Rebuild, Session
from appliance.wire_controls import (
    BUDGET,
    BUDGET_STATE,
    CREDENTIALS,
    EGRESS_ASK,
    EGRESS_ENTRY,
    USAGE,
)
from appliance.wire_fields import BOOL, INT, OPT_STR, STR, Field, Json, enum_of, iso, render, schema

# --- the session list's filters ------------------------------------------------------


class ListFilter(StrEnum):
    ACTIVE = "active"
    WAITING = "waiting"
    FAILED = "failed"
    ARCHIVED = "archived"
    COMPLETED = "completed"


class AgentState(StrEnum):
    """The agent's status as every UI shows it: :class:`AgentStatus` (from its hooks, and
    ``exited`` from its start script), or ``model_failing`` while the proxy sees the
    session's model requests fail."""

    UNKNOWN = "unknown"
    WORKING = "working"
    WAITING_APPROVAL = "waiting_approval"
    WAITING_INPUT = "waiting_input"
    IDLE = "idle"
    EXITED = "exited"
    MODEL_FAILING = "model_failing"


def agent_state(phase: Phase, agent_status: AgentStatus, model_error: str | None
                ) -> AgentState:
    """What the UIs show as the agent's status. A failing model wins over "working" (the
    hooks see an agent retrying as busy) while the session runs, but not over "exited": an
    agent that is not running is restarted first, whatever its model did; a stopped
    session's last model error is history, not its state."""
    if model_error and phase is Phase.RUNNING and agent_status is not AgentStatus.EXITED:
        return AgentState.MODEL_FAILING
    return AgentState(str(agent_status))


#: Agent states that mean "the agent is waiting for a person" (a failing model waits for
#: someone to fix its credential or network; an agent that exited, for someone to restart
#: it).
WAITING_FOR_ME = frozenset({AgentState.WAITING_APPROVAL, AgentState.WAITING_INPUT,
                            AgentState.IDLE, AgentState.EXITED, AgentState.MODEL_FAILING})

_FILTERS: Mapping[ListFilter, Callable[[Phase, AgentState], bool]] = {
    ListFilter.ACTIVE: lambda phase, _: phase not in (Phase.ARCHIVED, Phase.FAILED,
                                                      Phase.COMPLETED),
    ListFilter.WAITING: lambda phase, state: phase is Phase.RUNNING
    and state in WAITING_FOR_ME,
    ListFilter.FAILED: lambda phase, _: phase is Phase.FAILED,
    ListFilter.ARCHIVED: lambda phase, _: phase is Phase.ARCHIVED,
    ListFilter.COMPLETED: lambda phase, _: phase is Phase.COMPLETED,
}


def filters_of(phase: Phase, agent_status: AgentStatus, model_error: str | None = None
               ) -> list[str]:
    """The list filters a session in ``phase`` with ``agent_status`` (and ``model_error``)
    shows under."""
    state = agent_state(phase, agent_status, model_error)
    return [str(f) for f, keep in _FILTERS.items() if keep(phase, state)]


def counts(sessions: Iterable[tuple[Phase, AgentStatus, str | None]]) -> dict[str, int]:
    """How many sessions (each its phase, agent status and model error) have failed, and
    how many running ones wait on a failing model or an exited agent, counted as the lists
    show them (:func:`agent_state`): a session is counted under one state, never two."""
    seen = [(phase, agent_state(phase, status, error)) for phase, status, error in sessions]
    running = [state for phase, state in seen if phase is Phase.RUNNING]
    return {"total": len(seen),
            "failed": sum(_FILTERS[ListFilter.FAILED](p, s) for p, s in seen),
            "model_failing": running.count(AgentState.MODEL_FAILING),
            "agent_exited": running.count(AgentState.EXITED)}


def shown_under(chosen: ListFilter | Literal["unarchived"] | None, phase: Phase,
                agent_status: AgentStatus, model_error: str | None = None) -> bool:
    """Whether a session shows under ``chosen`` (None: every session; ``unarchived``: all
    but the archived, what a plain list shows)."""
    if chosen is None:
        return True
    if chosen == "unarchived":
        return phase is not Phase.ARCHIVED
    return _FILTERS[chosen](phase, agent_state(phase, agent_status, model_error))


# --- shapes ---------------------------------------------------------------------------

CHECK_RUN: tuple[Field, ...] = (
    Field("name", STR),
    Field("status", {**STR, "description": "queued | in_progress | completed"}),
    Field("conclusion", {**OPT_STR, "description": "success | failure | neutral | "
                         "cancelled | skipped | timed_out | action_required, when completed"}),
    Field("url", OPT_STR),
)

PULL: tuple[Field, ...] = (
    Field("repo", {**STR, "description": "owner/name on GitHub (or the remote's URL)"}),
    Field("branch", STR),
    Field("pushed_sha", {**OPT_STR, "description": "The commit the appliance last pushed"}),
    Field("pushed_at", OPT_STR),
    Field("number", {"type": ["integer", "null"]}),
    Field("url", OPT_STR),
    Field("title", OPT_STR),
    Field("state", enum_of(PullState), lambda p: str(p.state)),
    Field("head_sha", OPT_STR),
    Field("base", OPT_STR),
    Field("checks", {**enum_of(Checks), "description": "The check runs on the head commit"},
          lambda p: str(p.checks)),
    Field("passed", INT),
    Field("failed", INT),
    Field("pending", INT),
    Field("runs", {"type": "array", "items": schema(CHECK_RUN)},
          lambda p: [render(CHECK_RUN, r) for r in p.runs]),
    Field("review", enum_of(Review), lambda p: str(p.review)),
    Field("mergeable", enum_of(Mergeable), lambda p: str(p.mergeable)),
    Field("checked_at", OPT_STR),
    Field("error", {**OPT_STR, "description": "Why the last refresh failed"}),
    Field("summary", {**STR, "description": "One line every UI shows"}, pullstate.summary),
    Field("label", {**STR, "description": "The list's short badge"}, pullstate.label),
    Field("tone", {"type": "string", "enum": ["good", "bad", "pending", "neutral"],
                   "description": "The badge's colour"}, pullstate.tone),
)


SESSION: tuple[Field, ...] = (
    Field("id", STR),
    Field("name", STR),
    Field("repo_path", STR),
    Field("subdirectory", STR),
    Field("worktree_path", STR),
    Field("branch", STR),
    Field("base_ref", STR),
    Field("agent", enum_of(Agent), lambda s: str(s.agent)),
    Field("model", OPT_STR),
    Field("backend", enum_of(BackendKind), lambda s: str(s.backend)),
    Field("image", STR),
    Field("cpu", {"type": ["number", "null"]}),
    Field("memory", OPT_STR),
    Field("access_mode", {"type": "string", "enum": ["read-write", "read-only"]},
          lambda s: str(s.access_mode)),
    Field("initial_prompt", STR),
    Field("skip_permissions", BOOL),
    Field("phase", enum_of(Phase), lambda s: str(s.phase)),
    Field("desired", enum_of(Desired), lambda s: str(s.desired)),
    Field("agent_status", enum_of(AgentStatus), lambda s: str(s.agent_status)),
    Field("status_reason", OPT_STR),
    Field("backend_id", OPT_STR),
    # The engine's name of its container (named by the session's id) or pod.
    Field("container_name", STR, lambda s: s.workload_name),
    Field("attempts", INT),
    Field("retry_at", OPT_STR, lambda s: iso(s.retry_at)),
    Field("created_at", STR, lambda s: iso(s.created_at)),
    Field("updated_at", STR, lambda s: iso(s.updated_at)),
    Field("archived_at", OPT_STR, lambda s: iso(s.archived_at)),
    Field("egress_mode", {"type": ["string", "null"],
                          "enum": ["open", "learn", "ask", "locked", None],
                          "description": "The session's own egress mode (null: the default)"}),
    Field("alert", {**OPT_STR, "description": "An alert (a honeytoken tripped, a credential "
                                              "misused) until it is cleared"}),
    Field("budget_exceeded", {**OPT_STR, "description": "Why model requests are refused "
                              "(a spent budget), or null"}),
    Field("pull", {"anyOf": [schema(PULL), {"type": "null"}],
                   "description": "The branch on its remote and its pull request (null: "
                   "never pushed, no pull request seen)"},
          lambda s: render(PULL, s.pull) if s.pull is not None else None),
    Field("rebuild", {**enum_of(Rebuild, nullable=True),
                      "description": "A recreate a person asked for, until it is done"},
          lambda s: str(s.rebuild) if s.rebuild else None),
    Field("model_error", {**OPT_STR, "description": "Why the session's model requests "
                          "fail, as the proxy last saw them (no credential, DNS, the model "
                          "API's 4xx/5xx); null once one succeeds"}),
    Field("agent_state", {**enum_of(AgentState), "description": "The agent's status as the "
                          "UIs show it: agent_status, or model_failing while the session "
                          "runs, model_error is set and the agent has not exited"},
          lambda s: str(agent_state(s.phase, s.agent_status, s.model_error))),
    Field("plan_mode", {**BOOL, "description": "The agent plans before it edits"}),
    Field("print_mode", {**BOOL, "description": "The agent answers once; the session then "
                         "ends as completed"}),
    Field("custom_agent", {**OPT_STR, "description": "Which config.toml agent a custom "
                           "session runs"}),
    Field("title", {**STR, "description": "A short title (data: show it escaped)"}),
    Field("description", {**STR, "description": "What the session is for (data: show it "
                          "escaped)"}),
    Field("extra_repos", {"type": "array", "description": "Further repositories of a "
                          "multi-repo session (the primary is repo_path): each mounted at "
                          "/workspace/<mount>, on the session branch, with its own base",
                          "items": {"type": "object", "additionalProperties": False,
                                    "required": ["mount", "repo_path", "base_ref",
                                                 "worktree_path"],
                                    "properties": {"mount": STR, "repo_path": STR,
                                                   "base_ref": STR, "worktree_path": STR}}},
          lambda s: multirepo.to_json(s.extra_repos)),
    Field("github_repos", {"type": "array", "items": STR, "description": "The GitHub "
                           "repositories (owner/repo) its writes on GitHub reach: its "
                           "repositories' GitHub remotes when it was made"},
          lambda s: list(s.github_repos)),
    Field("filters", {"type": "array", "items": enum_of(ListFilter),
                      "description": "The list filters that show this session"},
          lambda s: filters_of(s.phase, s.agent_status, s.model_error)),
    Field("actions", {"type": "array", "items": enum_of(verbs.Verb),
                      "description": "What can be done to it now"},
          verbs.allowed_verbs),
)

#: Raise this when the session's shape changes: the store re-renders every stored view.
SESSION_VERSION = 9


def session_json(s: Session) -> Json:
    """The public view (API, CLI ``--json``). Token digests never leave the appliance."""
    return render(SESSION, s)


#: What an event's view of a session leaves out: the prompt, written once at create (whose
#: event carries it), up to 100,000 characters. Every hook journals the session, and an
#: agent posts some 20 a second: each row, and each viewer's stream, carried it whole.
#: Clients keep the prompt they have (the list, a session's read, its created event).
EVENT_OMITS = ("initial_prompt",)


def event_session_json(s: Session) -> Json:
    """The view of ``s`` an event carries: :func:`session_json` less :data:`EVENT_OMITS`."""
    view = session_json(s)
    for key in EVENT_OMITS:
        view.pop(key, None)
    return view


EVENT: tuple[Field, ...] = (
    Field("id", INT),
    Field("ts", STR),
    Field("session_id", OPT_STR),
    Field("kind", STR),
    Field("payload", {"type": "object"}),
)

ERROR: tuple[Field, ...] = (
    Field("error", {**STR, "description": "What went wrong and what to do."},
          lambda e: e.message),
    Field("code", STR),
    Field("field", {**STR, "description": "The request field concerned."}, required=False),
)

PLAN_STEP: tuple[Field, ...] = (
    Field("text", {**STR, "description": "At most 1,000 characters (a cut says so)"}),
    Field("status", {**enum_of(plans.Status),
                     "description": "Any other word the agent wrote is pending"},
          lambda s: str(s.status)),
)
PLAN: tuple[Field, ...] = (
    Field("text", {**STR, "description": "The plan in Markdown, or what explains its steps "
                   "('' for none); at most 20,000 characters (a cut says so)"}),
    Field("steps", {"type": "array", "items": schema(PLAN_STEP),
                    "description": "A to-do list, in order: at most 200 steps"},
          lambda p: [render(PLAN_STEP, s) for s in p.steps]),
    Field("more_steps", {**INT, "description": "Steps the agent wrote past those, left out"}),
)

MESSAGE: tuple[Field, ...] = (
    Field("kind", {"type": "string",
                   "enum": ["user", "assistant", "tool_call", "tool_result", "plan"],
                   "description": "plan: a tool call that plans (the agent's plan tools)"},
          lambda m: str(m.kind)),
    Field("text", STR),
    Field("ts", OPT_STR),
    Field("tool", OPT_STR),
    Field("tool_id", OPT_STR),
    Field("input", {"description": "A tool call's arguments, as the agent sent them"}),
    Field("plan", {"anyOf": [schema(PLAN, description="A plan in one shape: a free text, a "
                                         "to-do list, or both (bounded: the agent wrote "
                                         "it)"), {"type": "null"}],
                   "description": "A plan message's plan, whatever agent wrote it (null "
                   "for the other kinds): read it, not input"},
          lambda m: None if m.plan is None else render(PLAN, m.plan)),
    Field("is_error", BOOL),
    Field("from_person", {**BOOL, "description": "A user message the person sent through "
                          "the appliance (the API, the CLI, the web UI, the TUI). False for "
                          "any other user message: it is in the session's transcript, "
                          "typed in its terminal or written by the agent (which cannot be "
                          "told apart), not sent from here"}),
)

TIMELINE_ITEM: tuple[Field, ...] = (
    Field("key", {**STR, "description": "Stable name of the item (merge pages by it)"}),
    Field("source", {"type": "string", "enum": ["message", "audit", "commit", "event"],
                     "description": "message: the transcript; audit: a proxied request; "
                     "commit: on the session branch; event: the journal"},
          lambda e: str(e.source)),
    Field("ts", {**STR, "description": "The time it is ordered by (ISO 8601)"},
          lambda e: e.ts.isoformat()),
    Field("trusted_time", {**BOOL, "description": "false: the agent wrote the time (clamped "
                           "to between the session's creation and now)"}),
    Field("kind", {**STR, "description": "The message kind, audit decision or event kind"}),
    Field("title", {**STR, "description": "One line of plain text (no control characters)"}),
    Field("text", {**STR, "description": "Plain text, bounded (no control characters)"}),
    Field("repo", {**OPT_STR, "description": "A commit's repository: '.' the primary, else "
                   "the mount name of a further one (null for the other sources)"}),
    Field("from_person", {**BOOL, "description": "A user message the person sent through "
                          "the appliance (as the transcript's); false for all else"}),
)

TIMELINE_PAGE: tuple[Field, ...] = (
    Field("items", {"type": "array", "items": {"$ref": "#/components/schemas/TimelineItem"},
                    "description": "Oldest first"},
          lambda p: [render(TIMELINE_ITEM, e) for e in p.entries]),
    Field("cursor", {**STR, "description": "Pass as ?before= for the items before these"},
          lambda p: p.cursor_text),
    Field("more", {**BOOL, "description": "Older items may exist"}),
    Field("notes", {"type": "array", "items": STR,
                    "description": "Sources not shown this time, or in part, and why (the "
                    "agent may have made its transcript unreadable, or too many lines to read "
                    "in a page; the other sources still show)"},
          lambda p: list(p.notes)),
)

# --- a session's health (records: appliance/checkup.py) -------------------------------

_VERB = {"type": "string", "enum": [str(v) for v in verbs.Verb]}
CHECK: tuple[Field, ...] = (
    Field("name", {**STR, "description": "container, workspace, agent, proxy, hooks, model"}),
    Field("verdict", {"type": "string", "enum": ["ok", "warn", "fail", "unknown"]},
          lambda c: str(c.verdict)),
    Field("detail", STR),
    Field("fix", {**_VERB, "type": ["string", "null"], "enum": [*_VERB["enum"], None],
                  "description": "The recovery verb that fits"},
          lambda c: str(c.fix) if c.fix else None),
)
RECOVERY: tuple[Field, ...] = (
    Field("verb", _VERB, lambda a: str(a.verb)),
    Field("warning", {**STR, "description": "What doing it loses"}),
    Field("offered", BOOL),
    Field("why_not", OPT_STR),
)
HEALTH: tuple[Field, ...] = (
    Field("session_id", STR),
    Field("ok", BOOL),
    Field("checks", {"type": "array", "items": schema(CHECK)},
          lambda r: [render(CHECK, c) for c in r.checks]),
    Field("suggested", {"type": ["string", "null"], "enum": [*_VERB["enum"], None]},
          lambda r: str(r.suggested) if r.suggested else None),
    Field("actions", {"type": "array", "items": schema(RECOVERY)},
          lambda r: [render(RECOVERY, a) for a in r.actions]),
)

SCHEMAS: Mapping[str, Json] = {
    "Session": schema(SESSION),
    "Event": schema(EVENT),
    "Error": schema(ERROR),
    "Message": schema(MESSAGE),
    "Health": schema(HEALTH, description="A session's health: each part checked, and the "
                     "recovery actions with what each loses"),
    "Pull": schema(PULL, description="A session's branch on its remote: what was pushed, "
                   "its pull request, CI checks, review and mergeability"),
    "TimelineItem": schema(TIMELINE_ITEM, description="One item of a session's timeline"),
    "TimelinePage": schema(TIMELINE_PAGE, description="A page of a session's timeline"),
    "Usage": schema(USAGE, description="Token usage of one session and model (one day, "
                    "or summed)"),
    "Budget": schema(BUDGET, description="Limits; null: none"),
    "BudgetState": schema(BUDGET_STATE),
    "EgressEntry": schema(EGRESS_ENTRY),
    "EgressAsk": schema(EGRESS_ASK, description="A request held in ask mode"),
    "Credentials": schema(CREDENTIALS, description="The credentials the proxy loaded (names, "
                          "sources, masked values) and which agents can work with them"),
}
