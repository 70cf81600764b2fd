"""The reconcile view: what is out of sync, failed sessions first, with retry and delete.

Reads ``GET /api/reconcile`` (problems) and the failed sessions from the list. ``t``
retries the highlighted failed session, ``d`` deletes it after a confirmation.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from appliance.errors import ClauderonError
from cli import calls
from cli.client import AsyncApiClient
from cli.tui.dialogs import ConfirmScreen
from cli.tui.footer import KeyFooter
from cli.tui.tui_model import delete_question, offered
from cli.tui.words import markup, text


def problem_cells(problem: dict[str, Any]) -> tuple[Text, Text, Text]:
    """A problem's row: text, never markup (a failed session's reason may quote what its
    agent wrote, a file name or a ref, and Textual runs a ``[@click=...]`` when clicked)."""
    return (Text(str(problem["session"] or "-")),
            Text(str(problem["problem"]).replace("_", " ")), Text(str(problem["detail"])))


class ReconcileScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    ReconcileScreen { align: center middle; }
    ReconcileScreen > Vertical { width: 100%; height: 100%; border: thick $warning;
                                 background: $surface; }
    ReconcileScreen #summary { height: auto; padding: 0 1; }
    ReconcileScreen DataTable { height: 1fr; }
    ReconcileScreen #reason { height: auto; max-height: 6; padding: 0 1;
                              border-top: solid $warning; }
    """
    BINDINGS = [
        Binding("t", "retry", "Retry"),
        Binding("d", "delete", "Delete"),
        Binding("g", "reload", "Reload"),
        Binding("escape,q", "dismiss", "Close"),
    ]

    def __init__(self, api: AsyncApiClient) -> None:
        super().__init__()
        self.api = api
        self.failed: dict[str, dict[str, Any]] = {}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Reconcile: checking...", id="summary")
            table: DataTable[str] = DataTable(cursor_type="row", id="problems")
            table.add_columns("SESSION", "PROBLEM", "DETAIL")
            yield table
            yield Static("", id="reason")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.action_reload()

    @work(exclusive=True, group="reconcile")
    async def action_reload(self) -> None:
        summary = self.query_one("#summary", Static)
        try:
            report = await self.api.run(calls.reconcile())
            failed = await self.api.run(calls.sessions("failed"))
        except ClauderonError as exc:
            summary.update(markup("[red]$error[/]", error=exc.message))
            return
        self.failed = {s["name"]: s for s in failed}
        table = self.query_one(DataTable)
        table.clear()
        self.query_one("#reason", Static).update("")
        problems = sorted(report["problems"], key=lambda p: p["problem"] != "failed")
        for i, p in enumerate(problems):
            key = p["session"] if p["problem"] == "failed" else f"-{i}"
            table.add_row(*problem_cells(p), key=key)
        summary.update("All sessions are in sync" if report["in_sync"] else
                       f"{len(problems)} problem(s), {len(self.failed)} failed session(s): "
                       "t retry, d delete")

    @on(DataTable.RowHighlighted)
    def show_reason(self, event: DataTable.RowHighlighted) -> None:
        """The whole detail of the highlighted problem (the table cuts long ones off)."""
        cells = self.query_one(DataTable).get_row(event.row_key)
        self.query_one("#reason", Static).update(text(f"{cells[0]}: {cells[2]}"))

    def selected(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.failed.get(str(key))

    @work(group="reconcile-action")
    async def action_retry(self) -> None:
        s = self.selected()
        if s is None or not offered(s, "retry"):
            self.notify("Pick a failed session to retry", severity="warning")
            return
        await self.ask(s, calls.act(s["id"], "retry"), "retrying")

    @work(group="reconcile-action")
    async def action_delete(self) -> None:
        s = self.selected()
        if s is None:
            self.notify("Pick a failed session to delete", severity="warning")
            return
        if await self.app.push_screen_wait(ConfirmScreen(delete_question(s))):
            await self.ask(s, calls.remove(s["id"]), "deleting")

    async def ask(self, s: dict[str, Any], call: calls.Call[Any], doing: str) -> None:
        """Send ``call`` for ``s``; say what it does, and read the problems again."""
        try:
            await self.api.run(call)
        except ClauderonError as exc:
            self.notify(exc.message, severity="error")
            return
        self.notify(f"{s['name']}: {doing}")
        self.action_reload()
