"""``clauderon tui`` driven by Textual's pilot against the real API and reconciler.

Each test runs the real services on a temporary CLAUDERON_HOME with real git repositories
and the real Docker engine; the app talks to them over the Unix socket exactly as it does
for a person. The only stand-in is the terminal hand-over (see ``RecordingTerminal``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import re
import select
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.widgets import Checkbox, Input, OptionList, Select, TextArea

from appliance.audit import AuditRecord, Decision, Phase
from appliance.errors import NotFound
from cli.tui.create import CreateScreen
from cli.tui.dialogs import ConfirmScreen, HelpScreen
from cli.tui.reconcile import ReconcileScreen
from cli.tui.tui_app import DETAIL_QUIET_SECONDS, MainScreen
from cli.tui.tui_model import KEYS, Filter, key_works
from tests.integration.tui_pilot import (
    RecordingTerminal,
    main,
    names,
    notices,
    piloting,
    scenario,
    screen_text,
    top,
    until,
)
from tests.support.agent_app import in_container
from tests.support.appliance import BIN, Appliance


def phase(appliance: Appliance, name: str) -> str | None:
    try:
        return str(appliance.session(name)["phase"])
    except NotFound:
        return None


def post_hook(appliance: Appliance, name: str, event: str) -> None:
    """What the hook script in the container does: the session's own token as Bearer."""
    s = appliance.session(name)
    [container] = appliance.containers(s["id"])
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(appliance.settings.socket_path))) \
            as http:
        answer = http.post("http://clauderon/api/hooks", json={"session_id": s["id"],
                                                                "event": event},
                           headers={"Authorization": f"Bearer {env['CLAUDERON_HOOK_TOKEN']}"})
    assert answer.status_code == 204, answer.text


def test_list_is_live_with_filters_search_and_detail(appliance: Appliance, repo: Path) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "alpha", "--prompt", "fix the bug")
    appliance.cli("create", "--repo", str(repo), "--name", "beta", "--prompt", "p")
    appliance.cli("archive", "beta")
    (Path(appliance.session("alpha")["worktree_path"]) / "notes.txt").write_text("new\n")
    # A WebSocket alpha's agent held open: its opening, then its end (one exchange).
    opened = AuditRecord(ts="2025-01-01T12:00:01+00:00", id="w1",
                         session=appliance.session("alpha")["id"], method="GET",
                         host="ws.example.test", path="/live", status=101, bytes_in=0,
                         bytes_out=0, duration_ms=2.0, credential=None,
                         decision=Decision.PASSED, phase=Phase.OPEN, stream="w1")
    ended = replace(opened, ts="2025-01-01T12:00:39+00:00", id="w2", duration_ms=37_500.0,
                    phase=Phase.END)
    with appliance.settings.audit_path.open("a") as log:
        log.write(opened.to_json_line() + ended.to_json_line())

    async def run() -> None:
        async with piloting(appliance, showing=["alpha"]) as (app, pilot):
            await until(pilot, lambda: "clauderon/alpha" in str(main(app).query_one(
                "#detail").render()), "the detail pane")
            await until(pilot, lambda: any(
                line.split()[:2] == ["alpha", "running"] for line in screen_text(app).splitlines()
            ), "alpha's row to render as running")
            await until(pilot, lambda: "branch    clauderon/alpha" in screen_text(app),
                        "the detail pane on screen")
            text = screen_text(app)
            assert "● connected" in text
            header = next(line for line in text.splitlines() if "NAME" in line)
            assert header.split() == ["NAME", "PHASE", "STATUS", "AGENT", "BACKEND", "BRANCH",
                                      "AGE"]
            assert next(line for line in text.splitlines()
                        if line.split()[:1] == ["alpha"] and "ago" not in line).split()[:6] \
                == ["alpha", "running", "unknown", "claude", "docker", "clauderon/alpha"]
            # The detail pane: facts at once, then the progress the reconciler recorded.
            assert "branch    clauderon/alpha" in text
            assert "backend   docker" in str(main(app).query_one("#detail").render())
            # The repository's path in full; on screen it is cut at the pane's edge or
            # wrapped to the next line when longer than the pane (a test folder's path is as
            # long as the run makes it).
            assert f"repo      {repo}" in str(main(app).query_one("#detail").render())
            assert any(line.split()[:1] == ["repo"] for line in text.splitlines()), text
            alpha = appliance.session("alpha")
            await until(pilot, lambda: main(app).extras.get(alpha["id"]), "detail extras")
            detail = str(main(app).query_one("#detail").render())
            assert "Progress worktree > container > start" in detail
            assert "Changed files (1)" in detail and "? notes.txt" in detail
            assert "Recent requests" in detail
            assert "12:00:01 GET ws.example.test/live open since 12:00:01 passed" in detail
            assert "12:00:39 GET ws.example.test/live ended 101 after 37.5 s passed" in detail

            # Live: a session created elsewhere appears and runs without a key press.
            await pilot.pause()
            await asyncio.to_thread(
                appliance.cli, "create", "--repo", str(repo), "--name", "gamma", "--no-wait")
            await until(pilot, lambda: "gamma" in names(app), "gamma to appear")
            await until(pilot, lambda: any(s["name"] == "gamma" and s["phase"] == "running"
                                           for s in main(app).shown()), "gamma to run")

            # Waiting for me: a hook from the agent flips the status live.
            await asyncio.to_thread(post_hook, appliance, "alpha", "Stop")
            await until(pilot, lambda: "waiting-input" in screen_text(app), "waiting status")

            seen = {}
            for _ in Filter:
                await pilot.press("f")
                seen[main(app).filter] = sorted(names(app))
            assert seen == {Filter.ARCHIVED: ["beta"], Filter.FAILED: [],
                            Filter.WAITING: ["alpha"], Filter.COMPLETED: [],
                            Filter.ALL: ["alpha", "beta", "gamma"],
                            Filter.ACTIVE: ["alpha", "gamma"]}

            await pilot.press("slash", "g", "a", "m")
            assert names(app) == ["gamma"]
            assert "search: gam" in screen_text(app)
            await pilot.press("escape")
            assert names(app) == ["gamma", "alpha"]
            await pilot.press("q")
        assert app.return_code == 0

    scenario(run)


