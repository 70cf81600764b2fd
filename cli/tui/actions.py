"""The keys that act on the selected session: create, the plain verbs (archive,
unarchive, retitle, interrupt: :data:`cli.tui.tui_model.DONE`), access mode, title, delete,
reconcile, timeline, attach, and the daily workflow: push (opening a pull request), refresh
and merge it, and its health with the recovery that fits.

:class:`SessionActions` is the base of :class:`cli.tui.tui_app.MainScreen`, which owns the list
and supplies :meth:`SessionActions.selected` and :meth:`SessionActions.redraw`. Every call
runs in a worker with the API client's timeout, and an API error becomes a notice, so a
slow or failing API never holds a key. Attach hands the terminal over through
:mod:`cli.tui.terminal`: the TUI suspends, the session's terminal takes over, and the TUI
comes back when the person detaches. Merge, delete and recovery ask first; the question says
what it does and, for a recovery, what it loses (the API's own words). A merge is pinned to
the head commit the question showed: when the agent pushed since, the API refuses it. A
push is pinned the same way, to the commit the detail pane showed as committed (the question
names it): when the agent committed since, nothing is sent and the pane reads it again.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from typing import Any

from textual import work
from textual.screen import Screen
from textual.widgets import Input

from appliance.errors import ClauderonError
from appliance.intake import TITLE_MAX
from cli import calls
from cli.client import AsyncApiClient
from cli.table import unmarked
from cli.tui.create import CreateScreen
from cli.tui.detail import pushed_commit
from cli.tui.dialogs import ConfirmScreen, TextScreen
from cli.tui.reconcile import ReconcileScreen
from cli.tui.terminal import Foreground, run_attach
from cli.tui.timeline_view import TimelineScreen
from cli.tui.tui_model import DONE, Session, delete_question, next_access_mode, offered

#: How long attach waits for a stopped or archived session to run again.
START_SECONDS = 120.0


class SessionActions(Screen[None]):
    api: AsyncApiClient
    terminal: Foreground
    #: id -> the API's session JSON, kept live by the screen's event worker.
    sessions: dict[str, dict[str, Any]]
    #: id -> what the detail pane read (its changes: what a push sends, pinned to).
    extras: dict[str, dict[str, Any]]

    def selected(self) -> dict[str, Any] | None:
        """The highlighted session (the list screen knows which)."""
        raise NotImplementedError

    def redraw(self) -> None:
        raise NotImplementedError

    def reload_detail(self) -> None:
        """Read the selected session's pane again (its changes among them)."""
        raise NotImplementedError

    def absorb(self, session: dict[str, Any] | None) -> None:
        """Show the API's answer to our own request at once (events confirm it later)."""
        if session and "id" in session and session["id"] in self.sessions:
            self.sessions[session["id"]] = session
            self.redraw()

    async def call(self, what: str, call: calls.Call[Any]) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.api.run(call)
        except ClauderonError as exc:
            self.notify(f"{what}: {exc.message}", severity="error")
            return None
        return result

    async def act(self, s: Session, what: str, call: calls.Call[Any],
                  said: Callable[[Session], str]) -> None:
        """Send ``call`` for ``s``, show the session it answers with (alone, or beside what
        was done), and say what was done: ``said`` of the answer."""
        if done := await self.call(what, call):
            self.absorb(done.get("session", done))
            self.notify(f"{s['name']}: {said(done)}")

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
    async def action_verb(self, verb: str) -> None:
        if s := self.selected():
            await self.act(s, verb, calls.act(s["id"], verb), DONE[verb].format_map)

    @work(group="actions")
    async def action_access_mode(self) -> None:
        if (s := self.selected()) is None:
            return
        mode = next_access_mode(s["access_mode"])
        await self.act(s, "access mode", calls.access_mode(s["id"], mode),
                       lambda _: f"access mode {mode}")

    @work(group="actions")
    async def action_edit_title(self) -> None:
        if (s := self.selected()) is None:
            return
        # The title as drawn (inert: a character drawn as nothing is a mark naming it), so
        # the person sees it while editing; the marks go back as the characters they name.
        shown = s.get("title", "")
        hidden = (" Each <U+…> is a character drawn as nothing, kept as it is."
                  if unmarked(shown) != shown else "")
        title = await self.app.push_screen_wait(TextScreen(
            f"Title of {s['name']} (Enter saves, Esc cancels).{hidden}", shown,
            max_length=TITLE_MAX + len(shown) - len(unmarked(shown))))
        if title == shown:
            self.notify(f"{s['name']}: title unchanged")
        elif title is not None:
            await self.act(s, "edit", calls.edit(s["id"], {"title": unmarked(title)}),
                           lambda done: f"titled {done['title']!r}")

    @work(group="actions")
    async def action_delete(self) -> None:
        if (s := self.selected()) is None:
            return
        if not await self.app.push_screen_wait(ConfirmScreen(delete_question(s))):
            return
        await self.act(s, "delete", calls.remove(s["id"]),
                       lambda _: f"deleting (branch {s['branch']} kept)")

    @work(group="actions")
    async def action_push(self) -> None:
        if (s := self.selected()) is None:
            return
        if not offered(s, "push"):
            self.notify(f"{s['name']} is {s['phase']}; its branch cannot be pushed now",
                        severity="warning")
            return
        seen = pushed_commit(self.extras.get(s["id"], {}).get("files"))
        if seen is None:
            self.notify(f"{s['name']}: no commit shown to push yet (the pane shows what a "
                        "push sends once it has read the changes)", severity="warning")
            return
        commit, files, said = seen
        pull = s.get("pull") or {}
        open_pr = pull.get("state") not in ("open", "draft")
        also = " and open a pull request" if open_pr else ""
        question = (f"Push {s['name']}'s branch at {commit[:12]} ({files} file"
                    f"{'' if files == 1 else 's'}, as shown){also}? Only this commit goes: "
                    f"if the agent committed since, nothing is sent.\nIts subject, as the "
                    f"agent wrote it: {said!r}")
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            return
        try:
            done = await self.api.run(calls.push(s["id"], pr=open_pr, commit=commit))
        except ClauderonError as exc:
            if exc.field == "commit":
                exc = ClauderonError(f"nothing pushed: the agent committed since the pane "
                                     f"showed {commit[:12]}; it shows its changes again: "
                                     "look, then push")
                self.reload_detail()
            self.notify(f"push: {exc.message}", severity="error")
            return
        self.absorb(done.get("session", done))
        self.notify(f"{s['name']}: pushed {commit[:12]}; "
                    + (done["session"].get("pull") or {}).get("summary", ""))

    @work(group="actions")
    async def action_refresh_pull(self) -> None:
        if s := self.selected():
            await self.act(s, "refresh", calls.refresh_pull(s["id"]), lambda done: (
                done.get("pull") or {}).get("summary", "no pull request"))

    @work(group="actions")
    async def action_merge(self) -> None:
        if (s := self.selected()) is None:
            return
        pull = s.get("pull") or {}
        if not offered(s, "merge"):
            self.notify(f"{s['name']} has no open pull request (p pushes and opens one)",
                        severity="warning")
            return
        head = pull.get("head_sha") or ""
        question = (f"Squash-merge #{pull.get('number')} ({pull.get('summary')}) at "
                    f"{head[:12]} and delete the remote branch? Your repository keeps it.")
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            return
        await self.act(s, "merge", calls.merge(s["id"], "squash", delete_branch=True,
                                               head_sha=head or None),
                       lambda done: f"merged as {done['commit'][:12]}")

    @work(group="actions")
    async def action_health(self) -> None:
        if (s := self.selected()) is None:
            return
        report = await self.call("health", calls.checkup(s["id"]))
        if not report:
            return
        bad = [f"{c['name']}: {c['detail']}" for c in report["checks"]
               if c["verdict"] in ("fail", "warn")]
        verb = report.get("suggested")
        if not bad or verb is None:
            self.notify(f"{s['name']}: " + ("; ".join(bad) if bad else "healthy"),
                        severity="warning" if bad else "information")
            return
        action = next(a for a in report["actions"] if a["verb"] == verb)
        question = f"{'; '.join(bad)}\n\n{verb}? {action['warning']}"
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            return
        await self.act(s, verb, calls.act(s["id"], verb), lambda _: f"{verb} asked")

    @work(exclusive=True, group="attach")
    async def action_attach(self) -> None:
        if self.focused is self.query_one("#search", Input):
            self.query_one("#sessions").focus()  # Enter in the search box ends the search
            return
        if (s := self.selected()) is None:
            return
        if s["phase"] != "running":
            verb = next((v for v in calls.REVIVE if offered(s, v)), None)
            if verb is None:
                self.notify(f"{s['name']} is {s['phase']}; it cannot be attached",
                            severity="warning")
                return
            if not await self.call(verb, calls.act(s["id"], verb)):
                return
            self.notify(f"{s['name']}: starting before attaching")
            s = await self.wait_running(s["id"])
            if s is None:
                return
        if "attach" not in s["actions"]:
            self.notify(f"{s['name']} is {s['phase']}; it cannot be attached", severity="warning")
            return
        info = await self.call("attach", calls.attach(s["id"]))
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
