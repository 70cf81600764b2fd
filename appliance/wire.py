"""The wire model: every JSON shape the API serves, defined once, with its schema.

Theory of operation
-------------------
A shape is a tuple of :class:`Field` — a name, its JSON Schema and how to read it from the
record. :func:`render` turns a record into JSON by its shape; :func:`schema` turns the shape
into the JSON Schema that the OpenAPI document publishes (``api/openapi.py``) and from which
the web UI's TypeScript types are generated. So the JSON a client gets and the schema it is
typed against cannot disagree.

The session's shape carries two derived fields that every UI used to decide for itself:
``filters`` (which of the list's filters — active, waiting for me, failed, archived — show
it: :func:`filters_of`) and ``actions`` (the verbs allowed now: :mod:`appliance.verbs`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from appliance import pullstate, verbs
from appliance.pullstate import Checks, Mergeable, PullState, PullStatus, Review
from appliance.sessions import Agent, AgentStatus, BackendKind, Phase, Rebuild, Session

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    schema: Json
    get: Callable[[Any], Any]
    required: bool = True


def render(shape: tuple[Field, ...], record: Any) -> Json:
    return {f.name: f.get(record) for f in shape}


def schema(shape: tuple[Field, ...], *, description: str = "") -> Json:
    out: Json = {"type": "object",
                 "required": [f.name for f in shape if f.required],
                 "properties": {f.name: f.schema for f in shape},
                 "additionalProperties": False}
    if description:
        out["description"] = description
    return out


STR: Json = {"type": "string"}
OPT_STR: Json = {"type": ["string", "null"]}
INT: Json = {"type": "integer"}
BOOL: Json = {"type": "boolean"}


def _enum(kind: type[StrEnum], *, nullable: bool = False) -> Json:
    values: list[Any] = [str(v) for v in kind]
    if nullable:
        return {"type": ["string", "null"], "enum": [*values, None]}
    return {"type": "string", "enum": values}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- the session list's filters ------------------------------------------------------


class ListFilter(StrEnum):
    ACTIVE = "active"
    WAITING = "waiting"
    FAILED = "failed"
    ARCHIVED = "archived"


#: Agent statuses that mean "the agent is waiting for a person".
WAITING_FOR_ME = frozenset({AgentStatus.WAITING_APPROVAL, AgentStatus.WAITING_INPUT,
                            AgentStatus.IDLE})

_FILTERS: Mapping[ListFilter, Callable[[Phase, AgentStatus], bool]] = {
    ListFilter.ACTIVE: lambda phase, _: phase not in (Phase.ARCHIVED, Phase.FAILED),
    ListFilter.WAITING: lambda phase, status: phase is Phase.RUNNING
    and status in WAITING_FOR_ME,
    ListFilter.FAILED: lambda phase, _: phase is Phase.FAILED,
    ListFilter.ARCHIVED: lambda phase, _: phase is Phase.ARCHIVED,
}


def filters_of(phase: Phase, agent_status: AgentStatus) -> list[str]:
    """The list filters a session in ``phase`` with ``agent_status`` shows under."""
    return [str(f) for f, keep in _FILTERS.items() if keep(phase, agent_status)]


def shown_under(chosen: ListFilter | Literal["unarchived"] | None, phase: Phase,
                agent_status: AgentStatus) -> bool:
    """Whether a session shows under ``chosen`` (None: every session; ``unarchived``: all
    but the archived, what a plain list shows)."""
    if chosen is None:
        return True
    if chosen == "unarchived":
        return phase is not Phase.ARCHIVED
    return _FILTERS[chosen](phase, agent_status)


# --- shapes ---------------------------------------------------------------------------

CHECK_RUN: tuple[Field, ...] = (
    Field("name", STR, lambda r: r.name),
    Field("status", {**STR, "description": "queued | in_progress | completed"},
          lambda r: r.status),
    Field("conclusion", {**OPT_STR, "description": "success | failure | neutral | "
                         "cancelled | skipped | timed_out | action_required, when completed"},
          lambda r: r.conclusion),
    Field("url", OPT_STR, lambda r: r.url),
)

PULL: tuple[Field, ...] = (
    Field("repo", {**STR, "description": "owner/name on GitHub (or the remote's URL)"},
          lambda p: p.repo),
    Field("branch", STR, lambda p: p.branch),
    Field("pushed_sha", {**OPT_STR, "description": "The commit the appliance last pushed"},
          lambda p: p.pushed_sha),
    Field("pushed_at", OPT_STR, lambda p: p.pushed_at),
    Field("number", {"type": ["integer", "null"]}, lambda p: p.number),
    Field("url", OPT_STR, lambda p: p.url),
    Field("title", OPT_STR, lambda p: p.title),
    Field("state", _enum(PullState), lambda p: str(p.state)),
    Field("head_sha", OPT_STR, lambda p: p.head_sha),
    Field("base", OPT_STR, lambda p: p.base),
    Field("checks", {**_enum(Checks), "description": "The check runs on the head commit"},
          lambda p: str(p.checks)),
    Field("passed", INT, lambda p: p.passed),
    Field("failed", INT, lambda p: p.failed),
    Field("pending", INT, lambda p: p.pending),
    Field("runs", {"type": "array", "items": schema(CHECK_RUN)},
          lambda p: [render(CHECK_RUN, r) for r in p.runs]),
    Field("review", _enum(Review), lambda p: str(p.review)),
    Field("mergeable", _enum(Mergeable), lambda p: str(p.mergeable)),
    Field("checked_at", OPT_STR, lambda p: p.checked_at),
    Field("error", {**OPT_STR, "description": "Why the last refresh failed"},
          lambda p: p.error),
    Field("summary", {**STR, "description": "One line every UI shows"}, pullstate.summary),
    Field("label", {**STR, "description": "The list's short badge"}, pullstate.label),
    Field("tone", {"type": "string", "enum": ["good", "bad", "pending", "neutral"],
                   "description": "The badge's colour"}, pullstate.tone),
)


def _pull(p: PullStatus | None) -> Json | None:
    return render(PULL, p) if p is not None else None


SESSION: tuple[Field, ...] = (
    Field("id", STR, lambda s: s.id),
    Field("name", STR, lambda s: s.name),
    Field("repo_path", STR, lambda s: s.repo_path),
    Field("subdirectory", STR, lambda s: s.subdirectory),
    Field("worktree_path", STR, lambda s: s.worktree_path),
    Field("branch", STR, lambda s: s.branch),
    Field("base_ref", STR, lambda s: s.base_ref),
    Field("agent", _enum(Agent), lambda s: str(s.agent)),
    Field("model", OPT_STR, lambda s: s.model),
    Field("backend", _enum(BackendKind), lambda s: str(s.backend)),
    Field("image", STR, lambda s: s.image),
    Field("cpu", {"type": ["number", "null"]}, lambda s: s.cpu),
    Field("memory", OPT_STR, lambda s: s.memory),
    Field("access_mode", {"type": "string", "enum": ["read-write", "read-only"]},
          lambda s: str(s.access_mode)),
    Field("initial_prompt", STR, lambda s: s.initial_prompt),
    Field("skip_permissions", BOOL, lambda s: s.skip_permissions),
    Field("phase", _enum(Phase), lambda s: str(s.phase)),
    Field("desired", {"type": "string", "enum": ["running", "stopped", "archived",
                                                 "deleted"]}, lambda s: str(s.desired)),
    Field("agent_status", _enum(AgentStatus), lambda s: str(s.agent_status)),
    Field("status_reason", OPT_STR, lambda s: s.status_reason),
    Field("backend_id", OPT_STR, lambda s: s.backend_id),
    Field("container_name", STR, lambda s: s.container_name),
    Field("attempts", INT, lambda s: s.attempts),
    Field("retry_at", OPT_STR, lambda s: _iso(s.retry_at)),
    Field("created_at", STR, lambda s: _iso(s.created_at)),
    Field("updated_at", STR, lambda s: _iso(s.updated_at)),
    Field("archived_at", OPT_STR, lambda s: _iso(s.archived_at)),
    Field("egress_mode", {"type": ["string", "null"],
                          "enum": ["open", "learn", "ask", "locked", None],
                          "description": "The session's own egress mode (null: the default)"},
          lambda s: s.egress_mode),
    Field("alert", {**OPT_STR, "description": "A honeytoken alert until it is cleared"},
          lambda s: s.alert),
    Field("budget_exceeded", {**OPT_STR, "description": "Why model requests are refused "
                              "(a spent budget), or null"},
          lambda s: s.budget_exceeded),
    Field("pull", {"anyOf": [schema(PULL), {"type": "null"}],
                   "description": "The branch on its remote and its pull request (null: "
                   "never pushed, no pull request seen)"},
          lambda s: _pull(s.pull)),
    Field("rebuild", {**_enum(Rebuild, nullable=True),
                      "description": "A recreate a person asked for, until it is done"},
          lambda s: str(s.rebuild) if s.rebuild else None),
    Field("filters", {"type": "array", "items": _enum(ListFilter),
                      "description": "The list filters that show this session"},
          lambda s: filters_of(s.phase, s.agent_status)),
    Field("actions", {"type": "array", "items": _enum(verbs.Verb),
                      "description": "What can be done to it now"},
          verbs.allowed_verbs),
)

#: Raise this when the session's shape changes: the store re-renders every stored view.
SESSION_VERSION = 5


def session_json(s: Session) -> Json:
    """The public view (API, CLI ``--json``). Token digests never leave the appliance."""
    return render(SESSION, s)


EVENT: tuple[Field, ...] = (
    Field("id", INT, lambda e: e.id),
    Field("ts", STR, lambda e: e.ts),
    Field("session_id", OPT_STR, lambda e: e.session_id),
    Field("kind", STR, lambda e: e.kind),
    Field("payload", {"type": "object"}, lambda e: e.payload),
)

ERROR: tuple[Field, ...] = (
    Field("error", {**STR, "description": "What went wrong and what to do."},
          lambda e: e.message),
    Field("code", STR, lambda e: e.code),
    Field("field", {**STR, "description": "The request field concerned."},
          lambda e: e.field, required=False),
)

MESSAGE: tuple[Field, ...] = (
    Field("kind", {"type": "string",
                   "enum": ["user", "assistant", "tool_call", "tool_result", "plan"],
                   "description": "plan: a tool call that plans (the agent's plan tools)"},
          lambda m: str(m.kind)),
    Field("text", STR, lambda m: m.text),
    Field("ts", OPT_STR, lambda m: m.ts),
    Field("tool", OPT_STR, lambda m: m.tool),
    Field("tool_id", OPT_STR, lambda m: m.tool_id),
    Field("input", {"description": "A tool call's arguments, as the agent sent them"},
          lambda m: m.input),
    Field("is_error", BOOL, lambda m: m.is_error),
)

# --- a session's health (records: appliance/checkup.py) -------------------------------

_VERB = {"type": "string", "enum": [str(v) for v in verbs.Verb]}
CHECK: tuple[Field, ...] = (
    Field("name", {**STR, "description": "container, workspace, agent, proxy, hooks, model"},
          lambda c: c.name),
    Field("verdict", {"type": "string", "enum": ["ok", "warn", "fail", "unknown"]},
          lambda c: str(c.verdict)),
    Field("detail", STR, lambda c: c.detail),
    Field("fix", {**_VERB, "type": ["string", "null"], "enum": [*_VERB["enum"], None],
                  "description": "The recovery verb that fits"},
          lambda c: str(c.fix) if c.fix else None),
)
RECOVERY: tuple[Field, ...] = (
    Field("verb", _VERB, lambda a: str(a.verb)),
    Field("warning", {**STR, "description": "What doing it loses"}, lambda a: a.warning),
    Field("offered", BOOL, lambda a: a.offered),
    Field("why_not", OPT_STR, lambda a: a.why_not),
)
HEALTH: tuple[Field, ...] = (
    Field("session_id", STR, lambda r: r.session_id),
    Field("ok", BOOL, lambda r: r.ok),
    Field("checks", {"type": "array", "items": schema(CHECK)},
          lambda r: [render(CHECK, c) for c in r.checks]),
    Field("suggested", {"type": ["string", "null"], "enum": [*_VERB["enum"], None]},
          lambda r: str(r.suggested) if r.suggested else None),
    Field("actions", {"type": "array", "items": schema(RECOVERY)},
          lambda r: [render(RECOVERY, a) for a in r.actions]),
)

# --- the proxy's controls: usage, budgets, egress (records: appliance/reports.py) ----

NUM: Json = {"type": "number"}
OPT_INT: Json = {"type": ["integer", "null"]}
OPT_NUM: Json = {"type": ["number", "null"]}
_COST: Json = {"type": ["number", "null"],
               "description": "US dollars from the price table; null: no price for a model"}

USAGE: tuple[Field, ...] = (
    Field("session_id", OPT_STR, lambda u: u.session_id),
    Field("session_name", OPT_STR, lambda u: u.session_name),
    Field("day", OPT_STR, lambda u: u.day, required=False),
    Field("model", OPT_STR, lambda u: u.model),
    Field("requests", INT, lambda u: u.requests),
    Field("unmetered", {**INT, "description": "Answers whose usage could not be read"},
          lambda u: u.unmetered),
    Field("input_tokens", INT, lambda u: u.usage.input),
    Field("output_tokens", INT, lambda u: u.usage.output),
    Field("cache_read_tokens", INT, lambda u: u.usage.cache_read),
    Field("cache_write_tokens", INT, lambda u: u.usage.cache_write),
    Field("tokens", INT, lambda u: u.usage.tokens),
    Field("cost", _COST, lambda u: u.cost),
    Field("cost_complete", {**BOOL, "description": "false: some tokens have no price (their "
                            "cost is not in cost)"}, lambda u: u.cost_complete),
)

BUDGET: tuple[Field, ...] = (
    Field("tokens", OPT_INT, lambda b: b.tokens),
    Field("cost", OPT_NUM, lambda b: b.cost),
    Field("tokens_per_day", OPT_INT, lambda b: b.tokens_per_day),
    Field("cost_per_day", OPT_NUM, lambda b: b.cost_per_day),
)

SPENT: tuple[Field, ...] = (
    Field("tokens", INT, lambda s: s.tokens),
    Field("cost", NUM, lambda s: s.cost),
    Field("tokens_today", INT, lambda s: s.tokens_today),
    Field("cost_today", NUM, lambda s: s.cost_today),
)

BUDGET_STATE: tuple[Field, ...] = (
    Field("scope", {**STR, "description": "A session id, or * for all sessions"},
          lambda b: b.scope),
    Field("budget", schema(BUDGET), lambda b: render(BUDGET, b.budget)),
    Field("source", {"type": "string", "enum": ["config", "set"],
                     "description": "config: the config.toml default; set: from a UI"},
          lambda b: b.source),
    Field("spent", schema(SPENT), lambda b: render(SPENT, b.spent)),
    Field("exceeded", {**OPT_STR, "description": "Which limit is spent, or null"},
          lambda b: b.exceeded),
)

EGRESS_ENTRY: tuple[Field, ...] = (
    Field("scope", STR, lambda e: e.scope),
    Field("host", STR, lambda e: e.host),
    Field("verdict", {"type": "string", "enum": ["allow", "deny"]}, lambda e: str(e.verdict)),
    Field("source", {"type": "string", "enum": ["user", "learned", "asked", "config"]},
          lambda e: e.source),
    Field("created_at", OPT_STR, lambda e: e.created_at),
)

EGRESS_ASK: tuple[Field, ...] = (
    Field("id", INT, lambda a: a.id),
    Field("session_id", STR, lambda a: a.session_id),
    Field("host", STR, lambda a: a.host),
    Field("created_at", STR, lambda a: a.created_at),
    Field("expires_at", STR, lambda a: a.expires_at),
    Field("decision", {"type": ["string", "null"],
                       "enum": ["allow", "deny", "expired", None]}, lambda a: a.decision),
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
    "Usage": schema(USAGE, description="Token usage of one session and model (one day, "
                    "or summed)"),
    "Budget": schema(BUDGET, description="Limits; null: none"),
    "BudgetState": schema(BUDGET_STATE),
    "EgressEntry": schema(EGRESS_ENTRY),
    "EgressAsk": schema(EGRESS_ASK, description="A request held in ask mode"),
}
