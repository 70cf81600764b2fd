"""The CLI's commands as data, and the one loop that makes argparse parsers of them.

Each subcommand is described once, where its handler lives, as a :class:`Command` (name,
help, arguments, handler); ``cli/commands.py`` puts the tables together in the order
``clauderon --help`` lists them, and :func:`build` turns them into parsers. Shell completion
(``cli/completion.py``) reads the parsers, so it follows the tables too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from appliance.quoted import HIDDEN, marked
from appliance.timeline import plain

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True, slots=True)
class Arg:
    """One ``add_argument`` call: the flags (or a positional's name) and its options."""

    flags: tuple[str, ...]
    options: dict[str, Any]


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


@dataclass(frozen=True, slots=True)
class OneOf:
    """Arguments of which at most one (with ``required``, exactly one) may be given."""

    args: tuple[Arg, ...]
    required: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One subcommand. ``session`` adds the leading session argument, ``json`` the
    ``--json`` flag; ``actions`` are its own subcommands (``auth list``), chosen into
    ``actions_dest``. ``description`` defaults to the help line."""

    name: str
    help: str
    handler: Handler | None
    args: tuple[Arg | OneOf, ...] = ()
    session: bool = False
    json: bool = True
    description: str | None = None
    actions: tuple[Command, ...] = ()
    actions_dest: str = ""


def build(parser: argparse.ArgumentParser, commands: Sequence[Command], *,
          dest: str = "command", metavar: str = "COMMAND") -> None:
    """Add ``commands`` to ``parser`` as its required subcommands, each with its handler."""
    sub = parser.add_subparsers(dest=dest, required=True, metavar=metavar)
    for command in commands:
        p = sub.add_parser(command.name, help=command.help,
                           description=command.description or command.help)
        p.set_defaults(handler=command.handler)
        if command.session:
            p.add_argument("session", help="session name or id")
        if command.json:
            p.add_argument("--json", action="store_true", help="print JSON")
        for item in command.args:
            group = (p.add_mutually_exclusive_group(required=item.required)
                     if isinstance(item, OneOf) else p)
            for one in item.args if isinstance(item, OneOf) else (item,):
                group.add_argument(*one.flags, **one.options)
        if command.actions:
            build(p, command.actions, dest=command.actions_dest, metavar="ACTION")


def inert(text: str) -> str:
    """``text`` with no control character but newline and tab, and each character a
    terminal draws as nothing shown as what it is (``<U+200D>``). What the API answers may
    hold an agent's words (a file's name, git's complaint about it, the code of its diff),
    and a terminal acts on some sequences (OSC 52 sets the clipboard): the CLI prints none
    it did not write, and hides none."""
    shown = marked(text)
    return plain(shown, len(shown) + 1)


def _cells(char: str) -> int:
    """The most columns a terminal draws ``char`` in: a tab up to eight, a character
    outside printable ASCII two (wide, or wider than the terminal's own table says)."""
    return 1 if " " <= char <= "~" else 8 if char == "\t" else 2


def rows(line: str, width: int, indent: int) -> list[str]:
    """``line`` (one line of text) as the rows of a terminal ``width`` columns wide, each
    row after the first begun by ``indent`` spaces; ``[line]`` for no width (not a
    terminal). A terminal wraps a long line at its edge itself, and draws what follows at
    the start of a row: where a line of the CLI's own begins (an item's time and source),
    written there by whoever wrote the words. Widths are counted high: no row wraps again."""
    indent = min(indent, width // 2)
    room = width - 1
    if room < 2:
        return [line]
    out, row, used = [], "", 0
    for char in line:
        size = _cells(char)
        if used + size > room and used > indent:
            out.append(row)
            row, used = " " * indent, indent
        row += char
        used += size
    return [*out, row]


#: What is drawn as a slash and is none: division, fraction, fullwidth and big solidus, the
#: box-drawing diagonal, the Philippine punctuation. A file named ``src<U+2215>app.py`` lies
#: in the root and reads as ``src/app.py``. Marked in paths only (:func:`inert_path`): in
#: the agent's words they mean what they show (``1<U+2044>2``, a Japanese sentence, a
#: diagram) and hide no file elsewhere. The web UI's set.
SLASHES = re.compile("[\u1735\u2044\u2215\u2571\u29f8\uff0f]")


def inert_path(text: str) -> str:
    """A path as :func:`inert` shows it, each character drawn as a slash that is none marked
    too (``<U+2215>``). Of text already inert, the same."""
    return marked(inert(text), SLASHES)


#: A mark :func:`inert` may have written: ``<U+`` and four or five capital hex digits.
MARK = re.compile("<U\\+([0-9A-F]{4,5})>")


def unmarked(text: str) -> str:
    """``text`` with each mark that names a character :func:`inert` marks (``<U+2060>``)
    made that character again: what a person edits in the form it was shown goes back as
    what it was, not with the marks as letters. A mark of any other character is text."""
    def back(m: re.Match[str]) -> str:
        char = chr(int(m.group(1), 16))
        return char if HIDDEN.fullmatch(char) else m.group()
    return MARK.sub(back, text)


def inert_json(value: Any) -> Any:
    """``value`` (JSON as parsed) with every string in it made :func:`inert`."""
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, list):
        return [inert_json(v) for v in value]
    if isinstance(value, dict):
        return {inert_json(k): inert_json(v) for k, v in value.items()}
    return value


#: How far a row that goes on a line of the CLI's output is indented.
CONTINUED = 2


def width() -> int:
    """The columns of the terminal the CLI prints to; 0 when it prints to none."""
    return os.get_terminal_size(sys.stdout.fileno()).columns if sys.stdout.isatty() else 0


def fit(text: str) -> str:
    """``text`` made :func:`inert`, in the :func:`rows` of the terminal the CLI prints to."""
    columns = width()
    return "\n".join(row for line in inert(text).split("\n")
                     for row in rows(line, columns, CONTINUED))


def emit(args: argparse.Namespace, data: Any, text: str) -> int:
    """Print what a handler found: JSON under ``--json`` (the flag :class:`Command` adds;
    it escapes every control character), else ``text`` as :func:`fit` makes it."""
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else fit(text))
    return 0
