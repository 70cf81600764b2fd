"""A footer that wraps its key hints onto more rows instead of cutting them off.

Textual's :class:`Footer` lays every binding out on one row; at 80 columns a screen with a
dozen bindings loses the last ones. :class:`KeyFooter` puts them in a grid of fixed-width
cells and grows to as many rows as needed, so every binding is always on screen.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer

CELL_WIDTH = 13


class KeyFooter(Footer):
    DEFAULT_CSS = """
    KeyFooter { layout: grid; height: auto; }
    """

    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)

    def shown_actions(self) -> int:
        return len({b.action for (_, b, _, _) in self.screen.active_bindings.values() if b.show})

    def fit(self) -> None:
        width = self.screen.size.width or 80
        count = max(self.shown_actions(), 1)
        columns = max(1, min(count, width // CELL_WIDTH))
        self.styles.grid_size_columns = columns
        self.styles.height = -(-count // columns)

    def compose(self) -> ComposeResult:
        yield from super().compose()
        self.fit()

    def on_resize(self, _event: Resize) -> None:
        self.fit()
