"""``clauderon tui`` in a real terminal: attach suspends the TUI, the session's terminal
takes over, and detaching brings the TUI back, still live.

The pilot cannot hand a terminal over, so these tests run the real command inside tmux
against the real API and reconciler, with real containers of the base image (agents off:
attach is ``docker attach`` and ctrl-q detaches). They read the screen with ``tmux
capture-pane`` and type with ``tmux send-keys``, as a person would. Each test has its own
tmux server (socket and config in the test's directory; prefix ctrl-a, so ctrl-b and
ctrl-q reach the programs inside untouched). Session names are unique: container names
are global on the engine.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.tui.tui_model import Filter
from tests.support.appliance import BIN, Appliance, wait_for

WIDTH, HEIGHT = 100, 30
#: What the shell inside the container prints for the line the test types: the
#: arithmetic and the session's own id prove a shell in that container ran it.
PROBE = "echo attached-$((6*7)) $CLAUDERON_SESSION_ID"
TMUX_CONF = """\
set -g prefix C-a
unbind C-b
set -g status off
set -g escape-time 0
set -g remain-on-exit on
set -g default-terminal tmux-256color
"""


class Terminal:
    """One tmux pane running ``clauderon tui`` (or another ``command`` of the CLI) with the
    appliance's environment."""

    def __init__(self, appliance: Appliance, workdir: Path, *command: str) -> None:
        self.socket = str(workdir / "tmux.sock")
        self.target = "tui"
        conf = workdir / "tmux.conf"
        conf.write_text(TMUX_CONF)
        env = {k: v for k, v in appliance.env.items() if not k.startswith("TMUX")}
        self.env = {**env, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        self.tmux("-f", str(conf), "new-session", "-d", "-s", self.target,
                  "-x", str(WIDTH), "-y", str(HEIGHT), str(BIN / "clauderon"),
                  *(command or ("tui",)))

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(["tmux", "-S", self.socket, *args], env=self.env, text=True,
                              capture_output=True, timeout=30, check=False)
        assert proc.returncode == 0, f"tmux {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.target)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.target, "-l", text)

    def press(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.target, *keys)

    def wait(self, what: str, check: re.Pattern[str] | str, timeout: float = 90) -> str:
        """The screen once it shows ``check`` (a regex or plain text)."""
        def shown(text: str) -> bool:
            return bool(check.search(text) if isinstance(check, re.Pattern) else check in text)
        return self.poll(what, shown, timeout)

    def wait_gone(self, what: str, text: str, timeout: float = 90) -> str:
        return self.poll(what, lambda screen: text not in screen, timeout)

    def poll(self, what: str, ok: Callable[[str], bool], timeout: float) -> str:
        """Read the screen until ``ok``; fail (never time) after ``timeout``, showing it."""
        deadline = time.monotonic() + timeout
        while not ok(screen := self.screen()):
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what}; the screen:\n{screen}")
            time.sleep(0.1)
        return screen

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], env=self.env,
                       capture_output=True, timeout=30, check=False)


