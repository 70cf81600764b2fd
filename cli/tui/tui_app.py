"""``clauderon tui``: the session list with its detail pane, kept live from ``/ws/events``.

Theory of operation. :class:`MainScreen` keeps ``sessions`` (id -> the API's session JSON)
and redraws the table from it through the pure rules in :mod:`cli.tui.tui_model`: a filter
shows what the API's ``filters`` field says, the keys that act on the selected session are
the ones its ``actions`` allow (the footer shows no other). One worker,
:meth:`MainScreen.follow_events`, owns the connection through the client's follower
(:meth:`cli.client.AsyncApiClient.follow`): it fetches the full list once the stream says
``connected`` (so no event falls between the two), then folds each event into
``sessions``. When the API is down, slow or restarts, the follower says ``lost``, the top
bar says "disconnected", and it reconnects with a growing pause, resuming after the last
event seen. Every REST call has a timeout, and all of them run in workers, so no key press
ever waits on the socket.

Neighbours: :mod:`cli.tui.actions` (the keys that act on the selected session, attach
among them; :class:`MainScreen` inherits them), :mod:`cli.tui.create` (the create dialog),
:mod:`cli.tui.reconcile`, :mod:`cli.tui.dialogs` (confirm, help), :mod:`cli.tui.detail`,
:mod:`cli.tui.terminal` (attach and the editor take the terminal through it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from appliance.errors import ClauderonError
from cli import calls
from cli.client import AsyncApiClient
from cli.live import kept_note
from cli.tui.actions import SessionActions
from cli.tui.create import CreateScreen
from cli.tui.detail import detail_text, load_extras
from cli.tui.dialogs import HelpScreen
from cli.tui.footer import KeyFooter
from cli.tui.reconcile import ReconcileScreen
from cli.tui.terminal import Foreground, SuspendingTerminal
from cli.tui.timeline_view import TimelineScreen
from cli.tui.tui_model import (
    COLUMNS,
    KEY_VERBS,
    KEYS,
    Filter,
    apply_event,
    detail_moved,
    key_works,
    row,
    visible,
)
from cli.tui.words import markup, text

PHASE_STYLE = {"running": "green", "failed": "bold red", "creating": "yellow",
               "creating!": "bold yellow", "deleting": "magenta", "archived": "dim",
               "stopped": "cyan"}
AGE_REFRESH_SECONDS = 15.0
#: How soon the detail pane is read again after a hook that moved nothing it shows (the
#: agent at work: its diff and audit lines move): once in this while, however many came.
DETAIL_QUIET_SECONDS = 2.0


class MainScreen(SessionActions):
    AUTO_FOCUS = "#sessions"
    DEFAULT_CSS = """
    #topbar { height: 1; background: $panel; }
    #title { width: 1fr; padding: 0 1; }
    #conn { width: auto; padding: 0 1; }
    #search { display: none; height: 1; }
    #search.shown { display: block; }
    #body { height: 1fr; layout: vertical; }
    #body.wide { layout: horizontal; }
    #sessions { height: 1fr; min-height: 5; }
    #detail-pane { height: 9; border-top: solid $primary; padding: 0 1; overflow-x: auto; }
    /* A line never wraps: a row begins with none of the agent's words (the pane scrolls). */
    #detail { width: auto; text-wrap: nowrap; }
    #body.wide #detail-pane { height: 1fr; width: 2fr; border-top: none;
                              border-left: solid $primary; }
    #body.wide #sessions { width: 3fr; }
    """
    BINDINGS = [Binding(k.key, k.action, k.label, show=k.show, key_display=k.display,
                        priority=k.priority) for k in KEYS]

    def __init__(self, api: AsyncApiClient, terminal: Foreground,
                 clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.api = api
        self.terminal = terminal
        self.clock = clock
        self.sessions = {}
        self.filter = Filter.ACTIVE
        self.search = ""
        self.working_keys: frozenset[str] = frozenset()
        self.loaded = False
        self.extras: dict[str, dict[str, Any]] = {}
        self.detail_due: Timer | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="topbar"):
            yield Static("", id="title")
            yield Static("connecting...", id="conn")
        yield Input(placeholder="search (esc clears)", id="search", compact=True)
        with Container(id="body"):
            table: DataTable[str | Text] = DataTable(cursor_type="row", id="sessions",
                                                     zebra_stripes=True)
            table.add_columns(*COLUMNS)
            yield table
            with VerticalScroll(id="detail-pane"):
                yield Static("", id="detail")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.redraw()
        self.follow_events()
        self.set_interval(AGE_REFRESH_SECONDS, self.redraw)

    def on_resize(self) -> None:
        self.query_one("#body").set_class(self.size.width >= 140, "wide")

    # --- the connection ---------------------------------------------------------------
    @work(exclusive=True, group="events")
    async def follow_events(self) -> None:
        try:
            await self._follow_events()
        except NoMatches:
            if self.is_mounted and self.query("#sessions"):
                raise
            # else the screen is being taken down while an event was drawn: nothing to do

    async def _follow_events(self) -> None:
        stale = True
        async with aclosing(self.api.follow()) as stream:
            async for message in stream:
                if message is None or message.get("type") == "connected":
                    # Connected (again), or a quiet spell after a failed read: the list,
                    # read after the stream's cursor is set, so no event falls between.
                    stale = stale or message is not None
                    if stale:
                        stale = not await self.reload()
                elif message.get("type") == "lost":
                    self.set_connected(False, str(message["error"]))
                elif message.get("type") == "event":
                    event = message["event"]
                    kept = kept_note(event)
                    if kept is not None:
                        gone = self.sessions.get(str(event.get("session_id")), {})
                        self.notify(f"{gone.get('name', 'a deleted session')}: {kept}",
                                    severity="warning", timeout=60, markup=False)
                    changed = apply_event(self.sessions, event)
                    if changed:
                        self.redraw()
                    if event.get("session_id") != self.selected_id():
                        continue
                    if detail_moved(event, changed):
                        self.load_detail()
                    elif self.detail_due is None:  # a flood of hooks reads it once a while
                        self.detail_due = self.set_timer(DETAIL_QUIET_SECONDS, self.detail_later)

    async def reload(self) -> bool:
        """Read the whole list; False (and "disconnected") when the API did not answer."""
        try:
            listed = await self.api.run(calls.sessions(everything=True))
        except ClauderonError as exc:
            self.set_connected(False, exc.message)
            return False
        self.sessions = {s["id"]: s for s in listed}
        self.loaded = True
        self.set_connected(True)
        self.redraw()
        self.load_detail()
        return True

    def set_connected(self, up: bool, why: str = "") -> None:
        conn = self.query_one("#conn", Static)
        if up:
            conn.update("[green]● connected[/]")
        else:
            conn.update("[b red]● disconnected[/] retrying")
            conn.tooltip = text(why)

    # --- drawing ----------------------------------------------------------------------
    def shown(self) -> list[dict[str, Any]]:
        return visible(self.sessions.values(), self.filter, self.search)

    def redraw(self) -> None:
        table = self.query_one("#sessions", DataTable)
        keep = self.selected_id()
        rows = self.shown()
        now = self.clock()
        table.clear()
        for s in rows:
            cells = [Text(c) for c in row(s, now)]  # never markup: they are the API's
            cells[1] = Text(str(cells[1]), style=PHASE_STYLE.get(str(cells[1]), ""))
            if str(cells[2]).startswith("waiting"):
                cells[2] = Text(str(cells[2]), style="bold yellow")
            table.add_row(*cells, key=s["id"])
        ids = [s["id"] for s in rows]
        if keep in ids:
            table.move_cursor(row=ids.index(keep), animate=False)
        self.query_one("#title", Static).update(markup(
            "[b]clauderon[/b]  [reverse] $filter [/] $shown/$total"
            + ("  search: $search" if self.search else ""), filter=self.filter,
            shown=len(rows), total=len(self.sessions), search=self.search))
        self.draw_detail()

    def selected_id(self) -> str | None:
        table = next(iter(self.query("#sessions").results(DataTable)), None)
        if table is None or not table.row_count:  # none: the screen is being taken down
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(key) if key is not None else None

    def selected(self) -> dict[str, Any] | None:
        sid = self.selected_id()
        return self.sessions.get(sid) if sid else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that act on a session show, and work, only when its ``actions`` allow."""
        name = str(parameters[0]) if action == "verb" else action
        if name == "attach" and self.searching():
            return True  # Enter ends the search
        return key_works(self.selected() if self.is_mounted else None, name)

    def searching(self) -> bool:
        return self.is_mounted and self.focused is self.query_one("#search", Input)

    def draw_detail(self) -> None:
        detail = self.query_one("#detail", Static)
        s = self.selected()
        working = frozenset(a for a in KEY_VERBS if key_works(s, a))
        if working != self.working_keys:
            self.working_keys = working
            self.refresh_bindings()
        if s is None:
            hint = ("No sessions here. Press n to create one, f to change the filter."
                    if self.loaded else "Waiting for the API...")
            detail.update(hint)
            return
        detail.update(detail_text(s, self.extras.get(s["id"], {}), self.clock()))

    @on(DataTable.RowHighlighted, "#sessions")
    def highlighted(self) -> None:
        self.draw_detail()
        self.load_detail()

    def reload_detail(self) -> None:
        self.load_detail()

    def detail_later(self) -> None:
        self.detail_due = None
        self.load_detail()

    @work(exclusive=True, group="detail")
    async def load_detail(self) -> None:
        sid = self.selected_id()
        if sid is None:
            return
        await asyncio.sleep(0.05)  # a burst of highlights loads once
        self.extras[sid] = await load_extras(self.api, sid)
        if self.selected_id() == sid:
            self.draw_detail()

    # --- list keys ----------------------------------------------------------------------
    def action_cursor(self, step: int) -> None:
        table = self.query_one("#sessions", DataTable)
        table.move_cursor(row=table.cursor_row + step)

    def action_next_filter(self) -> None:
        self.filter = self.filter.next()
        self.redraw()

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.add_class("shown")
        box.focus()

    @on(Input.Changed, "#search")
    def search_changed(self, event: Input.Changed) -> None:
        self.search = event.value
        self.redraw()

    @on(Input.Submitted, "#search")
    def search_done(self) -> None:
        self.query_one("#sessions").focus()

    def action_clear_search(self) -> None:
        box = self.query_one("#search", Input)
        box.value = ""
        box.remove_class("shown")
        self.query_one("#sessions").focus()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen([
            ("Sessions", self.BINDINGS), ("New session", CreateScreen.BINDINGS),
            ("Reconcile", ReconcileScreen.BINDINGS), ("Timeline", TimelineScreen.BINDINGS)]))

    def action_quit(self) -> None:
        self.app.exit()


class ClauderonApp(App[None]):
    """The TUI. ``terminal`` and ``clock`` are passed in so tests can run it headless."""

    TITLE = "clauderon"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, socket_path: Path, *, terminal: Foreground | None = None,
                 clock: Callable[[], datetime] | None = None, timeout: float = 5.0) -> None:
        super().__init__()
        # Every string it draws is inert: an answer may hold an agent's words, and Textual
        # writes an escape sequence in them to the person's terminal as it is.
        self.api = AsyncApiClient(socket_path, timeout=timeout, inert=True)
        self.terminal: Foreground = terminal or SuspendingTerminal()
        self.clock = clock or (lambda: datetime.now(UTC))

    def on_mount(self) -> None:
        self.push_screen(MainScreen(self.api, self.terminal, self.clock))

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notice as text, never markup, whoever asks for it: many quote what an
        agent wrote (an error, its health report, a failed session's reason), and Textual
        runs a ``[@click=...]`` action when it is clicked."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    async def on_unmount(self) -> None:
        await self.api.aclose()


def run_tui(socket_path: Path) -> int:
    ClauderonApp(socket_path).run()
    return 0