def test_create_dialog_errors_beside_fields_recent_repos_and_progress(
    appliance: Appliance, repo: Path
) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "seed", "--prompt", "p")

    async def run() -> None:
        async with piloting(appliance, showing=["seed"]) as (app, pilot):
            await pilot.press("n")
            dialog = await until(pilot, lambda: top(app, CreateScreen), "the dialog")
            recent = dialog.query_one("#recent", OptionList)
            await until(pilot, lambda: recent.option_count == 1, "recent repos")
            assert str(recent.get_option_at_index(0).prompt) == str(repo)
            assert not dialog.query_one("#row-backend").display  # one backend: no choice

            # An API error lands under its field, and that field gets the focus.
            await pilot.press(*"/nowhere/at/all", "ctrl+s")
            error = dialog.query_one("#error-repo_path")
            await until(pilot, lambda: error.has_class("shown"), "the repo error")
            assert "does not exist" in str(error.render())
            assert app.focused is dialog.query_one("#repo_path", Input)

            # Fuzzy search over recent repos, then pick with Enter.
            repo_input = dialog.query_one("#repo_path", Input)
            repo_input.value = ""
            await pilot.press(*"tp", "tab")  # "tp" matches .../app by subsequence
            assert recent.option_count == 1 and recent.has_focus
            await pilot.press("enter")
            assert repo_input.value == str(repo)
            assert app.focused is dialog.query_one("#name", Input)

            await pilot.press(*"Bad Name", "ctrl+s")
            name_error = dialog.query_one("#error-name")
            await until(pilot, lambda: name_error.has_class("shown"), "the name error")
            assert not dialog.query_one("#error-repo_path").has_class("shown")

            dialog.query_one("#name", Input).value = "made-in-tui"
            dialog.query_one("#prompt", TextArea).focus()
            await pilot.press(*"add tests", "enter", *"then docs")
            dialog.query_one("#agent", Select).value = "codex"
            dialog.query_one("#model", Input).value = "m-1"
            dialog.query_one("#access_mode", Select).value = "read-only"
            dialog.query_one("#skip_permissions", Checkbox).focus()
            # Taken before the submit: a quick create closes the dialog, and its last
            # progress line stays on the widget.
            progress = dialog.query_one("#progress")
            await pilot.press("space", "ctrl+s")
            await until(pilot, lambda: "made-in-tui: creating" in str(progress.render()),
                        "progress")
            await until(pilot, lambda: top(app, MainScreen), "the dialog to close")
            await until(pilot, lambda: "made-in-tui created" in notices(app), "the notice")
            await until(pilot, lambda: "made-in-tui" in names(app), "the new row")

        s = appliance.session("made-in-tui")
        assert s["phase"] == "running"
        assert (s["agent"], s["model"], s["access_mode"], s["skip_permissions"]) == \
            ("codex", "m-1", "read-only", True)
        assert s["initial_prompt"] == "add tests\nthen docs"
        events = appliance.client().get(f"/api/sessions/{s['id']}/events")["events"]
        assert [e["payload"]["step"] for e in events if e["kind"] == "progress"] == \
            ["worktree", "container", "start"]

    scenario(run)


