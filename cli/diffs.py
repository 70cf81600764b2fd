"""``clauderon diff NAME``: what a session changed, a section per repository.

The API gives a section per repository of the session, the primary first (or only the one
``--repo`` names); :func:`render` (pure) prints each under a header naming the repository,
where the agent sees it and the base it is compared with, then the branch's commit against
that base (what a push sends) and, apart, the work tree's changes not committed; a file the
work tree holds otherwise than the commit (the agent undid a committed change without
committing) is marked, and so is a section whose work tree was read against the branch's
commit because the workspace's HEAD cannot be read (its ``note``). The diff is the agent's text, so
control characters (terminal escapes) are taken out before it reaches a terminal.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from cli import calls
from cli.client import local_client
from cli.table import Command, arg, emit, inert, inert_path


def sections(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The body's sections; an API from before them answered with one repository."""
    found = body.get("repos")
    if isinstance(found, list) and found:
        return [s for s in found if isinstance(s, Mapping)]
    return [{"repo": ".", "name": "", "primary": True, "path": "/workspace", **body,
             "error": None}]


def header(section: Mapping[str, Any]) -> str:
    name = inert(str(section.get("name") or section.get("repo") or "?"))
    role = "primary, " if section.get("primary") else ""
    fork = section.get("merge_base")
    against = inert(str(section.get("base_ref", "")))
    at = f" @ {str(fork)[:12]}" if fork else ""
    return f"== {name} ({role}{inert(str(section.get('path', '')))}) against {against}{at}"


#: How a committed file the work tree holds otherwise is marked.
MARKS = {"undone": "committed; the work tree undoes it",
         "differs": "committed; the work tree holds it otherwise"}


def parts(section: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """What a section shows, each under its label: the branch's commit (what a push sends)
    and the work tree's uncommitted changes apart; an API from before them gave the work
    tree against the fork only (no label)."""
    committed = section.get("committed")
    if not isinstance(committed, Mapping):
        return [("", section)]
    commit = str(committed.get("commit") or "")  # whole: what ``push --commit`` takes
    said = str(committed.get("subject") or "")
    at = f" @ {inert(commit)}{' ' + repr(inert(said)) if said else ''}" if commit else ""
    out: list[tuple[str, Mapping[str, Any]]] = [
        (f"-- committed{at} (what a push sends)", committed)]
    uncommitted = section.get("uncommitted")
    if isinstance(uncommitted, Mapping):
        out.append(("-- not committed (the work tree; no push sends it)", uncommitted))
    return out


def marked(files: list[Mapping[str, Any]]) -> list[str]:
    """A line for each file the work tree holds otherwise than the commit."""
    return [f"! {inert_path(str(f.get('path')))}: {MARKS[str(f['work_tree'])]}" for f in files
            if str(f.get("work_tree")) in MARKS]


def render(body: Mapping[str, Any], *, stat: bool) -> str:
    """Every section as text: its header, then each part's files (``stat``) or its diff,
    the committed files the work tree holds otherwise marked."""
    out: list[str] = []
    for section in sections(body):
        out.append(header(section))
        if section.get("error"):
            out.append(f"! {inert(str(section['error']))}")
            continue
        if section.get("note"):
            out.append(f"! {inert(str(section['note']))}")
        for label, part in parts(section):
            if label:
                out.append(label)
            files = part.get("files") or []
            if not files:
                out.append("(no changes)")
                continue
            if stat:
                out += [f"{inert(str(f.get('status', '?')))[:2]:<2} "
                        f"{inert_path(str(f.get('path')))}"
                        + (f"  ({MARKS[str(f['work_tree'])]})"
                           if str(f.get("work_tree")) in MARKS else "")
                        for f in files]
            else:
                out += marked(files)
                out.append(inert(str(part.get("diff", ""))).rstrip("\n"))
            if part.get("truncated"):
                out.append("... (the diff is long; only its start is shown)")
    return "\n".join(out)


def cmd_diff(args: argparse.Namespace) -> int:
    body = local_client().run(calls.diff(args.session, args.repo))
    return emit(args, body, render(body, stat=args.stat))


TABLE = (Command(
    name="diff", help="show what a session changed against its base: a section per "
    "repository, the primary first", handler=cmd_diff, session=True,
    args=(arg("--repo", help="only this repository: its mount name, or '.' for the primary"),
          arg("--stat", action="store_true", help="list the changed files only"))),)
