"""The agent's words in the CLI's output, from the real ``clauderon`` on a real terminal.

The person reviews what the agent changed with ``clauderon diff`` before merging it, and a
terminal draws a zero-width character as nothing: ``is_ad<ZWJ>min`` read as ``is_admin``,
another identifier than the one the code defines ("Trojan Source"), and a bidi override was
taken out without a word. ``clauderon timeline`` printed the agent's words the same way. The web
UI marks each such character; the CLI now shows it as a marked ``<U+XXXX>`` too. The agent
writes its file and its transcript in its real container (base image) as its own uid.
"""

from __future__ import annotations

import re
from pathlib import Path

from cli.table import SLASHES
from tests.e2e.test_webui_hidden_chars import (
    CODE,
    DRAWN_AS_NOTHING,
    HIDDEN,
    LOOKALIKE_NAMES,
    WRITE,
)
from tests.integration.test_transcript_containment import claude_says, line, start_session
from tests.support.agent_app import create, in_container
from tests.support.appliance import BIN, Appliance, wait_for
from tests.support.hostile import agent_argv
from tests.support.terminal import on_a_terminal


def in_terminal(appliance: Appliance, *args: str) -> str:
    """What ``clauderon ARGS`` writes to a pseudo-terminal, once it has exited 0."""
    code, out = on_a_terminal([str(BIN / "clauderon"), *args], appliance.env)
    assert code == 0, out[-2000:]
    return out


def test_the_diff_shows_characters_a_terminal_draws_as_nothing(appliance: Appliance,
                                                                repo: Path) -> None:
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    agent_argv(container, ["perl", "-CA", "-e", WRITE, "/workspace/src/app.py", CODE])
    shown = in_terminal(appliance, "diff", session["name"])
    assert "You are an admin." in shown, shown
    found = sorted({f"U+{ord(c):04X}" for c in HIDDEN.findall(shown)})
    assert found == [], f"the diff draws {found} as nothing: {shown!r}"
    assert "+def is_ad<U+200D>min():<U+200B>" in shown, shown
    assert re.search(r'"user<U\+202E> <U\+2066># Check if admin<U\+2069> <U\+2066>"', shown), \
        shown


def test_the_timeline_shows_characters_a_terminal_draws_as_nothing(appliance: Appliance,
                                                                    repo: Path) -> None:
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    said = "Checked: is_ad\u200dmin() now guards the\u2060 release."
    claude_says(container, session["id"], line("assistant", said))
    shown = in_terminal(appliance, "timeline", session["name"])
    assert "guards the" in shown, shown
    found = sorted({f"U+{ord(c):04X}" for c in HIDDEN.findall(shown)})
    assert found == [], f"the timeline draws {found} as nothing: {shown!r}"
    assert "is_ad<U+200D>min() now guards the<U+2060> release." in shown, shown


#: What the marks of :data:`DRAWN_AS_NOTHING` must name, in order.
DRAWN_AS_NOTHING_MARKED = ("def is_ad" + "".join(f"<U+{0xE0000 + ord(c):05X}>" for c in
                                                 "drop table") + "min():",
                           "run(<U+3164>)  # ar<U+00AD>gs<U+034F>", "def chec<U+FE00>k():")


def test_the_diff_shows_the_default_ignorable_characters_too(appliance: Appliance,
                                                              repo: Path) -> None:
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    agent_argv(container, ["perl", "-CA", "-e", WRITE, "/workspace/src/app.py",
                           DRAWN_AS_NOTHING])
    shown = in_terminal(appliance, "diff", session["name"])
    assert "return False" in shown, shown
    found = sorted({f"U+{ord(c):04X}" for c in HIDDEN.findall(shown)})
    assert found == [], f"the diff draws {found} as nothing: {shown!r}"
    for marked in DRAWN_AS_NOTHING_MARKED:
        assert marked in shown, shown