def test_create_dialog_path_completion_and_editor(appliance: Appliance, repo: Path,
                                                  tmp_path: Path) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "written in the editor\\n" >> "$1"\n')
    editor.chmod(0o755)
    os.environ["VISUAL"] = str(editor)
    terminal = RecordingTerminal(run_commands=True)

    async def run() -> None:
        async with piloting(appliance, terminal=terminal) as (app, pilot):
            await until(pilot, lambda: main(app).loaded, "the list")
            await pilot.press("n")
            dialog = await until(pilot, lambda: top(app, CreateScreen), "the dialog")
            repo_input = dialog.query_one("#repo_path", Input)
            await pilot.press(*f"{repo.parent}/ap")
            await until(pilot, lambda: repo_input._suggestion == f"{repo}/", "a completion")
            await pilot.press("right")
            assert repo_input.value == f"{repo}/"

            prompt = dialog.query_one("#prompt", TextArea)
            prompt.text = "first line"
            await pilot.press("ctrl+e")
            assert prompt.text == "first line\nwritten in the editor"
            assert terminal.commands[-1][0] == str(editor)
            assert terminal.untrusted[-1] is False  # the person's own editor
            await pilot.press("escape")
            await until(pilot, lambda: top(app, MainScreen), "the dialog to close")
        assert appliance.client().get("/api/sessions")["sessions"] == []

    try:
        scenario(run)
    finally:
        del os.environ["VISUAL"]


def test_archive_unarchive_access_mode_and_delete_with_confirmation(
    appliance: Appliance, repo: Path
) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "act", "--prompt", "p")

    async def run() -> None:
        async with piloting(appliance, showing=["act"]) as (app, pilot):
            await pilot.press("m")
            await until(pilot, lambda: "access    read-only" in screen_text(app), "read-only")
            assert appliance.session("act")["access_mode"] == "read-only"
            await pilot.press("m")
            await until(pilot, lambda: "access    read-write" in screen_text(app), "read-write")

            await pilot.press("a")
            await until(pilot, lambda: names(app) == [], "act to leave the active list")
            assert phase(appliance, "act") in ("archived", "running")
            await pilot.press("f")  # archived
            await until(pilot, lambda: any(s["phase"] == "archived" for s in main(app).shown()),
                        "act archived")
            await pilot.press("u")
            await until(pilot, lambda: names(app) == [], "act to leave the archived list")
            await pilot.press("f", "f", "f", "f", "f")  # back to active
            assert main(app).filter is Filter.ACTIVE
            await until(pilot, lambda: any(s["phase"] == "running" for s in main(app).shown()),
                        "act running again")

            await pilot.press("d")
            confirm = await until(pilot, lambda: top(app, ConfirmScreen), "the question")
            assert "branch clauderon/act is kept" in str(confirm.query_one("#question").render())
            await pilot.press("n")
            await until(pilot, lambda: top(app, MainScreen), "the question to close")
            assert phase(appliance, "act") == "running"
            # The agent removes its .git: the delete keeps the workspace, and says where.
            s = appliance.session("act")
            in_container(appliance, s, "rm -rf /workspace/.git")  # waits out a diff's hold
            await pilot.press("d")
            await until(pilot, lambda: top(app, ConfirmScreen), "the question")
            await pilot.press("y")
            await until(pilot, lambda: names(app) == [], "the row to go")
            await until(pilot, lambda: phase(appliance, "act") is None, "act to be deleted")
            kept = appliance.settings.kept_dir / f"act-{s['id'][:8]}"
            await until(pilot, lambda: any(n.startswith(f"act: workspace kept at {kept} (")
                                           for n in notices(app)), "the kept workspace's notice")

    scenario(run)


