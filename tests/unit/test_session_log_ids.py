"""Every log line about a session carries its id (``extra={"session": ...}``), so one
session's story can be read out of the services' logs by its id, whatever it was called.

The sources of the core and the services are parsed (not imported); a ``log`` call whose
arguments name a session (``session``, ``s``, ``session_id``, ``sid``, or an attribute of
one: ``s.name``), or that is made in a function handed one, must pass ``extra=``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TypeGuard

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("appliance", "api", "proxy")
LEVELS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})
SESSION_NAMES = frozenset({"session", "s", "session_id", "sid"})
#: Modules whose ``session`` is a browser's sign-in, not an agent's session.
SIGN_IN = frozenset({"api/signin_routes.py"})


def _names_a_session(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id in SESSION_NAMES for n in ast.walk(node))


def _is_log(node: ast.AST) -> TypeGuard[ast.Call]:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in LEVELS and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "log"
            and not any(k.arg == "extra" for k in node.keywords))


def _handed_a_session(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    a = fn.args
    return any(p.arg in SESSION_NAMES for p in (*a.posonlyargs, *a.args, *a.kwonlyargs))


def unmarked(source: str, filename: str = "<sample>") -> list[int]:
    """The lines of ``log.<level>(...)`` calls about a session that carry no ``extra=``."""
    tree = ast.parse(source, filename=filename)
    lines = {n.lineno for n in ast.walk(tree)
             if _is_log(n) and any(_names_a_session(a) for a in n.args)}
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) and _handed_a_session(fn):
            lines |= {n.lineno for n in ast.walk(fn) if _is_log(n)}
    return sorted(lines)


def test_every_log_line_about_a_session_names_its_id() -> None:
    bad = [
        f"{rel}:{line}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (rel := path.relative_to(ROOT).as_posix()) not in SIGN_IN
        for line in unmarked(path.read_text(), rel)
    ]
    assert not bad, "log lines about a session without extra={'session': id}: " + ", ".join(bad)


def test_the_checker_sees_a_line_without_the_id() -> None:
    sample = (
        'log.info("%s waits", s.name)\n'
        'log.info("%s waits", s.name, extra={"session": s.id})\n'
        'log.warning("cannot record %s", session_id)\n'
        'log.info("the %s backend is back", kind)\n'
        'def remember(session_id):\n'
        '    log.exception("cannot record what a session made")\n'
    )
    assert unmarked(sample) == [1, 3, 6]
