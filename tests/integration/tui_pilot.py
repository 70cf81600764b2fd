"""Driving the TUI headless in tests: screen text, waiting, a terminal that records.

Textual runs on asyncio while pytest runs async tests under trio, so each TUI test is a
plain function that runs its scenario with ``asyncio.run``. Waits poll the app between
frames and fail (never time) after a generous bound, printing the screen.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen

from cli.tui.tui_app import ClauderonApp, MainScreen
from tests.support.appliance import Appliance

T = TypeVar("T")
ScreenT = TypeVar("ScreenT", bound=Screen[Any])


def scenario(run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(run())


def in_thread(run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """:func:`scenario` on a thread of its own (beside a browser's event loop); what it
    raised fails the test here."""
    errors: list[BaseException] = []

    def thread() -> None:
        try:
            scenario(run)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=thread)
    t.start()
    t.join(timeout=300)
    assert not t.is_alive() and not errors, errors


def screen_text(app: App[Any]) -> str:
    """The screen as plain text, exactly as a terminal of ``app.size`` would show it."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      legacy_windows=False, color_system=None)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text()


async def until(pilot: Pilot[Any], predicate: Callable[[], T | None], what: str,
                timeout: float = 90) -> T:
    try:
        async with asyncio.timeout(timeout):
            while not (value := predicate()):
                await pilot.pause(0.05)
    except TimeoutError:
        raise AssertionError(f"gave up waiting for {what}; the screen:\n"
                             f"{screen_text(pilot.app)}") from None
    return value


def main(app: ClauderonApp) -> MainScreen:
    return next(s for s in app.screen_stack if isinstance(s, MainScreen))


def names(app: ClauderonApp) -> list[str]:
    return [s["name"] for s in main(app).shown()]


def top(app: App[Any], kind: type[ScreenT]) -> ScreenT | None:
    return app.screen if isinstance(app.screen, kind) else None


def notices(app: App[Any]) -> list[str]:
    return [str(n.message) for n in app._notifications]


@asynccontextmanager
async def piloting(appliance: Appliance, size: tuple[int, int] = (80, 24), *,
                   showing: list[str] | None = None,
                   **options: Any) -> AsyncIterator[tuple[ClauderonApp, Pilot[Any]]]:
    """The TUI on ``appliance``'s socket, headless at ``size``, on a recording terminal
    unless ``options`` name one; with ``showing``, once its list shows those names."""
    options.setdefault("terminal", RecordingTerminal())
    app = ClauderonApp(appliance.settings.socket_path, **options)
    async with app.run_test(size=size) as pilot:
        if showing is not None:
            await until(pilot, lambda: names(app) == showing, "the list")
        yield app, pilot


class RecordingTerminal:
    """Stands in for the real terminal hand-over (a headless app has no terminal).

    Records every command; runs it for real (stdin from /dev/null) when ``run_commands``,
    which the ``$EDITOR`` test uses, and answers 0 without running otherwise (attach
    would wait for a person at a terminal).
    """

    def __init__(self, *, run_commands: bool = False) -> None:
        self.commands: list[list[str]] = []
        self.untrusted: list[bool] = []
        self.run_commands = run_commands

    def run(self, app: App[object], argv: list[str], *, stderr: Path | None = None,
            untrusted: bool = False) -> int:
        self.commands.append(argv)
        self.untrusted.append(untrusted)
        if not self.run_commands:
            return 0
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if stderr is not None:
            stderr.write_bytes(proc.stderr)
        return proc.returncode
