"""The agent's words in the TUI, driven by Textual's pilot against the real API and engine.

The TUI draws its detail pane as Textual markup, and the agent names the files it changes:
a name is data. Textual's markup reads more as a tag than Rich's does (a tag may begin with
a space, a capital or ``$``), so names that Rich's ``escape`` let through were tags: a file
named ``[ @click=screen.verb('archive')]notes.txt`` showed as ``notes.txt`` and archived
the session when clicked, and one named ``[ link=x:y ]`` was markup Textual cannot read:
the TUI ended with a traceback the moment the person selected the session. The agent makes
the files in its real container (base image) as its own uid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.test_transcript_containment import start_session
from tests.integration.tui_pilot import main, piloting, scenario, screen_text, until
from tests.support.appliance import Appliance
from tests.support.hostile import agent_argv

CLICK = "[ @click=screen.verb('archive')]notes.txt"
BROKEN = "[ link=x:y ]todo.txt"
SPILL = "[ $background on $background]readme.txt"


def detail(app: Any) -> str:
    return str(main(app).query_one("#detail").render())


def test_a_file_name_is_drawn_as_written_and_a_click_on_it_does_nothing(
        appliance: Appliance, repo: Path) -> None:
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    name = session["name"]
    agent_argv(container, ["touch", f"/workspace/{CLICK}", f"/workspace/{SPILL}"])

    async def run() -> None:
        async with piloting(appliance, (160, 50), showing=[name]) as (app, pilot):
            await until(pilot, lambda: main(app).extras.get(session["id"]), "detail extras")
            await until(pilot, lambda: "notes.txt" in screen_text(app), "the file's line")
            [(y, line)] = [(y, line) for y, line in enumerate(screen_text(app).splitlines())
                           if "notes.txt" in line]
            # The click's handler (and an action it runs) is done when the click returns.
            await pilot.click(offset=(line.index("notes.txt") + 2, y))
            after = appliance.session(name)
            assert after["desired"] != "archived", \
                f"a click on a file's name archived {name}: {after['desired']}"
            shown = detail(app)
            assert f"? {CLICK}" in shown and f"? {SPILL}" in shown, shown
            assert "Recent requests" in screen_text(app)

    scenario(run)


def test_a_file_name_textual_cannot_read_as_markup_leaves_the_tui_running(
        appliance: Appliance, repo: Path) -> None:
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    agent_argv(container, ["touch", f"/workspace/{BROKEN}"])
    ended: list[BaseException] = []

    async def run() -> None:
        try:
            async with piloting(appliance, (160, 50), showing=[session["name"]]) as (app, pilot):
                await until(pilot, lambda: main(app).extras.get(session["id"]), "detail extras")
                await until(pilot, lambda: f"? {BROKEN}" in detail(app), "the file's line")
                await pilot.press("q")
        except Exception as exc:  # what the app raised on its way out
            ended.append(exc)

    scenario(run)
    assert ended == [], f"the TUI ended on a file's name: {ended!r}"
