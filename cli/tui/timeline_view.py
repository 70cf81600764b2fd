"""The timeline view: one session's messages, proxied requests, commits and events.

Opened with ``l`` on the selected session. It reads the newest page of
``GET /api/sessions/{id}/timeline`` and then asks again every :data:`POLL_SECONDS` (the
transcript and the audit log have no event), adding the items it has not shown by their
``key`` (:func:`cli.timeline_command.new_items`, the CLI's own rule); ``o`` loads the page before
the oldest shown. Each line is a :class:`rich.text.Text`, never markup: the agent writes
most of what is shown, and ``[link=...]`` or an escape sequence in a commit message must
stay characters.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import RichLog, Static

from appliance.errors import ClauderonError
from cli import calls
from cli.client import AsyncApiClient
from cli.timeline_command import CATCH_UP_PAGES, line, new_items
from cli.tui.footer import KeyFooter

POLL_SECONDS = 2.0
STYLE = {"message": "cyan", "audit": "yellow", "commit": "green", "event": "magenta"}


def styled(item: dict[str, Any]) -> Text:
    """One item as a line of plain text, coloured by its source (pure)."""
    return Text(line(item), style=STYLE.get(str(item.get("source")), ""), no_wrap=True)


class TimelineScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    TimelineScreen > Vertical { width: 100%; height: 100%; background: $surface;
                                border: thick $primary; }
    TimelineScreen #tl-head { height: auto; max-height: 4; padding: 0 1; }
    TimelineScreen RichLog { height: 1fr; }
    """
    BINDINGS = [
        Binding("o", "older", "Older"),
        Binding("escape,q", "dismiss", "Close"),
    ]

    def __init__(self, api: AsyncApiClient, session: dict[str, Any]) -> None:
        super().__init__()
        self.api = api
        self.session = session
        self.heading = f"Timeline of {session['name']}  (~: a time the agent wrote)"
        self.items: list[dict[str, Any]] = []  # oldest first, as shown
        self.cursor: str | None = None  # for the page before the oldest shown
        self.loaded = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.heading), id="tl-head")
            yield RichLog(id="tl-log", wrap=False, markup=False, highlight=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.refresh_items()
        self.set_interval(POLL_SECONDS, self.refresh_items)

    def show(self) -> None:
        log = self.query_one(RichLog)
        log.clear()
        for item in self.items:
            log.write(styled(item))

    async def _page(self, before: str | None) -> dict[str, Any]:
        return await self.api.run(calls.timeline(self.session["id"], before=before))

    @work(exclusive=True, group="timeline")
    async def refresh_items(self) -> None:
        seen = {i["key"] for i in self.items}
        pages: list[list[dict[str, Any]]] = []
        try:
            page = newest = await self._page(None)
            pages.append(page["items"])
            if not self.loaded:
                self.cursor = page["cursor"] if page["more"] else None
            while (self.loaded and page["more"] and len(pages) < CATCH_UP_PAGES
                   and not any(i["key"] in seen for i in page["items"])):
                page = await self._page(page["cursor"])
                pages.append(page["items"])
        except ClauderonError as exc:
            self.query_one("#tl-head", Static).update(Text(f"Timeline: {exc.message}"))
            return
        notes = [str(n) for n in newest.get("notes", ())]  # sources left out, and why
        self.query_one("#tl-head", Static).update(Text("  ".join([self.heading, *notes])))
        added = new_items(pages, seen)
        self.loaded = True
        if added:
            self.items += added
            log = self.query_one(RichLog)
            for item in added:
                log.write(styled(item))

    @work(exclusive=True, group="timeline-older")
    async def action_older(self) -> None:
        if self.cursor is None:
            self.notify("Nothing older")
            return
        try:
            page = await self._page(self.cursor)
        except ClauderonError as exc:
            self.notify(exc.message, severity="error")
            return
        seen = {i["key"] for i in self.items}
        self.items = [i for i in page["items"] if i["key"] not in seen] + self.items
        self.cursor = page["cursor"] if page["more"] else None
        self.show()
