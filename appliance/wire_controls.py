"""The wire shapes of the proxy's controls (usage, budgets, egress; the records are in
``appliance/reports.py``) and of the credentials doctor (``appliance/credentials/doctor.py``).
:data:`appliance.wire.SCHEMAS` publishes them with the others.
"""

from __future__ import annotations

from appliance.hostnames import reading
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
    Field("session_id", OPT_STR),
    Field("session_name", OPT_STR),
    Field("day", OPT_STR, required=False),
    Field("model", OPT_STR),
    Field("requests", INT),
    Field("unmetered", {**INT, "description": "Answers whose usage could not be read"}),
    Field("input_tokens", INT, lambda u: u.usage.input),
    Field("output_tokens", INT, lambda u: u.usage.output),
    Field("cache_read_tokens", INT, lambda u: u.usage.cache_read),
    Field("cache_write_tokens", INT, lambda u: u.usage.cache_write),
    Field("tokens", INT, lambda u: u.usage.tokens),
    Field("cost", _COST),
    Field("cost_complete", {**BOOL, "description": "false: some tokens have no price (their "
                            "cost is not in cost)"}),
)

BUDGET: tuple[Field, ...] = (
    Field("tokens", OPT_INT),
    Field("cost", OPT_NUM),
    Field("tokens_per_day", OPT_INT),
    Field("cost_per_day", OPT_NUM),
)

SPENT: tuple[Field, ...] = (
    Field("tokens", INT),
    Field("cost", NUM),
    Field("tokens_today", INT),
    Field("cost_today", NUM),
)

BUDGET_STATE: tuple[Field, ...] = (
    Field("scope", {**STR, "description": "A session id, or * for all sessions"}),
    Field("budget", schema(BUDGET), lambda b: render(BUDGET, b.budget)),
    Field("source", {"type": "string", "enum": ["config", "set"],
                     "description": "config: the config.toml default; set: from a UI"}),
    Field("spent", schema(SPENT), lambda b: render(SPENT, b.spent)),
    Field("exceeded", {**OPT_STR, "description": "Which limit is spent, or null"}),
)

#: How a host an agent named reads to the person (``appliance/hostnames.py``).
READING: tuple[Field, ...] = (
    Field("site", {**STR, "description": "The domain the host belongs to (show it apart: "
                   "a long name can start like another's)"}, lambda r: reading(r.host).site),
    Field("unicode", {**OPT_STR, "description": "The host as a browser draws it, when it "
                      "has xn-- labels (show it beside the host, never instead)"},
          lambda r: reading(r.host).unicode),
    Field("lookalike", {**OPT_STR, "description": "Why the host may read as another (mixed "
                        "scripts, letters outside ASCII), or null"},
          lambda r: reading(r.host).lookalike),
)

EGRESS_ENTRY: tuple[Field, ...] = (
    Field("scope", STR),
    Field("host", STR),
    Field("verdict", {"type": "string", "enum": ["allow", "deny"]}, lambda e: str(e.verdict)),
    Field("source", {"type": "string", "enum": ["user", "learned", "asked", "config"]}),
    Field("created_at", OPT_STR),
    *READING,
)

EGRESS_ASK: tuple[Field, ...] = (
    Field("id", INT),
    Field("session_id", STR),
    Field("host", STR),
    Field("created_at", STR),
    Field("expires_at", STR),
    Field("decision", {"type": ["string", "null"],
                       "enum": ["allow", "deny", "expired", None]}),
    *READING,
)

CREDENTIAL: tuple[Field, ...] = (
    Field("name", STR),
    Field("env", {"type": "array", "items": STR,
                  "description": "The environment variables that set it"}, lambda c: list(c.env)),
    Field("source", {"type": ["string", "null"],
                     "enum": ["env", "1password", "file", "codex-auth.json", None],
                     "description": "Where the proxy found it; null: not set"}),
    Field("masked", {**OPT_STR, "description": "Its first 4 and last 2 characters (nothing "
                     "of a short one); never the value"}),
)

READINESS: tuple[Field, ...] = (
    Field("agent", enum_of(Agent)),
    Field("ready", {**BOOL, "description": "Its model credential is set"}),
    Field("using", {**OPT_STR, "description": "The credential the proxy puts in"}),
    Field("hint", {**OPT_STR, "description": "What to set, when not ready"}),
)

CREDENTIALS: tuple[Field, ...] = (
    Field("published", {**BOOL, "description": "false: no proxy has loaded credentials yet"}),
    Field("loaded_at", OPT_STR),
    Field("credentials", {"type": "array", "items": schema(CREDENTIAL)},
          lambda r: [render(CREDENTIAL, c) for c in r.credentials]),
    Field("warnings", {"type": "array", "items": STR}, lambda r: list(r.warnings)),
    Field("agents", {"type": "array", "items": schema(READINESS)},
          lambda r: [render(READINESS, a) for a in r.agents]),
)
