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
from tests.support.appliance import BIN, Appliance
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
