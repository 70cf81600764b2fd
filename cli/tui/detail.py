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


def file_line(item: Mapping[str, Any]) -> str:
    """One changed file of the diff: its git status letter and path."""
    return f"{str(item['status'])[:1].upper()} {escape(str(item['path']))}"


def audit_line(item: Mapping[str, Any]) -> str:
    ts = str(item.get("ts", ""))[11:19]
    parts = [ts, str(item.get("method", "")), str(item.get("host", "")) + str(item.get("path", "")),
             str(item.get("status", "")), str(item.get("decision", ""))]
    return escape(" ".join(p for p in parts if p))


def changed_files(body: Mapping[str, Any]) -> list[str]:
    """The diff's changed files: one list, or a list per repository (each under its name)
    for a multi-repo session."""
    sections: list[Mapping[str, Any]] = body["repos"]
    if len(sections) < 2:
        return ["", f"[b]Changed files[/b] ({len(body['files'])})", *_file_lines(body["files"])]
    out: list[str] = []
    for section in sections:
        files = section["files"]
        role = "primary, " if section.get("primary") else ""
        out += ["", f"[b]Changed files in {escape(str(section['name']))}[/b] "
                    f"({role}{escape(str(section['path']))}; {len(files)})"]
        if section.get("error"):
            out.append(f"[red]{escape(str(section['error']))}[/]")
            continue
        out += _file_lines(files)
    return out


def _file_lines(files: list[Mapping[str, Any]]) -> list[str]:
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
    audit: list[Mapping[str, Any]] | None = extras.get("audit")
    if audit is not None:
        lines += ["", "[b]Recent requests[/b]"]
        lines += [audit_line(a) for a in audit[-AUDIT_LINES:]] or ["(none)"]
    events: Sequence[Mapping[str, Any]] = extras.get("events") or []
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
