"""Small modal screens: the yes/no confirmation, one line of text and the ``?`` help screen.

The help screen is built from the live binding tables of the screens (main list, create
dialog, reconcile view), so a binding added anywhere appears here without a second list.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from cli.tui.footer import KeyFooter


class ConfirmScreen(ModalScreen[bool]):
    """Ask one question; ``y`` answers True, ``n`` or Escape False."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 64; height: auto; border: thick $error;
                               background: $surface; padding: 1 2; }
    """
    BINDINGS = [
        Binding("y", "dismiss(True)", "Yes"),
        Binding("n", "dismiss(False)", "No"),
        Binding("escape", "dismiss(False)", "Cancel"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.question), id="question")  # may quote an agent: text
            yield Static("[b]y[/b] yes   [b]n[/b] no", id="choices")
        yield KeyFooter()


class TextScreen(ModalScreen[str | None]):
    """Ask for one line of text (Enter keeps it, Escape cancels): a session's title."""

    DEFAULT_CSS = """
    TextScreen { align: center middle; }
    TextScreen > Vertical { width: 72; height: auto; border: thick $primary;
                            background: $surface; padding: 1 2; }
    """
    BINDINGS = [Binding("escape", "dismiss", "Cancel")]

    def __init__(self, question: str, value: str, *, max_length: int = 120) -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.max_length = max_length

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.question))
            yield Input(value=self.value, id="text", max_length=self.max_length)
        yield KeyFooter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


def binding_lines(title: str, bindings: Iterable[BindingType]) -> list[str]:
    lines = [f"[b]{title}[/b]"]
    for b in bindings:
        if isinstance(b, Binding):
            keys = ", ".join(k.strip() for k in b.key.split(","))
            lines.append(f"  {(b.key_display or keys):<18} {b.description}")
    return lines


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 72; max-height: 90%; height: auto;
                                  border: thick $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, sections: list[tuple[str, Iterable[BindingType]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        lines: list[str] = []
        for title, bindings in self.sections:
            lines += [*binding_lines(title, bindings), ""]
        lines += ["[b]In the list[/b]",
                  "  up/down, j/k       move",
                  "  type after /       search name, branch, repo, prompt",
                  "[b]Attached[/b]",
                  "  ctrl+q             detach: the session keeps running, the TUI returns"]
        with VerticalScroll():
            yield Static("\n".join(lines), id="help-text")
        yield KeyFooter()
