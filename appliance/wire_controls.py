"""The wire shapes of the proxy's controls (usage, budgets, egress; the records are in
``appliance/reports.py``) and of the credentials doctor (``appliance/credentials/doctor.py``).
:data:`appliance.wire.SCHEMAS` publishes them with the others.
"""

from __future__ import annotations

from appliance.sessions import Agent
from appliance.wire_fields import (
    BOOL,
    INT,
    NUM,
    OPT_INT,
    OPT_NUM,
    OPT_STR,
    STR,
    Field,
    Json,
    enum_of,
    render,
    schema,
)

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

CREDENTIAL: tuple[Field, ...] = (
    Field("name", STR, lambda c: c.name),
    Field("env", {"type": "array", "items": STR,
                  "description": "The environment variables that set it"}, lambda c: list(c.env)),
    Field("source", {"type": ["string", "null"],
                     "enum": ["env", "1password", "file", "codex-auth.json", None],
                     "description": "Where the proxy found it; null: not set"},
          lambda c: c.source),
    Field("masked", {**OPT_STR, "description": "Its first 4 and last 2 characters (nothing "
                     "of a short one); never the value"}, lambda c: c.masked),
)

READINESS: tuple[Field, ...] = (
    Field("agent", enum_of(Agent), lambda r: r.agent),
    Field("ready", {**BOOL, "description": "Its model credential is set"}, lambda r: r.ready),
    Field("using", {**OPT_STR, "description": "The credential the proxy puts in"},
          lambda r: r.using),
    Field("hint", {**OPT_STR, "description": "What to set, when not ready"}, lambda r: r.hint),
)

CREDENTIALS: tuple[Field, ...] = (
    Field("published", {**BOOL, "description": "false: no proxy has loaded credentials yet"},
          lambda r: r.published),
    Field("loaded_at", OPT_STR, lambda r: r.loaded_at),
    Field("credentials", {"type": "array", "items": schema(CREDENTIAL)},
          lambda r: [render(CREDENTIAL, c) for c in r.credentials]),
    Field("warnings", {"type": "array", "items": STR}, lambda r: list(r.warnings)),
    Field("agents", {"type": "array", "items": schema(READINESS)},
          lambda r: [render(READINESS, a) for a in r.agents]),
)
