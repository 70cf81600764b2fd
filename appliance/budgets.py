"""Budgets: how many tokens or dollars a session, or all sessions together, may spend (pure).

A :class:`Budget` holds up to four limits: tokens and cost over the whole life of its scope,
and tokens and cost per day (UTC). A limit that is None does not apply. There are two
scopes: each session (``[budgets.session]`` in ``config.toml`` is the default for every
session; a session's own budget, set from any UI, replaces it) and all sessions together
(``[budgets.global]``, replaceable the same way). Budgets set from a UI live in the database
(``appliance/controlstore.py``); the proxy reads them there and, once one is spent, answers
the session's model requests with 429 until it is raised (``proxy/controls.py``).

Cost counts what has a price (``appliance.usage``), and the tokens of a model without one
at its maker's dearest price, or the table's (``PriceTable.bound``): the agent names
the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from appliance.errors import ClauderonError, ConfigError, InvalidInput, refuse_unknown

LIMITS = ("tokens", "cost", "tokens_per_day", "cost_per_day")
GLOBAL = "*"


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    tokens: int | None = None
    cost: float | None = None
    tokens_per_day: int | None = None
    cost_per_day: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in LIMITS}

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in LIMITS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Spent:
    """What a scope has used: all time and today (cost: as a budget counts it, an
    unpriced model at the dearest price)."""

    tokens: int = 0
    cost: float = 0.0
    tokens_today: int = 0
    cost_today: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetDefaults:
    session: Budget = field(default_factory=Budget)
    all_sessions: Budget = field(default_factory=Budget)


def _limit(name: str, value: object, where: str, error: type[ClauderonError]) -> int | float | None:
    if value is None:
        return None
    if name.startswith("tokens"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise error(f"{where}: {name} must be a whole number of tokens, 0 or more "
                        f"(it is {value!r}); leave it out for no limit")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 <= value < float("inf"):
        raise error(f"{where}: {name} must be an amount of US dollars, 0 or more "
                    f"(it is {value!r}); leave it out for no limit")
    return float(value)


def parse_budget(doc: Mapping[str, Any], where: str, *, from_config: bool = True) -> Budget:
    """A budget from a config table or an API body; unknown keys and negative or
    non-numeric limits are refused, naming them (ConfigError, or InvalidInput for a body)."""
    error: type[ClauderonError] = ConfigError if from_config else InvalidInput
    refuse_unknown(doc, LIMITS, where, error)
    values = {name: _limit(name, doc.get(name), where, error) for name in LIMITS}
    return Budget(**values)  # type: ignore[arg-type]


def parse_budget_defaults(doc: object, origin: str) -> BudgetDefaults:
    """``[budgets.session]`` and ``[budgets.global]`` of ``config.toml``."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{origin} [budgets] must hold the tables [budgets.session] and "
                          "[budgets.global]")
    unknown = sorted(set(doc) - {"session", "global"})
    if unknown:
        raise ConfigError(f"{origin} [budgets]: unknown table(s) {unknown} (known: session, "
                          "global)")
    out = {}
    for key, name in (("session", "session"), ("global", "all_sessions")):
        body = doc.get(key, {})
        if not isinstance(body, dict):
            raise ConfigError(f"{origin} [budgets.{key}] must be a table")
        out[name] = parse_budget(body, f"{origin} [budgets.{key}]")
    return BudgetDefaults(**out)


def exceeded(budget: Budget, spent: Spent) -> str | None:
    """Which limit of ``budget`` is spent (a phrase), or None while there is room."""
    checks = (
        ("tokens_per_day", spent.tokens_today, "tokens today"),
        ("cost_per_day", spent.cost_today, "USD today"),
        ("tokens", spent.tokens, "tokens in all"),
        ("cost", spent.cost, "USD in all"),
    )
    for name, used, unit in checks:
        limit = getattr(budget, name)
        if limit is not None and used >= limit:
            shown = f"{used:.2f} of {limit:.2f}" if "USD" in unit else f"{used} of {limit}"
            return f"{shown} {unit} ({name})"
    return None


def _plus(a: Spent | None, b: Spent | None) -> Spent:
    a, b = a or Spent(), b or Spent()
    return Spent(tokens=a.tokens + b.tokens, cost=a.cost + b.cost,
                 tokens_today=a.tokens_today + b.tokens_today,
                 cost_today=a.cost_today + b.cost_today)


def scopes_refusal(scopes: Iterable[tuple[str, Budget, str]], spent: Mapping[str, Spent],
                   fresh: Mapping[str, Spent], *, new_day: bool) -> str | None:
    """Why a call is refused: the first of ``scopes`` (scope, budget, what it is called)
    whose budget is spent by what was counted (``spent``, today's forgotten on a
    ``new_day``) and what was not yet (``fresh``); None while each has room."""
    for scope, budget, what in scopes:
        base = spent.get(scope) or Spent()
        if new_day:
            base = replace(base, tokens_today=0, cost_today=0.0)
        why = exceeded(budget, _plus(base, fresh.get(scope)))
        if why is not None:
            return f"budget exceeded for {what}: {why}"
    return None
