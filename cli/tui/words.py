"""Words the TUI did not write, drawn as text inside the TUI's own markup (pure).

What the API answers may hold an agent's words (a file's name, a session's title, git's
complaint, a pull request's title), and Textual reads markup in any string a widget
draws: ``[@click=...]`` runs an action when clicked, ``[link=...]`` opens a URL, a style
spills over what follows, and a tag Textual cannot read ends the app. No escape holds
every string: Textual reads a tag where Rich's ``escape`` (and Textual's own) sees none
(one that begins with a space, a capital or ``$``), and no text that ends in a backslash
can stand before a tag. So such a string never becomes markup: :func:`markup` reads only
the TUI's own template as markup and puts each word in as text (Textual's template
variables, substituted after the tags are read), and :func:`join_lines` joins what it made.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.content import Content

from cli.table import inert


def markup(template: str, **words: object) -> Content:
    """``template`` (markup the TUI wrote) with each ``$word`` in its text replaced by
    ``words[word]``, as text: no tag, style or action in a word is read."""
    return Content.from_markup(template, **{k: inert(str(v)) for k, v in words.items()})


def text(words: object) -> Content:
    """``words`` as a line of plain text."""
    return Content(inert(str(words)))


def join_lines(parts: Iterable[Content]) -> Content:
    """``parts``, one a line."""
    return Content("\n").join(parts)
