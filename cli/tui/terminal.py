"""Handing the terminal to another program (attach, ``$EDITOR``) and taking it back.

:class:`SuspendingTerminal` is the real one: Textual's ``App.suspend()`` restores the
terminal, the program runs in the foreground, and the TUI redraws when it exits (for an
attach: when the person detaches). Tests pass another :class:`Foreground`, because a
headless test app has no terminal to hand over.

What an attach writes to stderr goes to a file instead of the terminal: the TUI redraws
the moment the command ends, so the message would vanish unread. :func:`attach_notice`
turns it into the TUI's notice, and tells a detach (``docker attach`` ends with status 1
and "read escape sequence" on stderr) from a failure.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from textual.app import App

from cli.ptyrelay import run_attach_filtered, stderr_file

#: What ``docker attach`` prints when the person types its detach keys.
DETACHED = "read escape sequence"


class Foreground(Protocol):
    def run(self, app: App[object], argv: list[str], *, stderr: Path | None = None,
            untrusted: bool = False) -> int:
        """Run ``argv`` with the terminal to itself (its stderr into ``stderr`` when
        given); its exit status. ``untrusted``: an agent writes its output, which reaches
        the terminal through :mod:`cli.escapes` only."""
        ...


class SuspendingTerminal:
    def run(self, app: App[object], argv: list[str], *, stderr: Path | None = None,
            untrusted: bool = False) -> int:
        with app.suspend(), contextlib.ExitStack() as files:
            if untrusted:  # an attach: through the filter, a hold waited out
                return run_attach_filtered(argv, stderr if stderr is not None else Path(os.devnull))
            errors = files.enter_context(stderr.open("wb")) if stderr is not None else None
            return subprocess.run(argv, stderr=errors, check=False).returncode


def attach_notice(status: int, errors: str) -> str | None:
    """The warning after an attach ends; None when it ended well or the person detached."""
    if status == 0 or DETACHED in errors:
        return None
    lines = errors.strip().splitlines()
    return f"attach ended with status {status}" + (f": {lines[-1]}" if lines else "")


def run_attach(app: App[object], terminal: Foreground, argv: list[str]) -> str | None:
    """Attach with ``argv``; the warning to show afterwards, if any (see :func:`attach_notice`)."""
    with stderr_file() as errors:
        status = terminal.run(app, argv, stderr=errors, untrusted=True)
        text = errors.read_text(errors="replace") if errors.exists() else ""
    return attach_notice(status, text)


def editor_command() -> list[str]:
    return shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")


def edit_text(app: App[object], terminal: Foreground, text: str) -> str | None:
    """``text`` after the person edited it in ``$VISUAL``/``$EDITOR``; None if it failed."""
    with tempfile.TemporaryDirectory(prefix="clauderon-prompt-") as tmp:
        path = Path(tmp) / "PROMPT.md"
        path.write_text(text if not text or text.endswith("\n") else text + "\n")
        if terminal.run(app, [*editor_command(), str(path)]) != 0:
            return None
        return path.read_text().rstrip("\n")
