"""Handing the terminal to another program (attach, ``$EDITOR``) and taking it back.

:class:`SuspendingTerminal` is the real one: Textual's ``App.suspend()`` restores the
terminal, the program runs in the foreground, and the TUI redraws when it exits (for an
attach: when the person detaches). Tests pass another :class:`Foreground`, because a
headless test app has no terminal to hand over.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from textual.app import App


class Foreground(Protocol):
    def run(self, app: App[object], argv: list[str]) -> int:
        """Run ``argv`` with the terminal to itself; its exit status."""
        ...


class SuspendingTerminal:
    def run(self, app: App[object], argv: list[str]) -> int:
        with app.suspend():
            return subprocess.run(argv, check=False).returncode


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
