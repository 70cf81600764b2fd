"""The agent's words in the TUI, driven by Textual's pilot against the real API and engine.

The TUI draws its detail pane as Textual markup, and the agent names the files it changes:
a name is data. Textual's markup reads more as a tag than Rich's does (a tag may begin with
a space, a capital or ``$``), so names that Rich's ``escape`` let through were tags: a file
named ``[ @click=screen.verb('archive')]notes.txt`` showed as ``notes.txt`` and archived
the session when clicked, and one named ``[ link=x:y ]`` was markup Textual cannot read:
the TUI ended with a traceback the moment the person selected the session. The agent makes
the files in its real container (base image) as its own uid.

The TUI shows a character a terminal draws as nothing as a mark naming it (``<U+2060>``),
and its title dialog was filled with what it showed: saving an edit wrote the mark into the
title as text, eight letters where one character was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Input

from cli.tui.dialogs import TextScreen
from tests.integration.test_transcript_containment import start_session
from tests.integration.tui_pilot import (
    main,
    notices,
    piloting,
    scenario,
    screen_text,
    top,
    until,
)
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


def test_an_edited_title_keeps_the_characters_it_showed_as_marks(
        appliance: Appliance, repo: Path) -> None:
    http = appliance.http(timeout=15)
    session, _ = start_session(appliance, http, repo, "claude")
    name, title = session["name"], "check is_ad\u2060min\ufeff"
    r = http.patch(f"/api/sessions/{session['id']}", json={"title": title})
    assert r.status_code == 200 and r.json()["session"]["title"] == title, r.text

    async def edit(*keys: str) -> None:
        async with piloting(appliance, (160, 50), showing=[name]) as (app, pilot):
            await until(pilot, lambda: main(app).selected(), "the session selected")
            await pilot.press("e")
            dialog = await until(pilot, lambda: top(app, TextScreen), "the title dialog")
            shown = dialog.query_one("#text", Input).value
            # The person sees what is there while editing.
            assert shown == "check is_ad<U+2060>min<U+FEFF>", shown
            await pilot.press(*keys, "enter")
            await until(pilot, lambda: [n for n in notices(app) if n.startswith(f"{name}: ")
                                        and ("titled" in n or "unchanged" in n)],
                        "the edit's notice")

    scenario(edit)  # saved as it was shown
    assert appliance.session(name)["title"] == title, \
        f"the edit wrote the marks as text: {appliance.session(name)['title']!r}"
    scenario(lambda: edit("end", "space", "n", "o", "w"))
    after = appliance.session(name)["title"]
    assert after == title + " now", f"the edit wrote the marks as text: {after!r}"


#: A file's path that is another changed file's line after a run of spaces (its folder's
#: name holds them).
FOLDED = "notes.txt" + " " * 200 + "M .github/workflows/ci.yml"


def test_a_file_name_cannot_draw_another_changed_files_line(appliance: Appliance,
                                                            repo: Path) -> None:
    """The detail pane wrapped its lines at its edge and folded the spaces there: a file
    named ``notes.txt``, 200 spaces and ``M .github/workflows/ci.yml`` was drawn as two
    changed files, the second one the agent never touched, at any width. The pane's lines
    are now drawn whole, one a row (it scrolls sideways)."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    name = session["name"]
    agent_argv(container, ["mkdir", "-p", f"/workspace/{FOLDED.rsplit('/', 1)[0]}"])
    agent_argv(container, ["touch", f"/workspace/{FOLDED}"])

    async def run() -> None:
        async with piloting(appliance, (160, 50), showing=[name]) as (app, pilot):
            await until(pilot, lambda: main(app).extras.get(session["id"]), "detail extras")
            await until(pilot, lambda: "notes.txt" in screen_text(app), "the file's line")
            rows = screen_text(app).splitlines()
            forged = [row for row in rows
                      if "M .github/workflows/ci.yml" in row and "notes.txt" not in row]
            assert forged == [], f"a file's name draws another file's line: {rows}"
            assert f"? {FOLDED}" in detail(app), detail(app)

    scenario(run)