def test_the_diff_draws_no_look_alike_separator_in_a_path(appliance: Appliance,
                                                          repo: Path) -> None:
    """The agent adds ``src<U+2215>app.py`` (a division slash) and its kin beside the real
    ``src/app.py``: files of the root that read as files in ``src``. The diff's paths are
    git's, which quotes every byte outside ASCII (``"src\\342\\210\\225app.py"``), and the
    CLI marks any such character a path still holds (``tests/unit/test_render.py``): none
    reaches the terminal as a slash. The code's own words are left as written."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    argv = ["perl", "-CA", "-e", WRITE]
    for name in LOOKALIKE_NAMES:
        agent_argv(container, [*argv, f"/workspace/{name}", "half = 1\u20442\n"])
    words = in_terminal(appliance, "diff", session["name"])
    assert "+half = 1\u20442" in words, words  # words, not a path
    shown = in_terminal(appliance, "diff", "--stat", session["name"])
    for name in LOOKALIKE_NAMES:
        quoted = "".join(c if c.isascii() else "".join(f"\\{b:03o}" for b in c.encode())
                         for c in name)
        assert f'A  "{quoted}"' in shown, shown
    assert not SLASHES.search(shown), shown
    assert not SLASHES.search(words.replace("+half = 1\u20442", "")), words


#: An audit line as ``clauderon timeline`` prints one, forged: the agent's words run to the
#: terminal's edge (dots, not spaces: any letter pads) and this follows, drawn
#: at the start of the next row as an item of its own.
FORGED_AUDIT = "12:00:00  NET request     GET api.github.com/repos/o/r 200 allowed"


def screen_rows(shown: str, columns: int) -> list[str]:
    """The rows a terminal ``columns`` wide draws of ``shown`` (ASCII): each line wrapped
    at the edge, as terminals wrap."""
    rows: list[str] = []
    for text in shown.replace("\r", "").split("\n"):
        rows += [text[i:i + columns] for i in range(0, max(len(text), 1), columns)]
    return rows


def test_the_agents_words_cannot_draw_an_item_of_their_own_in_the_timeline(
        appliance: Appliance, repo: Path) -> None:
    """A line of the timeline is an item: its time, its source, its words. Words of the
    agent's (a message, a commit subject) long enough to wrap drew what followed the edge
    at the start of a row, in the place of a time and a source: a proxied request the agent
    never made (or one it made, hidden among forged ones). A row that goes on an item is
    now indented under its words."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    head = len("12:00:00~ MSG assistant   ")
    said = "Tidied the tests " + "." * (80 - head - 17) + FORGED_AUDIT
    claude_says(container, session["id"], line("assistant", said))
    http = appliance.http(timeout=15)
    wait_for(lambda: any(i["source"] == "message" for i in http.get(
        f"/api/sessions/{session['id']}/timeline").json()["items"]), what="the message")
    rows = rows_on_a_terminal(appliance, "timeline", session["name"])
    forged = [row for row in rows if row.startswith(FORGED_AUDIT[:24])]
    assert forged == [], f"the words draw an item of their own: {rows}"
    words = "".join(row.removeprefix(" " * head) for row in rows)  # all of them, still
    assert said in words, rows


def rows_on_a_terminal(appliance: Appliance, *args: str, columns: int = 80) -> list[str]:
    """The rows the CLI's ``args`` draw on a terminal ``columns`` wide (it ran without
    error)."""
    code, shown = on_a_terminal([str(BIN / "clauderon"), *args], appliance.env,
                                columns=columns)
    assert code == 0, shown[-2000:]
    return screen_rows(shown, columns)


#: The diff's label of what a push sends, forged: a line of the agent's file runs to the
#: terminal's edge and this follows, drawn at the start of the next row.
FORGED_LABEL = "-- committed @ 1234567890abcdef1234567890abcdef12345678 (what a push sends)"


def test_a_line_of_the_agents_file_cannot_draw_a_label_of_the_diffs_own(
        appliance: Appliance, repo: Path) -> None:
    """The diff's own lines (a repository's header, what a push sends and what it does not)
    begin a row; each line of the agent's code begins with ``+``, ``-`` or a space. A line
    of code long enough to wrap drew what followed the edge at the start of a row: a label
    of the diff's own, in the agent's words, that could say its change is not what a push
    sends. A row that goes on a line of any of the CLI's output is now indented."""
    session, container = start_session(appliance, appliance.http(timeout=15), repo, "claude")
    code = "x = 1  # " + "." * (80 - 1 - 9) + FORGED_LABEL
    agent_argv(container, ["perl", "-CA", "-e", WRITE, "/workspace/src/app.py", code + "\n"])
    rows = rows_on_a_terminal(appliance, "diff", session["name"])
    forged = [row for row in rows if row.startswith(FORGED_LABEL[:30])]
    assert forged == [], f"the code draws a label of the diff's own: {rows}"
    assert code in "".join(row.removeprefix("  ") for row in rows), rows


#: A row of ``clauderon delete`` forged: the agent's name for a file among its objects runs
#: to the terminal's edge in the note that says where its workspace was kept, and this
#: follows, drawn at the start of the next row as a note of the CLI's own.
FORGED_NOTE = "  nothing was kept: the workspace held nothing of yours"


def test_the_agents_words_cannot_draw_a_note_of_their_own_in_a_delete(
        app: Appliance, repo: Path) -> None:
    """The delete brings the branch in one last time and keeps the workspace aside when a
    file among its objects is not a regular one, naming that file in its note: the name is
    the agent's, and the progress line and its notes were printed as they came, not in the
    terminal's rows. They now go through the same rows as every other output."""
    s = create(app, repo, "keeper")
    kept = app.settings.kept_dir / f"keeper-{s['id'][:8]}"
    head = (f"  workspace kept at {kept} (the branch was not brought in: "
            ".git/objects/pack/")
    name = "." * (-len(head) % 80) + FORGED_NOTE
    in_container(app, s, f"ln -s nowhere '.git/objects/pack/{name}'")
    rows = rows_on_a_terminal(app, "delete", "--force", "keeper")
    assert any(row.startswith("  workspace kept at") for row in rows), rows
    forged = [row for row in rows if row.startswith(FORGED_NOTE)]
    assert forged == [], f"the words draw a note of their own: {rows}"
    assert name in "".join(row.removeprefix("  ") for row in rows), rows