def test_attach_hands_over_the_terminal_and_starts_a_stopped_session(
    appliance: Appliance, repo: Path
) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "att", "--prompt", "p")
    terminal = RecordingTerminal()

    async def run() -> None:
        async with piloting(appliance, showing=["att"], terminal=terminal) as (app, pilot):
            await pilot.press("enter")
            await until(pilot, lambda: terminal.commands, "the attach command")
            container = appliance.session("att")["container_name"]
            assert terminal.commands == [
                ["docker", "attach", "--detach-keys", "ctrl-q", container]]
            assert terminal.untrusted == [True]  # its output goes through the filter
            # Back in the list after the detach: keys work.
            await pilot.press("f")
            assert main(app).filter is Filter.ARCHIVED
            await pilot.press("f", "f", "f", "f", "f")

            await asyncio.to_thread(appliance.cli, "stop", "att")
            await until(pilot, lambda: main(app).shown()[0]["phase"] == "stopped", "stopped")
            await pilot.press("enter")
            await until(pilot, lambda: len(terminal.commands) == 2, "the second attach")
            assert phase(appliance, "att") == "running"

    scenario(run)


def test_reconcile_view_lists_failed_sessions_with_retry_and_delete(
    appliance: Appliance, repo: Path
) -> None:
    # More CPUs than the machine has: the engine refuses the container, the session fails.
    appliance.cli("create", "--repo", str(repo), "--name", "greedy", "--cpu", "500",
                  check=False)
    assert phase(appliance, "greedy") == "failed"
    sid = appliance.session("greedy")["id"]

    def failures() -> int:
        events = appliance.client().get(f"/api/sessions/{sid}/events")["events"]
        return sum(1 for e in events if e["kind"] != "progress"
                   and e["payload"].get("session", {}).get("phase") == "failed")

    before = failures()

    async def run() -> None:
        async with piloting(appliance) as (app, pilot):
            await until(pilot, lambda: main(app).loaded, "the list")
            assert names(app) == []  # failed sessions are not "active"
            await pilot.press("r")
            view = await until(pilot, lambda: top(app, ReconcileScreen), "the view")
            await until(pilot, lambda: view.failed, "the report")
            text = screen_text(app)
            assert "greedy" in text and "failed" in text and "CPUs" in text
            await pilot.press("t")
            await until(pilot, lambda: failures() > before, "the retry to fail again")
            await until(pilot, lambda: "greedy: retrying" in notices(app), "the notice")
            await pilot.press("g")
            await until(pilot, lambda: view.failed, "greedy failed again")
            await pilot.press("d")
            await until(pilot, lambda: top(app, ConfirmScreen), "the question")
            await pilot.press("y")
            await until(pilot, lambda: phase(appliance, "greedy") is None, "greedy deleted")
            await until(pilot, lambda: top(app, ReconcileScreen) and not view.failed
                        and "All sessions are in sync" in screen_text(app), "in sync")
            await pilot.press("escape")
            assert top(app, MainScreen)

    scenario(run)


