"""The detail pane: the selected session's facts, changed files (a list per repository of a
multi-repo session), audit lines and progress.

:func:`detail_text` is pure (session JSON and the optional extras in, Textual content out,
where what the API said is text: :mod:`cli.tui.words`);
:func:`load_extras` fetches the extras, each from an endpoint an older API may lack
(``/diff``, ``/audit``): a missing one is left out rather than shown as an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from textual.content import Content

from appliance.audit import outcome
from appliance.errors import ClauderonError
from cli import calls
from cli.client import AsyncApiClient
from cli.diffs import MARKS
from cli.render import age, exited_advice, money
from cli.table import inert, inert_path
from cli.tui.words import join_lines, markup, text

FACTS = (("phase", "phase"), ("agent_state", "status"), ("agent", "agent"),
         ("custom_agent", "custom"), ("model", "model"), ("branch", "branch"),
         ("access_mode", "access"),
         ("repo_path", "repo"), ("subdirectory", "subdir"), ("worktree_path", "worktree"),
         ("backend", "backend"), ("container_name", "container"), ("image", "image"))
AUDIT_LINES = 6
FILE_LINES = 8
EMPTY = Content("")


def file_line(item: Mapping[str, Any]) -> Content:
    """One changed file of the diff: its git status letter and path (a look-alike slash in it
    marked, :func:`cli.table.inert_path`), and, for a committed
    file the work tree holds otherwise than the commit, so (:data:`cli.diffs.MARKS`)."""
    line = f"{str(item['status'])[:1].upper()} {inert_path(str(item['path']))}"
    mark = MARKS.get(str(item.get("work_tree")))
    if mark is None:
        return text(line)
    return markup("$line [b red]($mark)[/]", line=line, mark=mark)


def audit_line(item: Mapping[str, Any]) -> Content:
    ts = str(item.get("ts", ""))[11:19]
    phase = item.get("phase")
    said = outcome(phase if isinstance(phase, str) else None, item.get("status", ""),
                   item.get("duration_ms"), str(item.get("ts", "")),
                   cut=item.get("cut_off") is True)
    parts = [ts, str(item.get("method", "")), str(item.get("host", "")) + str(item.get("path", "")),
             said, str(item.get("decision", ""))]
    return text(" ".join(p for p in parts if p))


def changed_files(body: Mapping[str, Any]) -> list[Content]:
    """The diff's changed files: one list, or a list per repository (each under its name)
    for a multi-repo session; each apart as committed (what a push sends) and not, when
    the API says."""
    sections: list[Mapping[str, Any]] = body["repos"]
    if len(sections) < 2:
        return [EMPTY, markup("[b]Changed files[/b] ($n)", n=_count(body)),
                *_part_lines(body)]
    out: list[Content] = []
    for section in sections:
        role = "primary, " if section.get("primary") else ""
        out += [EMPTY, markup("[b]Changed files in $name[/b] ($role$path; $n)",
                              name=section["name"], role=role, path=section["path"],
                              n=_count(section))]
        if section.get("error"):
            out.append(markup("[red]$error[/]", error=section["error"]))
            continue
        out += _part_lines(section)
    return out


def pushed_commit(body: Mapping[str, Any] | None) -> tuple[str, int, str] | None:
    """What the pane showed a push sends (the primary's committed part): its commit, how
    many files it changes and its subject (inert); None when it showed none (not read yet,
    nothing committed, or an API from before the committed part)."""
    committed = (body or {}).get("committed")
    if not isinstance(committed, Mapping) or not committed.get("commit"):
        return None
    return (str(committed["commit"]), len(committed.get("files") or []),
            inert(str(committed.get("subject") or "")))


def _count(section: Mapping[str, Any]) -> int:
    """The files a section names: committed or not (one changed both ways counts once)."""
    committed = section.get("committed")
    if not isinstance(committed, Mapping):
        return len(section["files"])
    parts = [committed, section.get("uncommitted") or {}]
    return len({f["path"] for part in parts for f in part.get("files") or []})


def _part_lines(section: Mapping[str, Any]) -> list[Content]:
    """A section's files: the branch's commit and the work tree's uncommitted changes
    apart (under the ``note`` that the workspace's HEAD cannot be read, when it says so);
    an API from before them listed the work tree's only."""
    committed = section.get("committed")
    if not isinstance(committed, Mapping):
        return _file_lines(section["files"])
    out = [markup("[yellow]$note[/]", note=section["note"])] if section.get("note") else []
    at = f" @ {str(committed['commit'])[:12]}" if committed.get("commit") else ""
    out += [markup("[b]Committed$at[/b] (what a push sends; $n)", at=at,
                   n=len(committed["files"])),
            *_file_lines(committed["files"])]
    uncommitted = section.get("uncommitted")
    if isinstance(uncommitted, Mapping):
        out += [markup("[b]Not committed[/b] (the work tree; $n)",
                       n=len(uncommitted["files"])), *_file_lines(uncommitted["files"])]
    return out


def _file_lines(files: list[Mapping[str, Any]]) -> list[Content]:
    out = [file_line(f) for f in files[:FILE_LINES]] or [text("(none)")]
    if len(files) > FILE_LINES:
        out.append(text(f"... {len(files) - FILE_LINES} more"))
    return out


def detail_text(session: Mapping[str, Any], extras: Mapping[str, Any], now: datetime) -> Content:
    head = "[b]$name[/b]  [i]$title[/i]  created $age ago" if session.get("title") else \
        "[b]$name[/b]  created $age ago"
    lines = [markup(head, name=session.get("name"), title=session.get("title"),
                    age=age(session.get("created_at"), now))]
    lines += [text(f"{label:<10}{session[key]}") for key, label in FACTS
              if session.get(key) not in (None, "")]
    for e in session.get("extra_repos") or []:
        lines.append(text(f"{'+ repo':<10}{e['repo_path']} at /workspace/{e['mount']} "
                          f"(base {e['base_ref']})"))
    lines += _state_lines(session)
    lines.append(text(f"{'egress':<10}{session.get('egress_mode') or 'default'}"))
    pull = session.get("pull")
    if isinstance(pull, Mapping) and pull.get("summary"):
        tone = {"good": "green", "bad": "red", "pending": "yellow"}.get(str(pull.get("tone")))
        lines.append(markup(f"{'pull':<10}" + (f"[{tone}]$summary[/]" if tone else "$summary"),
                            summary=pull["summary"]))
    usage = extras.get("usage")
    if isinstance(usage, Mapping) and isinstance(usage.get("total"), Mapping):
        total = usage["total"]
        shown = money(total.get("cost"), bool(total.get("cost_complete")))
        lines.append(text(f"{'usage':<10}{total.get('tokens', 0)} tokens, {shown} "
                          f"({total.get('requests', 0)} model calls)"))
    prompt = str(session.get("initial_prompt") or "").strip()
    if prompt:
        lines.append(text(f"{'prompt':<10}{prompt.splitlines()[0][:200]}"))
    if extras.get("files") is not None:
        lines += changed_files(extras["files"])
    audit: list[Mapping[str, Any]] | None = extras.get("audit")
    if audit is not None:
        lines += [EMPTY, markup("[b]Recent requests[/b]")]
        lines += [audit_line(a) for a in audit[-AUDIT_LINES:]] or [text("(none)")]
    events: Sequence[Mapping[str, Any]] = extras.get("events") or []
    steps = [str(e.get("payload", {}).get("step")) for e in events if e.get("kind") == "progress"]
    if steps:
        lines += [EMPTY, markup("[b]Progress[/b] $steps", steps=" > ".join(steps[-6:]))]
    return join_lines(lines)


def _state_lines(session: Mapping[str, Any]) -> list[Content]:
    """The session's modes, and what is wrong with it (its model, its agent, its reasons)."""
    lines = [text(f"{'perms':<10}bypass")] if session.get("skip_permissions") else []
    if session.get("agent_state") == "model_failing" and session.get("model_error"):
        lines.append(markup("[red]$line[/]", line=f"{'model':<10}{session['model_error']}"))
    if exited_advice(session):
        lines.append(markup(f"[yellow]{'agent':<10}exited: nothing more happens until it is "
                            "restarted (h: Health, then restart-agent)[/]"))
    modes = [m for m, on in (("plan first", session.get("plan_mode")),
                             ("answers once", session.get("print_mode"))) if on]
    if modes:
        lines.append(text(f"{'mode':<10}{', '.join(modes)}"))
    for key, label, color in (("status_reason", "reason", "red"), ("alert", "ALERT", "red"),
                              ("budget_exceeded", "budget", "yellow")):
        if session.get(key):
            lines.append(markup(f"[{color}]$line[/]", line=f"{label:<10}{session[key]}"))
    return lines


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
