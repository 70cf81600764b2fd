"""``clauderon usage``, ``budget`` and ``egress``: what agents cost, what they may spend and
where they may go (the proxy enforces; these commands read and write through the API)."""

from __future__ import annotations

import argparse
from typing import Any

from appliance.errors import InvalidInput
from cli import calls
from cli.client import local_client
from cli.render import money, table
from cli.table import Command, arg, emit


def _tokens(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e4 else str(n)


def usage_row(label: str, u: dict[str, Any]) -> list[str]:
    return [label, str(u["requests"]), _tokens(u["input_tokens"]), _tokens(u["output_tokens"]),
            _tokens(u["cache_read_tokens"]), _tokens(u["cache_write_tokens"]),
            money(u["cost"], u["cost_complete"])]


def _limits(budget: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in budget.items() if v is not None) or "none"


HEAD = ["REQUESTS", "INPUT", "OUTPUT", "CACHE-READ", "CACHE-WRITE", "COST"]


def cmd_usage(args: argparse.Namespace) -> int:
    client = local_client()
    if args.session:
        found = client.get(f"/api/sessions/{args.session}/usage")
        rows = [usage_row(f"{r['day']} {r['model']}", r) for r in found["rows"]]
        rows.append(usage_row("total", found["total"]))
        budget = found["budget"]
        text = table(["DAY MODEL", *HEAD], rows) + (
            f"\nbudget ({budget['source']}): {_limits(budget['budget'])}"
            + (f"  EXCEEDED: {budget['exceeded']}" if budget["exceeded"] else ""))
        return emit(args, found, text)
    found = client.get("/api/usage", days=str(args.days))
    rows = []
    for day in found["days"]:
        rows.append(usage_row(day["day"], day["total"]))
        rows += [usage_row(f"  {s['session_name'] or s['session_id']}", s)
                 for s in day["sessions"]]
    rows.append(usage_row("total", found["total"]))
    return emit(args, found, table(["DAY / SESSION", *HEAD], rows))


def _budget_body(args: argparse.Namespace) -> dict[str, Any]:
    body = {k: getattr(args, k) for k in ("tokens", "cost", "tokens_per_day", "cost_per_day")}
    if all(v is None for v in body.values()):
        raise InvalidInput("name at least one limit: --tokens, --cost, --tokens-per-day or "
                           "--cost-per-day (clear goes back to config.toml)")
    return body


def cmd_budget(args: argparse.Namespace) -> int:
    client = local_client()
    if args.action == "show":
        found = client.get("/api/budgets")
        states = [found["global"], *found["sessions"]]
        rows = [[s["scope"], s["source"], _limits(s["budget"]), s["exceeded"] or ""]
                for s in states]
        return emit(args, found, table(["SCOPE", "FROM", "LIMITS", "EXCEEDED"], rows))
    if not args.session and not args.all_sessions:
        raise InvalidInput("name a session, or --global for all sessions together")
    path = "/api/budgets/global" if args.all_sessions else f"/api/sessions/{args.session}/budget"
    if args.action == "set":
        state = client.run(calls.put(path, _budget_body(args)))
    else:
        state = client.delete(path)
    return emit(args, state, f"budget ({state['source']}): {_limits(state['budget'])}")


def _drawn(entry: dict[str, Any]) -> str:
    """How a browser draws the host (when it has ``xn--`` labels) and why it may read as
    another: beside the host, never instead of it (``appliance/hostnames.py``)."""
    drawn = entry.get("unicode") or ""
    why = entry.get("lookalike")
    return f"{drawn} ({why})" if why else drawn


def egress_call(action: str, target: str | None, value: str | None) -> calls.Call[Any]:
    """The API call an ``egress`` action makes; a usage error when it lacks its words."""
    if action == "pending":
        return calls.get("/api/egress")
    if action in ("allow-request", "deny-request"):
        return calls.post(f"/api/egress/pending/{target}",
                          {"decision": action.removesuffix("-request")})
    scope = "/api/egress" if target in (None, "*") else f"/api/sessions/{target}/egress"
    if action == "mode":
        if target in (None, "*") or not value:
            raise InvalidInput("usage: clauderon egress mode SESSION open|learn|ask|locked|"
                               "default")
        return calls.post(f"{scope}/mode", {"mode": None if value == "default" else value})
    if action in ("allow", "deny", "forget") and not value:
        raise InvalidInput(f"usage: clauderon egress {action} SESSION|'*' HOST")
    if action in ("allow", "deny"):
        return calls.put(f"{scope}/hosts", {"host": value, "verdict": action})
    return calls.delete(f"{scope}/hosts/{value}") if action == "forget" else calls.get(scope)


def egress_view(action: str, found: dict[str, Any]) -> tuple[Any, str]:
    """What an ``egress`` action's answer shows: the value for --json, and the text."""
    if action == "pending":
        rows = [[str(a["id"]), a["session_id"], a["site"], a["host"], _drawn(a),
                 a["expires_at"]] for a in found["pending"]]
        return found["pending"], (table(["ID", "SESSION", "SITE", "HOST", "DRAWN AS",
                                         "UNTIL"], rows) if rows else "No request is waiting.")
    if action in ("allow-request", "deny-request"):
        return found, f"{found['host']}: {found['decision']}"
    if action == "mode":
        s = found["session"]
        return s, f"{s['name']}  egress mode {s['egress_mode'] or 'default'}"
    entries = [*found.get("shared", []), *found["entries"]]
    rows = [[e["scope"], e["site"], e["host"], _drawn(e), e["verdict"], e["source"]]
            for e in entries]
    return found, f"mode {found['mode']}\n" + (
        table(["SCOPE", "SITE", "HOST", "DRAWN AS", "VERDICT", "FROM"], rows)
        if rows else "(no hosts listed)")


def cmd_egress(args: argparse.Namespace) -> int:
    call = egress_call(args.action, args.target, args.value)
    shown, text = egress_view(args.action, local_client().run(call))
    return emit(args, shown, text)


TABLE = (
    Command(name="usage", help="tokens and cost per day and session, or one session's per "
            "model", handler=cmd_usage, args=(
        arg("session", nargs="?", help="one session (name or id)"),
        arg("--days", type=int, default=30, help="days back, today included (0: all)"))),
    Command(name="budget", help="show, set or clear budgets (tokens or USD, in all or per "
            "day), per session or for all sessions together", handler=cmd_budget, args=(
        arg("action", choices=["show", "set", "clear"]),
        arg("session", nargs="?", help="the session (name or id)"),
        arg("--global", dest="all_sessions", action="store_true",
            help="the budget of all sessions together"),
        arg("--tokens", type=int, help="tokens in all"),
        arg("--cost", type=float, help="US dollars in all"),
        arg("--tokens-per-day", type=int, help="tokens per day (UTC)"),
        arg("--cost-per-day", type=float, help="US dollars per day (UTC)"))),
    Command(name="egress", help="where sessions may go: show, mode, allow, deny, forget a "
            "host; list held requests (pending) and allow-request or deny-request one",
            handler=cmd_egress, args=(
        arg("action", choices=["show", "mode", "allow", "deny", "forget", "pending",
                               "allow-request", "deny-request"]),
        arg("target", nargs="?",
            help="a session (name or id), '*' for the global list, or a request id"),
        arg("value", nargs="?", help="a host (or *.domain), or the mode"))),
)
