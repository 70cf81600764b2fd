"""The TUI's notices and questions are text: many quote what an agent wrote."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Static

from cli.tui.dialogs import ConfirmScreen
from cli.tui.tui_app import ClauderonApp

HOSTILE = "health: [@click=app.quit]fine[/] [link=https://x.example]see[/link]"


def test_a_notice_is_shown_as_written_and_acts_on_nothing(tmp_path: Path) -> None:
    """No API here (the socket does not exist): the app only has to stand while a screen
    and the app post notices that hold markup, which Textual would otherwise read."""

    async def run() -> None:
        app = ClauderonApp(tmp_path / "no-api.sock", timeout=0.2)
        async with app.run_test() as pilot:
            app.screen.notify(HOSTILE, severity="error")  # as a screen's worker does
            app.notify(HOSTILE, markup=True)  # even asked for markup
            await pilot.pause()
            notices = list(app._notifications)
            assert [n.message for n in notices] == [HOSTILE, HOSTILE]
            assert not any(n.markup for n in notices)
            assert app.is_running  # nothing clicked, nothing run
            # A question quoting the agent's health report: shown as written, tags and all.
            await app.push_screen(ConfirmScreen(HOSTILE))
            await pilot.pause()
            shown = app.screen.query_one("#question", Static).render()
            assert HOSTILE in str(shown)

    asyncio.run(run())