def test_footer_shows_the_keys_the_sessions_actions_allow_and_help_shows_all_at_80x24(
        appliance: Appliance, repo: Path) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "keys", "--prompt", "p")

    async def run() -> None:
        async with piloting(appliance, showing=["keys"]) as (app, pilot):

            def footer() -> set[str]:
                """The key hints, one per footer cell (``a Archive``, ...)."""
                rows = screen_text(app).splitlines()[-2:]
                return {" ".join(cell.split()) for line in rows
                        for cell in re.split(r"\s{2,}", line.strip()) if cell}

            def expected() -> set[str]:
                s = main(app).selected()
                return {f"{k.display or k.key} {k.label}" for k in KEYS
                        if k.show and key_works(s, k.name)}

            # Running: every key but unarchive (the API's actions have no unarchive).
            await until(pilot, lambda: footer() == expected(), "the footer")
            assert "u Unarchive" not in footer() and "a Archive" in footer()
            assert "d Delete" in footer() and "⏎ Attach" in footer()
            # Archived elsewhere: it leaves the list, and the keys that need a session go.
            await asyncio.to_thread(appliance.cli, "archive", "keys")
            await until(pilot, lambda: names(app) == [], "keys to leave the active list")
            await until(pilot, lambda: footer() == expected(), "the footer without a session")
            assert not {"a Archive", "d Delete", "m Mode", "⏎ Attach"} & footer()
            await pilot.press("f")  # archived
            await until(pilot, lambda: names(app) == ["keys"], "the archived list")
            await until(pilot, lambda: "u Unarchive" in footer(), "unarchive offered")
            assert footer() == expected() and "a Archive" not in footer()
            await pilot.press("a")  # not offered: does nothing
            assert appliance.session("keys")["desired"] == "archived"

            await pilot.press("question_mark")
            help_screen = await until(pilot, lambda: top(app, HelpScreen), "help")
            text = str(help_screen.query_one("#help-text").render())
            for screen in (MainScreen, CreateScreen, ReconcileScreen):
                for b in screen.BINDINGS:
                    assert b.description in text, b  # type: ignore[union-attr]
            await pilot.press("escape")
            assert top(app, MainScreen)

    scenario(run)


def test_never_freezes_when_the_api_is_down_or_stuck(tmp_path: Path, repo: Path,
                                                     engine: object) -> None:
    appliance = Appliance(tmp_path / "home")
    try:
        async def run() -> None:
            async with piloting(appliance, timeout=1.0) as (app, pilot):
                await until(pilot, lambda: "disconnected" in screen_text(app), "disconnected")
                await pilot.press("f")  # still answering keys
                assert main(app).filter is Filter.ARCHIVED
                await pilot.press("f", "f", "f", "f", "f")
                await asyncio.to_thread(appliance.start, "api", "reconciler")
                await until(pilot, lambda: "● connected" in screen_text(app), "reconnected")
                await asyncio.to_thread(
                    appliance.cli, "create", "--repo", str(repo), "--name", "late")
                await until(pilot, lambda: names(app) == ["late"], "the list")

                # A stuck API (stopped, not dead): requests time out, keys keep working.
                appliance.procs["api"].send_signal(signal.SIGSTOP)
                try:
                    await pilot.press("m")
                    await until(pilot, lambda: any("does not answer" in n
                                                   for n in notices(app)), "the timeout")
                    await pilot.press("f")
                    assert main(app).filter is Filter.ARCHIVED
                finally:
                    appliance.procs["api"].send_signal(signal.SIGCONT)
                await pilot.press("f", "f", "f", "f", "f", "m")
                await until(pilot, lambda: appliance.session("late")["access_mode"]
                            == "read-only", "the API back")

        scenario(run)
    finally:
        appliance.cleanup()


@pytest.mark.parametrize("width", [80, 160])
def test_wide_terminals_put_the_detail_beside_the_list(appliance: Appliance, width: int
                                                       ) -> None:
    async def run() -> None:
        async with piloting(appliance, (width, 24)) as (app, pilot):
            await until(pilot, lambda: main(app).loaded, "the list")
            assert main(app).query_one("#body").has_class("wide") is (width >= 140)

    scenario(run)


