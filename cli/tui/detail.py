"""The detail pane: the selected session's facts, changed files (a list per repository of a
multi-repo session), audit lines and progress.

:func:`detail_text` is pure (session JSON and the optional extras in, Rich markup out);
:func:`load_extras` fetches the extras, each from an endpoint an older API may lack
(``/diff``, ``/audit``): a missing one is left out rather than shown as an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.markup import escape

from appliance.errors import ClauderonError
from cli import calls
from cli.client import AsyncApiClient
from cli.render import age, exited_advice, money

FACTS = (("phase", "phase"), ("agent_state", "status"), ("agent", "agent"),
         ("custom_agent", "custom"), ("model", "model"), ("branch", "branch"),
         ("access_mode", "access"),
         ("repo_path", "repo"), ("subdirectory", "subdir"), ("worktree_path", "worktree"),
         ("backend", "backend"), ("container_name", "container"), ("image", "image"))
AUDIT_LINES = 6
FILE_LINES = 8


def _items(body: Any, *keys: str) -> list[Any]:
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        for key in keys:
            if isinstance(body.get(key), list):
                return list(body[key])
    return []


def file_line(item: Any) -> str:
    if not isinstance(item, Mapping):
        return escape(str(item))
    status = str(item.get("status") or item.get("change") or "M")[:1].upper()
    counts = ""
    if "additions" in item or "deletions" in item:
        counts = f"  [green]+{item.get('additions', 0)}[/] [red]-{item.get('deletions', 0)}[/]"
    return f"{status} {escape(str(item.get('path', '?')))}{counts}"


def audit_line(item: Any) -> str:
    if not isinstance(item, Mapping):
        return escape(str(item))
    ts = str(item.get("ts", ""))[11:19]
    parts = [ts, str(item.get("method", "")), str(item.get("host", "")) + str(item.get("path", "")),
             str(item.get("status", "")), str(item.get("decision", ""))]
    return escape(" ".join(p for p in parts if p))


def changed_files(body: Any) -> list[str]:
    """The diff's changed files: one list, or a list per repository (each under its name)
    for a multi-repo session."""
    sections = body.get("repos") if isinstance(body, Mapping) else None
    if not isinstance(sections, list) or len(sections) < 2:
        files = _items(body, "files", "changed")
        return ["", f"[b]Changed files[/b] ({len(files)})", *_file_lines(files)]
    out: list[str] = []
    for section in sections:
        if not isinstance(section, Mapping):
            continue
        files = _items(section, "files")
        role = "primary, " if section.get("primary") else ""
        out += ["", f"[b]Changed files in {escape(str(section.get('name', '?')))}[/b] "
                    f"({role}{escape(str(section.get('path', '')))}; {len(files)})"]
        if section.get("error"):
            out.append(f"[red]{escape(str(section['error']))}[/]")
            continue
        out += _file_lines(files)
    return out


def _file_lines(files: list[Any]) -> list[str]:
    out = [file_line(f) for f in files[:FILE_LINES]] or ["(none)"]
    if len(files) > FILE_LINES:
        out.append(f"... {len(files) - FILE_LINES} more")
    return out


def detail_text(session: Mapping[str, Any], extras: Mapping[str, Any], now: datetime) -> str:
    title = f"  [i]{escape(str(session['title']))}[/i]" if session.get("title") else ""
    lines = [f"[b]{escape(str(session.get('name')))}[/b]{title}  "
             f"created {age(session.get('created_at'), now)} ago"]
    lines += [f"{label:<10}{escape(str(session[key]))}" for key, label in FACTS
              if session.get(key) not in (None, "")]
    for e in session.get("extra_repos") or []:
        lines.append(f"{'+ repo':<10}{escape(str(e['repo_path']))} at "
                     f"/workspace/{escape(str(e['mount']))} (base {escape(str(e['base_ref']))})")
    if session.get("skip_permissions"):
        lines.append(f"{'perms':<10}bypass")
    if session.get("agent_state") == "model_failing" and session.get("model_error"):
        lines.append(f"[red]{'model':<10}{escape(str(session['model_error']))}[/]")
    if exited_advice(session):
        lines.append(f"[yellow]{'agent':<10}exited: nothing more happens until it is "
                     "restarted (h: Health, then restart-agent)[/]")
    modes = [m for m, on in (("plan first", session.get("plan_mode")),
                             ("answers once", session.get("print_mode"))) if on]
    if modes:
        lines.append(f"{'mode':<10}{', '.join(modes)}")
    for key, label, color in (("status_reason", "reason", "red"), ("alert", "ALERT", "red"),
                              ("budget_exceeded", "budget", "yellow")):
        if session.get(key):
            lines.append(f"[{color}]{label:<10}{escape(str(session[key]))}[/]")
    lines.append(f"{'egress':<10}{escape(str(session.get('egress_mode') or 'default'))}")
    pull = session.get("pull")
    if isinstance(pull, Mapping) and pull.get("summary"):
        tone = {"good": "green", "bad": "red", "pending": "yellow"}.get(str(pull.get("tone")))
        text = escape(str(pull["summary"]))
        lines.append(f"{'pull':<10}" + (f"[{tone}]{text}[/]" if tone else text))
    usage = extras.get("usage")
    if isinstance(usage, Mapping) and isinstance(usage.get("total"), Mapping):
        total = usage["total"]
        shown = money(total.get("cost"), bool(total.get("cost_complete")))
        lines.append(f"{'usage':<10}{total.get('tokens', 0)} tokens, {shown} "
                     f"({total.get('requests', 0)} model calls)")
    prompt = str(session.get("initial_prompt") or "").strip()
    if prompt:
        lines.append(f"{'prompt':<10}{escape(prompt.splitlines()[0][:200])}")
    if extras.get("files") is not None:
        lines += changed_files(extras["files"])
    audit = _items(extras.get("audit"), "audit", "lines", "entries")
    if extras.get("audit") is not None:
        lines += ["", "[b]Recent requests[/b]"]
        lines += [audit_line(a) for a in audit[-AUDIT_LINES:]] or ["(none)"]
    events: Sequence[Mapping[str, Any]] = _items(extras.get("events"), "events")
    steps = [str(e.get("payload", {}).get("step")) for e in events if e.get("kind") == "progress"]
    if steps:
        lines += ["", "[b]Progress[/b] " + " > ".join(steps[-6:])]
    return "\n".join(lines)


async def load_extras(api: AsyncApiClient, session_id: str) -> dict[str, Any]:
    """The extras; one the API did not give (an error, or an older API without it) is None
    and left out of the pane."""
    extras: dict[str, Any] = {}
    # The changed files come with the diff against the session's base.
    wanted: tuple[tuple[str, calls.Call[Any]], ...] = (
        ("files", calls.diff(session_id)), ("audit", calls.audit(session_id, 20)),
        ("events", calls.history(session_id)),
        ("usage", calls.get(f"/api/sessions/{session_id}/usage")))
    for key, call in wanted:
        try:
            extras[key] = await api.run(call)
        except ClauderonError:
            extras[key] = None
    return extras