@pytest.fixture
def terminal(appliance: Appliance, tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(appliance, tmp_path)
    try:
        yield term
    finally:
        term.close()


def unique_name() -> str:
    return f"tuiterm-{uuid.uuid4().hex[:8]}"


def row_of(name: str, phase: str) -> re.Pattern[str]:
    return re.compile(rf"^\W*{re.escape(name)}\s+{phase}\b", re.MULTILINE)


def attach_and_detach(terminal: Terminal, appliance: Appliance, name: str) -> None:
    """From the list with ``name`` selected: Enter attaches, the container's shell runs
    what is typed, ctrl-q detaches and the TUI is back with its list."""
    session = appliance.session(name)
    terminal.press("Enter")
    # The TUI has given the terminal away: its bars are gone from the screen.
    terminal.wait_gone("the TUI to suspend", "connected")
    terminal.type(PROBE)
    terminal.press("Enter")
    terminal.wait("the container's shell to answer",
                  re.compile(rf"^attached-42 {session['id']}\s*$", re.MULTILINE))
    terminal.press("C-q")
    screen = terminal.wait("the TUI to come back", row_of(name, "running"))
    assert "● connected" in screen
    assert f"attached-42 {session['id']}" not in screen  # the TUI's screen, not the shell's
    # Detaching leaves the session running.
    assert appliance.session(name)["phase"] == "running"
    [container] = appliance.containers(session["id"])

    def running_again() -> bool:
        # The TUI, back, reads the session's diff, which holds the container still
        # ("paused") for as long as git reads: running, once the hold ends.
        container.reload()
        return bool(container.status == "running")

    wait_for(running_again, what="the container to run, no diff holding it")
    # Keys work again. The TUI posts its notice about the attach (a warning, had the
    # command failed) before it draws again, so a frame drawn after a key shows it.
    terminal.press("f")
    screen = terminal.wait("the archived filter", re.compile(r"archived\s+0/1"))
    assert "attach ended with status" not in screen
    terminal.press(*["f"] * (len(Filter) - 1))  # round the rest of the filters
    terminal.wait("the active filter again", re.compile(r"active\s+1/1"))


def test_attach_hands_the_terminal_over_and_detach_brings_the_tui_back(
    appliance: Appliance, repo: Path, terminal: Terminal
) -> None:
    name = unique_name()
    appliance.cli("create", "--repo", str(repo), "--name", name, "--prompt", "p")
    terminal.wait("the session list", row_of(name, "running"))

    attach_and_detach(terminal, appliance, name)

    # Still live after the hand-over: keys act, and the list follows the events.
    terminal.press("a")
    appliance.wait_phase(name, "archived")
    screen = terminal.wait("the archived session to leave the active list",
                           re.compile(r"active\s+0/1"))
    assert not row_of(name, r"\w+").search(screen)


def test_attach_starts_a_stopped_session_first(
    appliance: Appliance, repo: Path, terminal: Terminal
) -> None:
    name = unique_name()
    appliance.cli("create", "--repo", str(repo), "--name", name, "--prompt", "p")
    appliance.cli("stop", name)
    terminal.wait("the stopped session", row_of(name, "stopped"))

    # Enter on a stopped session starts it, then attaches (``docker attach`` alone
    # refuses a stopped container): the shell inside answers, the row says running.
    attach_and_detach(terminal, appliance, name)


def held(appliance: Appliance, name: str) -> Any:
    """``name``'s container, once running, held still (``docker pause``, as the host's reads
    of its files hold it) with the reconciler stopped: nothing but the test lets it go."""
    [container] = appliance.containers(appliance.session(name)["id"])

    def running() -> bool:
        container.reload()
        return bool(container.status == "running")

    wait_for(running, what="the container to run, no diff holding it")
    appliance.stop("reconciler")  # its pass would take the pause for a crash's and undo it
    container.pause()
    return container


def test_an_attach_waits_out_a_hold_on_the_container(
    appliance: Appliance, repo: Path, tmp_path: Path
) -> None:
    """The engine refuses to attach to a container held still, and the moment after a start,
    when a person attaches, is the moment a client reads the new session's diff (the TUI
    does, on the session's events). ``clauderon attach`` and the TUI share the waiting;
    the CLI shows it here, because the TUI's own read of the diff would take the test's
    hold for its own and end it. What the person types while it waits reaches the shell
    once it runs; ctrl-c stops the waiting."""
    name = unique_name()
    appliance.cli("create", "--repo", str(repo), "--name", name, "--prompt", "p")
    container = held(appliance, name)
    try:
        (tmp_path / "first").mkdir()
        term = Terminal(appliance, tmp_path / "first", "attach", name)
        try:
            term.wait("the attach to wait", "held still while its files are read; waiting")
            term.press("C-c")
            # It stops, and says why: the engine's refusal, as text.
            term.wait("the attach to give up", "You cannot attach to a paused container")
        finally:
            term.close()
        term = Terminal(appliance, tmp_path, "attach", name)
        term.wait("the attach to wait", "held still while its files are read; waiting")
        term.type(PROBE)  # typed once, while it waits
        term.press("Enter")
    finally:
        container.unpause()
    try:
        term.wait("the container's shell to answer what was typed while waiting",
                  re.compile(rf"^attached-42 {appliance.session(name)['id']}\s*$",
                             re.MULTILINE))
        term.press("C-q")
        # docker's own words, shown once it ends: the detach; the refusal was waited out.
        screen = term.wait("the attach to end", "read escape sequence")
        assert "unpause" not in screen
    finally:
        term.close()