def test_the_command_runs_in_a_real_terminal(tmp_path: Path) -> None:
    """``clauderon tui`` on a real pseudo-terminal (Textual's own driver): no API yet,
    so it says "disconnected" and keeps answering keys; ``q`` quits with status 0."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the TUI
        os.environ.update(CLAUDERON_HOME=str(tmp_path / "home"), TERM="xterm-256color")
        os.execv(str(BIN / "clauderon"), ["clauderon", "tui"])
    seen = b""

    def read_until(needle: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while needle not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                with contextlib.suppress(OSError):
                    seen += os.read(fd, 65536)
        assert needle in seen, seen[-2000:]

    try:
        read_until(b"disconnected")
        os.write(fd, b"q")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


#: The agent's hook posted ``$3`` times a tenth of a second apart (some ten a second, as a
#: busy agent's), as the hook script does it: bash's /dev/tcp to the hook URL.
HOOK_LOOP = r"""
url="$CLAUDERON_HOOK_URL"; hostport="${url#http://}"; hostport="${hostport%%/*}"
sid="$1"; token="$2"; n="$3"; body="{\"session_id\":\"$sid\",\"event\":{\"type\":\"PreToolUse\"}}"
for i in $(seq "$n"); do
    exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}" || exit 1
    printf 'POST /api/hooks HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n%s%s\r\n\r\n%s' \
        "$hostport" "$token" 'Content-Type: application/json'$'\r\n''Connection: close'$'\r\n' \
        "Content-Length: ${#body}" "$body" >&3
    read -r _ code _ <&3; echo "$code"; exec 3<&-; sleep 0.1
done
"""


def test_a_flood_of_hooks_that_change_nothing_reads_no_detail(appliance: Appliance,
                                                              repo: Path) -> None:
    """An agent already working posts its PreToolUse hook over and over from its container
    (uid 1000, its own token): each event moves only ``updated_at``, and each read the
    detail pane again (the diff, the audit, the history and the usage: four calls). The pane
    is now read once in a while during such a flood (the agent's work moves its diff), not
    once a hook; the status change that follows is shown, and read at once."""
    appliance.cli("create", "--repo", str(repo), "--name", "busy", "--prompt", "p")
    s = appliance.session("busy")
    [container] = appliance.containers(s["id"])
    token = container.exec_run(["printenv", "CLAUDERON_HOOK_TOKEN"]).output.decode().strip()
    flood = 20

    async def run() -> None:
        async with piloting(appliance, showing=["busy"]) as (app, pilot):
            screen = main(app)
            await asyncio.to_thread(post_hook, appliance, "busy", "PreToolUse")
            await until(pilot, lambda: screen.sessions[s["id"]].get("agent_status")
                        == "working", "the working status")
            await until(pilot, lambda: screen.extras.get(s["id"]), "detail extras")
            reads: list[str] = []
            real = screen.api.run

            async def counted(call: Any) -> Any:
                reads.append(call.describe())
                return await real(call)

            screen.api.run = counted  # type: ignore[method-assign]
            began = time.monotonic()
            out = await asyncio.to_thread(
                container.exec_run, ["bash", "-c", HOOK_LOOP, "loop", s["id"], token,
                                     str(flood)], user="1000:1000")
            assert out.output.decode().split() == ["204"] * flood, out.output
            await asyncio.to_thread(post_hook, appliance, "busy", "Stop")
            await until(pilot, lambda: "waiting-input" in screen_text(app), "waiting status")
            await until(pilot, lambda: any("/diff" in r for r in reads), "the detail read")
            diffs = [r for r in reads if "/diff" in r]
            # Once a while however many came (the flood's own length sets how many whiles).
            bound = 2 + (time.monotonic() - began) / DETAIL_QUIET_SECONDS
            assert len(diffs) <= bound, f"{len(diffs)} detail reads for {flood} unchanged hooks"
            await pilot.press("q")

    scenario(run)
