"""``clauderon diff NAME``: what a session changed, a section per repository.

The API gives a section per repository of the session, the primary first (or only the one
``--repo`` names); :func:`render` (pure) prints each under a header naming the repository,
where the agent sees it and the base it is compared with. The diff is the agent's text, so
control characters (terminal escapes) are taken out before it reaches a terminal.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from cli import calls
from cli.client import local_client
from cli.table import Command, arg, emit, inert

Json = dict[str, Any]


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


def render(body: Mapping[str, Any], *, stat: bool) -> str:
    """Every section as text: its header, then its files (``stat``) or its diff."""
    out: list[str] = []
    for section in sections(body):
        out.append(header(section))
        if section.get("error"):
            out.append(f"! {inert(str(section['error']))}")
            continue
        files = section.get("files") or []
        if not files:
            out.append("(no changes)")
            continue
        if stat:
            out += [f"{inert(str(f.get('status', '?')))[:2]:<2} {inert(str(f.get('path')))}"
                    for f in files]
        else:
            out.append(inert(str(section.get("diff", ""))).rstrip("\n"))
        if section.get("truncated"):
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
