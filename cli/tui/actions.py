"""The keys that act on the selected session: create, archive, unarchive, access mode,
title (edit or make again), delete, reconcile, timeline and attach.

:class:`SessionActions` is the base of :class:`cli.tui.app.MainScreen`, which owns the list
and supplies :meth:`SessionActions.selected` and :meth:`SessionActions.redraw`. Every call
runs in a worker with the API client's timeout, and an API error becomes a notice, so a
slow or failing API never holds a key. Attach hands the terminal over through
:mod:`cli.tui.terminal`: the TUI suspends, the session's terminal takes over, and the TUI
comes back when the person detaches.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable
from typing import Any

from textual import work
from textual.widgets import Input

from appliance.errors import ClauderonError
from cli import calls
from cli.client import AsyncApiClient
from cli.tui.create import CreateScreen
from cli.tui.dialogs import ConfirmScreen, TextScreen
from cli.tui.model import next_access_mode, offered
from cli.tui.reconcile import ReconcileScreen
from cli.tui.terminal import Foreground, run_attach
from cli.tui.timeline import TimelineScreen
from cli.tui.workflow import WorkflowActions

#: How long attach waits for a stopped or archived session to run again.
START_SECONDS = 120.0
#: What brings a session back to compute before an attach, in the order tried.
REVIVE = ("start", "unarchive")


class SessionActions(WorkflowActions):
    api: AsyncApiClient
    terminal: Foreground
    #: id -> the API's session JSON, kept live by the screen's event worker.
    sessions: dict[str, dict[str, Any]]

    def selected(self) -> dict[str, Any] | None:
        """The highlighted session (the list screen knows which)."""
        raise NotImplementedError

    def redraw(self) -> None:
        raise NotImplementedError

    def absorb(self, session: dict[str, Any] | None) -> None:
        """Show the API's answer to our own request at once (events confirm it later)."""
        if session and "id" in session and session["id"] in self.sessions:
            self.sessions[session["id"]] = session
            self.redraw()

    async def call(self, what: str, coro: Awaitable[Any]) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await coro
        except ClauderonError as exc:
            self.notify(f"{what}: {exc.message}", severity="error")
            return None
        return result

    def action_create(self) -> None:
        def created(name: str | None) -> None:
            if name:
                self.notify(f"{name} created")
        self.app.push_screen(CreateScreen(self.api, self.terminal), created)

    def action_reconcile(self) -> None:
        self.app.push_screen(ReconcileScreen(self.api))

    def action_timeline(self) -> None:
        s = self.selected()
        if s is None:
            self.notify("Pick a session to see its timeline", severity="warning")
            return
        self.app.push_screen(TimelineScreen(self.api, s))

    @work(group="actions")
    async def action_archive(self) -> None:
        if (s := self.selected()) and (done := await self.call(
                "archive", self.api.run(calls.act(s["id"], "archive")))):
            self.absorb(done)
            self.notify(f"{s['name']}: archiving (worktree and branch kept)")

    @work(group="actions")
    async def action_unarchive(self) -> None:
        if (s := self.selected()) and (done := await self.call(
                "unarchive", self.api.run(calls.act(s["id"], "unarchive")))):
            self.absorb(done)
            self.notify(f"{s['name']}: unarchiving")

    @work(group="actions")
    async def action_access_mode(self) -> None:
        if (s := self.selected()) is None:
            return
        mode = next_access_mode(s["access_mode"])
        done = await self.call("access mode", self.api.run(calls.access_mode(s["id"], mode)))
        if done:
            self.absorb(done)
            self.notify(f"{s['name']}: access mode {mode}")

    @work(group="actions")
    async def action_edit_title(self) -> None:
        if (s := self.selected()) is None:
            return
        title = await self.app.push_screen_wait(
            TextScreen(f"Title of {s['name']} (Enter saves, Esc cancels)", s.get("title", "")))
        if title is not None and (done := await self.call(
                "edit", self.api.run(calls.edit(s["id"], {"title": title})))):
            self.absorb(done)
            self.notify(f"{s['name']}: titled {done['title']!r}")

    @work(group="actions")
    async def action_retitle(self) -> None:
        if (s := self.selected()) and (done := await self.call(
                "retitle", self.api.run(calls.retitle(s["id"])))):
            self.absorb(done)
            self.notify(f"{s['name']}: titled {done['title']!r}")

    @work(group="actions")
    async def action_delete(self) -> None:
        if (s := self.selected()) is None:
            return
        question = (f"Delete {s['name']}? Its container and worktree go; "
                    f"the branch {s['branch']} is kept.")
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            return
        if done := await self.call("delete", self.api.run(calls.remove(s["id"]))):
            self.absorb(done)
            self.notify(f"{s['name']}: deleting (branch {s['branch']} kept)")

    @work(exclusive=True, group="attach")
    async def action_attach(self) -> None:
        if self.focused is self.query_one("#search", Input):
            self.query_one("#sessions").focus()  # Enter in the search box ends the search
            return
        if (s := self.selected()) is None:
            return
        if s["phase"] != "running":
            verb = next((v for v in REVIVE if offered(s, v)), None)
            if verb is None:
                self.notify(f"{s['name']} is {s['phase']}; it cannot be attached",
                            severity="warning")
                return
            if not await self.call(verb, self.api.run(calls.act(s["id"], verb))):
                return
            self.notify(f"{s['name']}: starting before attaching")
            s = await self.wait_running(s["id"])
            if s is None:
                return
        if "attach" not in s["actions"]:
            self.notify(f"{s['name']} is {s['phase']}; it cannot be attached", severity="warning")
            return
        info = await self.call("attach", self.api.run(calls.attach(s["id"])))
        if not info:
            return
        command = [str(part) for part in info["command"]]
        if shutil.which(command[0]) is None:
            self.notify(f"{command[0]} is not installed here; it is needed to attach",
                        severity="error")
            return
        if warning := run_attach(self.app, self.terminal, command):
            self.notify(warning, severity="warning")

    async def wait_running(self, sid: str) -> dict[str, Any] | None:
        """The session once the event stream shows it running; None if it failed or
        did not start within :data:`START_SECONDS`."""
        try:
            async with asyncio.timeout(START_SECONDS):
                while True:
                    s = self.sessions.get(sid)
                    if s is not None and s["phase"] == "running":
                        return s
                    if s is not None and s["phase"] == "failed":
                        self.notify(f"{s['name']} failed to start; r shows why",
                                    severity="error")
                        return None
                    await asyncio.sleep(0.2)
        except TimeoutError:
            self.notify(f"the session did not start within {START_SECONDS:.0f}s",
                        severity="error")
            return None
