"""Usage and budgets as the UIs see them: rows summed, priced and judged. Pure.

The API reads rows from the store (``appliance/controlstore.py``) and hands them here with
the price table in force; what comes back renders through :mod:`appliance.wire`'s ``Usage``
and ``BudgetState`` shapes. A cost is the sum of what has a price; ``cost_complete`` says
whether every token had one (an unknown model's tokens are counted, their cost is not), and
a line whose tokens all lack a price has no cost at all (null).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from appliance import wire_controls
from appliance.budgets import GLOBAL, Budget, BudgetDefaults, Spent, exceeded
from appliance.controlstore import UsageRow
from appliance.usage import PriceTable, Usage
from appliance.wire_fields import render


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageLine:
    session_id: str | None
    session_name: str | None
    day: str | None
    model: str | None
    requests: int
    unmetered: int
    usage: Usage
    cost: float | None
    cost_complete: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetState:
    scope: str
    budget: Budget
    source: str
    spent: Spent
    exceeded: str | None


def summed(rows: Iterable[UsageRow], prices: PriceTable, *, session_id: str | None = None,
           session_name: str | None = None, day: str | None = None,
           model: str | None = None) -> UsageLine:
    usage, requests, unmetered = Usage(), 0, 0
    cost, priced, unpriced = 0.0, False, False
    for r in rows:
        usage += r.usage
        requests += r.requests
        unmetered += r.unmetered
        one = prices.cost(r.model, r.usage)
        if one is None:
            unpriced = unpriced or r.usage.tokens > 0
        else:
            cost += one
            priced = True
    return UsageLine(session_id=session_id, session_name=session_name, day=day, model=model,
                     requests=requests, unmetered=unmetered, usage=usage,
                     cost=cost if priced or not unpriced else None,
                     cost_complete=not unpriced)


def line_json(line: UsageLine) -> dict[str, Any]:
    return render(wire_controls.USAGE, line)


def rows_json(rows: Iterable[UsageRow], prices: PriceTable) -> list[dict[str, Any]]:
    """Each stored row (session, day, model), priced."""
    return [line_json(summed([r], prices, session_id=r.session_id,
                             session_name=r.session_name, day=r.day, model=r.model))
            for r in rows]


def per_session(rows: Iterable[UsageRow], prices: PriceTable) -> dict[str, dict[str, Any]]:
    """Each session's total over the rows, by session id."""
    groups: dict[str, list[UsageRow]] = defaultdict(list)
    for r in rows:
        groups[r.session_id].append(r)
    return {sid: line_json(summed(g, prices, session_id=sid, session_name=g[0].session_name))
            for sid, g in groups.items()}


def by_day(rows: Iterable[UsageRow], prices: PriceTable) -> list[dict[str, Any]]:
    """Newest day first: the day's total and each session's share."""
    days: dict[str, list[UsageRow]] = defaultdict(list)
    for r in rows:
        days[r.day].append(r)
    out: list[dict[str, Any]] = []
    for day in sorted(days, reverse=True):
        sessions = list(per_session(days[day], prices).values())
        sessions.sort(key=lambda s: -int(s["tokens"]))
        out.append({"day": day, "total": line_json(summed(days[day], prices, day=day)),
                    "sessions": sessions})
    return out


def budget_state(scope: str, set_budgets: Mapping[str, Budget], defaults: BudgetDefaults,
                 spent: Mapping[str, Spent]) -> BudgetState:
    """The budget in force for ``scope`` (a session id or ``*``), where it comes from,
    what was spent and whether a limit is reached."""
    default = defaults.all_sessions if scope == GLOBAL else defaults.session
    own = set_budgets.get(scope)
    budget = own if own is not None else default
    used = spent.get(scope) or Spent()
    return BudgetState(scope=scope, budget=budget, source="set" if own is not None else "config",
                       spent=used, exceeded=exceeded(budget, used))


def budget_json(state: BudgetState) -> dict[str, Any]:
    return render(wire_controls.BUDGET_STATE, state)
