"""The create dialog: repo picker, prompt, agent, backend, model, image, access mode, bypass.

Further repositories (a multi-repo session) are lines of the "More" field, one a line in the
CLI's ``PATH[:NAME][@BASE]`` form: adding one is typing a line, removing one deleting it.

The repo field completes paths as you type (right arrow accepts) and filters the recent
repos below it with a fuzzy match; Enter in that list picks one. The backend row shows only
when the appliance has more than one (``/api/health`` lists them); one that does not answer
says so under it. ``ctrl+e`` edits the prompt in ``$VISUAL``/``$EDITOR``. ``ctrl+s``
creates: the API answers 202 at once and the
dialog shows the reconciler's progress (worktree > container > start) from ``/ws/events``
(opened before the request, so no step is missed) until the session runs, then closes
with its name. An error the API pins on a field (``{"field": ...}``)
shows under that field, which gets the focus. When the chosen agent has no model
credential (the API's credentials doctor), a warning under the agent says what to set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widget import Widget
from textual.widgets import (
    Button,
    Checkbox,
    Input,
    Label,
    OptionList,
    Select,
    Static,
    TextArea,
)

from appliance.errors import ClauderonError, ServiceUnavailable
from cli import calls
from cli.client import AsyncApiClient
from cli.eventstream import Message
from cli.live import seen
from cli.tui.footer import KeyFooter
from cli.tui.terminal import Foreground, edit_text
from cli.tui.tui_model import fuzzy_rank
from cli.tui.words import markup, text

DONE = frozenset({"running", "stopped", "failed", "deleted", "completed"})
#: Plan mode: the appliance's default ([agents] plan_mode), or said here.
PLAN_CHOICES = [("(default)", ""), ("plan first", "plan"), ("act directly", "act")]


class PathSuggester(Suggester):
    """Completes the last path component from what is on disk (folders get a ``/``)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return await asyncio.to_thread(complete_path, value)


def complete_path(value: str) -> str | None:
    if not value:
        return None
    path = Path(value).expanduser()
    parent, stem = (path, "") if value.endswith("/") else (path.parent, path.name)
    try:
        names = sorted(p.name for p in parent.iterdir()
                       if p.name.startswith(stem) and p.is_dir() and not p.name.startswith("."))
    except OSError:
        return None
    if not names or (stem and names == [stem]):
        return None
    return value + names[0][len(stem):] + "/"


def _text(field: str, placeholder: str) -> Input:
    return Input(placeholder=placeholder, id=field, compact=True)


def _choice(field: str, values: tuple[str, ...]) -> Select[str]:
    return Select([(v, v) for v in values], value=values[0], allow_blank=False, id=field,
                  compact=True)


class CreateScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    CreateScreen { align: center middle; }
    CreateScreen > VerticalScroll { width: 100%; max-width: 100; height: 100%;
                                    max-height: 40; border: thick $accent;
                                    background: $surface; padding: 0 1; }
    CreateScreen .row { height: auto; }
    CreateScreen .lbl { width: 10; padding: 0 1 0 0; }
    CreateScreen .row > Input, CreateScreen .row > Select { width: 1fr; }
    CreateScreen #recent { height: auto; max-height: 4; margin-left: 10; }
    CreateScreen #prompt { height: 4; width: 1fr; }
    CreateScreen #repos { height: 3; width: 1fr; }
    CreateScreen #repos-hint { color: $text-muted; margin-left: 10; height: auto; }
    CreateScreen Checkbox { border: none; padding: 0; height: 1; background: $surface; }
    CreateScreen .error { color: $error; margin-left: 10; height: auto; display: none; }
    CreateScreen .error.shown { display: block; }
    CreateScreen #agent-warning { color: $warning; margin-left: 10; height: auto;
                                  display: none; }
    CreateScreen #agent-warning.shown { display: block; }
    CreateScreen #progress { height: auto; color: $success; }
    CreateScreen #buttons { height: 1; margin-top: 1; }
    CreateScreen Button { min-width: 10; height: 1; border: none; margin-right: 2; }
    """
    BINDINGS = [
        Binding("ctrl+s", "create", "Create", priority=True),
        Binding("ctrl+e", "editor", "Edit prompt in $EDITOR", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, api: AsyncApiClient, terminal: Foreground) -> None:
        super().__init__()
        self.api = api
        self.terminal = terminal
        #: Each backend the appliance has, with its health (``reachable``, ``error``).
        self.backends: dict[str, dict[str, Any]] = {}
        self.recent: list[str] = []
        self.busy = False
        #: Agent -> what to set, for the agents without a model credential.
        self.missing: dict[str, str] = {}

    def _row(self, label: str, widget: Widget) -> ComposeResult:
        with Horizontal(classes="row", id=f"row-{widget.id}"):
            yield Label(label, classes="lbl")
            yield widget
        yield Static("", classes="error", id=f"error-{widget.id}")

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("[b]New session[/b]  (ctrl+s create, esc cancel)")
            yield from self._row("Repo", Input(placeholder="path inside a git repository",
                                               id="repo_path", suggester=PathSuggester(),
                                               compact=True))
            yield OptionList(id="recent", compact=True)
            yield from self._row("More", TextArea(id="repos", compact=True))
            yield Static("further repositories, one a line (up to 4): PATH[:NAME][@BASE], "
                         "each at /workspace/NAME; diff, files and timeline show every one",
                         id="repos-hint")
            yield from self._row("Name", _text("name", "(from the prompt)"))
            yield from self._row("Prompt", TextArea(id="prompt", compact=True))
            yield from self._row("Agent", _choice("agent", ("claude", "codex", "gemini",
                                                            "custom")))
            yield Static("", id="agent-warning")
            yield from self._row("Custom", _text("custom_agent",
                                                 "(agent custom: its config.toml name)"))
            yield from self._row("Plan", Select(PLAN_CHOICES, value="", allow_blank=False,
                                                id="plan_mode", compact=True))
            yield from self._row("", Checkbox("answer once (print mode: the session then "
                                              "ends as completed)", id="print_mode"))
            for label, field, placeholder in (
                    ("Title", "title", "(from the prompt)"),
                    ("About", "description", "(from the prompt)"),
                    ("Model", "model", "(the agent's default)"),
                    ("Image", "image", "(default from config.toml)")):
                yield from self._row(label, _text(field, placeholder))
            yield from self._row("Backend", _choice("backend", ("docker",)))
            yield from self._row("Access", _choice("access_mode", ("read-write", "read-only")))
            yield from self._row("", Checkbox("bypass permissions (skip the agent's prompts)",
                                              id="skip_permissions"))
            yield Static("", classes="error", id="error-general")
            yield Static("", id="progress")
            with Horizontal(id="buttons"):
                yield Button("Create", id="create", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#repo_path", Input).focus()
        self.query_one("#row-backend").display = False
        self.load_backends()
        self.load_recent()
        self.load_credentials()

    @work(group="create-credentials")
    async def load_credentials(self) -> None:
        try:
            report = await self.api.run(calls.credentials())
        except ClauderonError:
            return
        self.missing = {a["agent"]: a["hint"] or "no model credential"
                        for a in report["agents"] if not a["ready"]}
        self.warn_agent()

    @on(Select.Changed, "#agent")
    def warn_agent(self) -> None:
        hint = self.missing.get(str(self.query_one("#agent", Select).value))
        warning = self.query_one("#agent-warning", Static)
        # The session can still be created: its status will say why its model fails.
        warning.update(text(f"warning: {hint}") if hint else "")
        warning.set_class(bool(hint), "shown")

    @work(group="create-recent")
    async def load_recent(self) -> None:
        try:
            rows = await self.api.run(calls.recent_repos())
        except ClauderonError:
            return
        self.recent = [str(Path(r["repo_path"]) / r["subdirectory"]) if r.get("subdirectory")
                       else r["repo_path"] for r in rows]
        self.filter_recent(self.query_one("#repo_path", Input).value)

    def filter_recent(self, text: str) -> None:
        ranked = fuzzy_rank(text, self.recent) if text else self.recent
        options = self.query_one("#recent", OptionList)
        options.set_options(ranked[:20])
        options.highlighted = 0 if ranked else None
        options.display = bool(ranked) and ranked != [text]

    @on(Input.Changed, "#repo_path")
    def repo_changed(self, event: Input.Changed) -> None:
        self.filter_recent(event.value)

    @on(OptionList.OptionSelected, "#recent")
    def recent_picked(self, event: OptionList.OptionSelected) -> None:
        repo = self.query_one("#repo_path", Input)
        repo.value = str(event.option.prompt)
        repo.cursor_position = len(repo.value)
        self.query_one("#name", Input).focus()

    @work(group="create-backends")
    async def load_backends(self) -> None:
        try:
            health = await self.api.run(calls.health())
        except ClauderonError:
            return
        found = health.get("backends")
        if not isinstance(found, dict) or len(found) < 2:
            return  # one backend: nothing to choose
        self.backends = {str(k): v for k, v in found.items() if isinstance(v, dict)}
        choice = self.query_one("#backend", Select)
        choice.set_options([(k, k) for k in sorted(self.backends, key=lambda k: k != "docker")])
        choice.value = "docker" if "docker" in self.backends else next(iter(self.backends))
        self.query_one("#row-backend").display = True
        self.backend_health(str(choice.value))

    @on(Select.Changed, "#backend")
    def backend_changed(self, event: Select.Changed) -> None:
        self.backend_health(str(event.value))

    def backend_health(self, kind: str) -> None:
        """Say under the field when the chosen backend does not answer (before a create
        finds out)."""
        state = self.backends.get(kind, {})
        down = bool(state) and not state.get("reachable", True)
        label = self.query_one("#error-backend", Static)
        label.update(text(f"{kind} is not reachable: {state.get('error') or '?'}") if down
                     else "")
        label.set_class(down, "shown")

    # --- errors -------------------------------------------------------------------------
    def show_error(self, field: str | None, message: str) -> None:
        if field is not None and field.startswith("repos"):
            # repos[i].path/.name/.base: the line it concerns, said in the message.
            index = field[6:field.find("]")] if field.startswith("repos[") else ""
            message = f"line {int(index) + 1}: {message}" if index.isdigit() else message
            field = "repos"
        beside = {label.id for label in self.query(".error")}  # each field's, and "general"
        shown = f"error-{field}" in beside and (field != "backend" or bool(self.backends))
        target = field if shown and field is not None else "general"
        label = self.query_one(f"#error-{target}", Static)
        label.update(text(message))
        label.add_class("shown")
        if target != "general":
            self.query_one(f"#{target}").focus()

    def clear_errors(self) -> None:
        for label in self.query(".error").results(Static):
            label.update("")
            label.remove_class("shown")

    def body(self) -> dict[str, Any]:
        repo = self.query_one("#repo_path", Input).value.strip()
        more = [line.strip() for line in self.query_one("#repos", TextArea).text.splitlines()
                if line.strip()]
        plan = self.query_one("#plan_mode", Select).value
        return calls.create_body(
            str(Path(repo).expanduser().absolute()) if repo else "", more,
            prompt=self.query_one("#prompt", TextArea).text,
            agent=self.query_one("#agent", Select).value,
            access_mode=self.query_one("#access_mode", Select).value,
            skip_permissions=self.query_one("#skip_permissions", Checkbox).value,
            backend=self.query_one("#backend", Select).value if self.backends else None,
            plan_mode=plan == "plan" if plan in ("plan", "act") else None,
            print_mode=self.query_one("#print_mode", Checkbox).value or None,
            **{key: self.query_one(f"#{key}", Input).value.strip() or None
               for key in ("name", "model", "image", "custom_agent", "title", "description")})

    # --- actions ------------------------------------------------------------------------
    @on(Button.Pressed, "#create")
    def create_pressed(self) -> None:
        self.action_create()

    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(None)

    def action_editor(self) -> None:
        prompt = self.query_one("#prompt", TextArea)
        edited = edit_text(self.app, self.terminal, prompt.text)
        if edited is None:
            self.notify("The editor exited with an error; the prompt is unchanged",
                        severity="warning")
            return
        prompt.text = edited

    @work(exclusive=True, group="create-submit")
    async def action_create(self) -> None:
        if self.busy:
            return
        self.clear_errors()
        progress = self.query_one("#progress", Static)
        self.busy = True
        try:
            progress.update("submitting...")
            async with aclosing(self.api.follow()) as stream:
                first = await anext(stream)
                try:
                    if first is not None and first.get("type") == "lost":
                        raise ServiceUnavailable(str(first["error"]))
                    session = await self.api.run(calls.create(self.body()))
                except ClauderonError as exc:
                    progress.update("")
                    self.show_error(exc.field, exc.message)
                    return
                final = await self.follow(stream, session, progress)
        finally:
            self.busy = False
        if final.get("phase") == "failed":
            self.notify(f"{final['name']} failed: {final.get('status_reason')}",
                        severity="error")
        elif final.get("phase") == "deleted":
            self.notify(f"{final['name']} was deleted while it was being created",
                        severity="warning")
        self.dismiss(str(final["name"]))

    async def follow(self, stream: AsyncIterator[Message | None], session: dict[str, Any],
                     progress: Static) -> dict[str, Any]:
        """Show the reconciler's steps, as its events arrive, until the session runs,
        stops or fails."""
        steps: list[str] = []
        name = session["name"]
        progress.update(text(f"{name}: creating"))
        async for message in stream:
            if message is None:
                continue
            if message.get("type") == "lost":
                progress.update(markup("$name: [red]$error[/], reconnecting", name=name,
                                       error=message["error"]))
                continue
            what = seen(message.get("event") or {}, session["id"])
            if what is None:
                continue
            if what.gone:
                session = {**session, "phase": "deleted"}
            steps += [what.step] if what.step else []
            session = {**session, **(what.session or {})}  # an event's view: no prompt
            done = session["phase"] in DONE
            progress.update(text(f"{name}: creating " + "".join(f" > {s}" for s in steps)
                                 + (f" > {session['phase']}" if done else "")))
            if done:
                break
        return session
