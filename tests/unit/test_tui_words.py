"""Words the TUI did not write are text inside its markup, whatever they hold
(:mod:`cli.tui.words`): Textual reads tags that Rich's ``escape`` leaves as they are."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from rich.markup import escape
from textual.content import Content
from textual.markup import MarkupError

from cli.tui.words import join_lines, markup, text

ROOT = Path(__file__).resolve().parents[2]

#: Each a tag to Textual, or a way out of the TUI's own tag around it.
HOSTILE = [
    "[@click=app.quit]x[/]",
    "[ @click=screen.verb('archive')]notes.txt",  # Rich's escape passes a leading space
    "[ link=x:y ]todo.txt",  # markup Textual cannot read: the app ended
    "[$background on $background]hidden",  # a capital, `$`: passed too
    "[B]x",
    "[\tb]x",
    "[/]closed",
    "[ /]closed",
    "a name ending in a backslash\\",  # would eat the next tag's bracket
    "\\[b]x",
    "$word ${word} $$",  # the template's own variables stay text
    "[link=https://x.example]see[/link]",
]


@pytest.mark.parametrize("words", HOSTILE)
def test_a_word_is_text_in_the_template(words: str) -> None:
    drawn = markup("[b]$word[/b] ($n)", word=words, n=3)
    assert drawn.plain == f"{words} (3)"
    assert [(s.start, s.end, str(s.style)) for s in drawn.spans] == [(0, len(words), "b")]
    assert text(words).plain == words and not text(words).spans


@pytest.mark.parametrize("words", [*HOSTILE[1:6], HOSTILE[8]])
def test_richs_escape_did_not_make_them_text(words: str) -> None:
    """The escape the TUI used: each of these was read as a tag, or not read at all."""
    try:
        drawn = Content.from_markup(f"[b]{escape(words)}[/b]")
    except MarkupError:
        return
    assert drawn.plain != words or len(drawn.spans) > 1


def test_words_come_without_control_characters_and_lines_join() -> None:
    osc52 = "\x1b]52;c;cm0gLXJmIH4=\x07"
    assert markup("[red]$e[/]", e=f"boom{osc52}").plain == "boom]52;c;cm0gLXJmIH4="
    assert join_lines([text("a"), markup("[b]b[/b]")]).plain == "a\nb"


def test_no_screen_puts_words_into_markup_with_an_escape() -> None:
    """Every escape of markup is gone from the TUI: none holds every string."""
    found = []
    for path in sorted((ROOT / "cli" / "tui").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in ("rich.markup",
                                                                    "textual.markup"):
                found.append(f"{path.name}:{node.lineno}")
    assert found == []
