"""Plain-text rendering for the CLI: tables, ages, one-line session summaries (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def age(iso: str | None, now: datetime | None = None) -> str:
    if not iso:
        return "-"
    then = datetime.fromisoformat(iso)
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in rows]
    return "\n".join(lines)


def money(cost: float | None, complete: bool = True) -> str:
    """US dollars; ``?`` for a cost with no price at all, ``+`` when part has none."""
    if cost is None:
        return "?"
    return f"${cost:.2f}" + ("" if complete else "+")


def exited_advice(s: Mapping[str, Any]) -> str | None:
    """What to do about a running session whose agent exited (None otherwise): its terminal
    is a shell and nothing more happens until a person restarts the agent."""
    if s.get("phase") != "running" or s.get("agent_state") != "exited":
        return None
    return f"the agent exited; restart it: clauderon restart-agent {s.get('name')}"


def session_rows(sessions: Sequence[dict[str, Any]],
                 costs: dict[str, dict[str, Any]] | None = None) -> str:
    """The session table; with ``costs`` (usage totals by session id) a COST column, and a
    line under the table for each session the proxy raised an alert on or holds back, or
    whose model requests fail (its AGENT-STATUS is then ``model-failing``) or whose agent
    exited. AGE counts from the session's creation."""
    rows, notes = [], []
    for s in sessions:
        phase = s["phase"]
        if s.get("status_reason") and phase in ("failed", "creating", "stopped"):
            phase = f"{phase} ({s['status_reason']})"
        state = s.get("agent_state") or s["agent_status"]
        row = [s["name"], phase, state.replace("_", "-"), s["branch"],
               s.get("backend", "docker"), age(s["created_at"])]
        if costs is not None:
            used = costs.get(s["id"])
            row.append(money(used["cost"], used["cost_complete"]) if used else "-")
        rows.append(row)
        if state == "model_failing":
            notes.append(f"! {s['name']}: {s.get('model_error')}")
        if advice := exited_advice(s):
            notes.append(f"! {s['name']}: {advice}")
        pull = s.get("pull") or {}
        if pull.get("label"):
            notes.append(f"  {s['name']}: {pull['label']}  {pull['summary']}")
        for key in ("alert", "budget_exceeded"):
            if s.get(key):
                notes.append(f"! {s['name']}: {s[key]}")
        if s.get("extra_repos"):
            notes.append(f"  {s['name']}: {repos_line(s)}")
    head = ["NAME", "PHASE", "AGENT-STATUS", "BRANCH", "BACKEND", "AGE"]
    out = table([*head, "COST"] if costs is not None else head, rows)
    return "\n".join([out, *notes])


def session_detail(s: dict[str, Any]) -> str:
    keys = ["name", "title", "description", "id", "phase", "agent_state", "agent_status",
            "model_error", "status_reason", "agent", "custom_agent", "plan_mode", "print_mode",
            "model", "branch", "base_ref", "repo_path", "subdirectory", "worktree_path",
            "backend", "container_name", "image", "cpu", "memory", "access_mode",
            "skip_permissions", "attempts", "created_at", "updated_at", "archived_at",
            "initial_prompt"]
    width = max(len(k) for k in keys)
    lines = [f"{key.replace('_', '-'):<{width}}  {s[key]}" for key in keys
             if s.get(key) not in (None, "")]
    for e in s.get("extra_repos") or []:
        lines.append(f"{'repo ' + e['mount']:<{width}}  {e['repo_path']} (base "
                     f"{e['base_ref']}, at /workspace/{e['mount']}, workspace "
                     f"{e['worktree_path']})")
    pull = s.get("pull")
    if pull:
        lines.append(f"{'pull':<{width}}  {pull['summary']}")
        if pull.get("url"):
            lines.append(f"{'':<{width}}  {pull['url']}")
    return "\n".join(lines)


def repos_line(s: dict[str, Any]) -> str:
    """Every repository of a multi-repo session, the primary first."""
    extras = ", ".join(f"{e['repo_path']} at /workspace/{e['mount']}"
                       for e in s.get("extra_repos") or [])
    return f"repositories {s['repo_path']} (primary), {extras}; branch {s['branch']} in each"
