"""The boot plan: everything done inside a started container before and to start its agent.

Theory of operation
-------------------
:func:`boot_plan` turns a session into a :class:`BootPlan`, pure data the runner carries out
with the backend's ``exec``, in order:

1. **check** that the image has what the agent needs (``bash``, ``curl``, ``tmux`` and the
   agent CLI): ``sh`` prints each missing tool; any output fails the create, naming them;
2. **write** each file (as root for ``/etc``, as the agent's own user for its home), from
   stdin, atomically; files marked ``keep`` are written only when absent (Claude rewrites
   its ``.claude.json`` as it runs: a recreated container keeps its state);
3. **start** the agent in the tmux session :data:`TMUX_SESSION`, unless it already runs.

Every step is idempotent, so booting the same container twice (the reconciler restarted
mid-way, a stopped container started again) is safe.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from appliance.agents import claude_setup, codex_setup
from appliance.agents.hooks import (
    HOOK_SCRIPT,
    HOOK_SCRIPT_PATH,
    MANAGED_SETTINGS_PATH,
    claude_managed_settings,
    render_json,
)
from appliance.contract import CONTAINER_HOME, workdir_for
from appliance.sessions import Agent, Session

TMUX_SESSION = "agent"
START_SCRIPT_PATH = "/etc/clauderon/start-agent.sh"
ROOT = "0:0"
BASE_TOOLS = ("bash", "curl", "tmux")
COLS, ROWS = 200, 50


@dataclass(frozen=True, slots=True, kw_only=True)
class FileWrite:
    path: str
    content: bytes
    mode: str = "0644"
    as_root: bool = False
    keep: bool = False  # only when absent


@dataclass(frozen=True, slots=True, kw_only=True)
class BootPlan:
    tools: tuple[str, ...]
    files: tuple[FileWrite, ...]
    start: tuple[str, ...]


def check_argv(tools: tuple[str, ...]) -> list[str]:
    """Prints each tool that is not on PATH, one a line; ``sh`` only (bash may be missing)."""
    return ["sh", "-c", 'for t in "$@"; do command -v "$t" >/dev/null 2>&1 || echo "$t"; done',
            "check", *tools]


def write_argv(f: FileWrite) -> list[str]:
    script = (
        ('[ -e "$1" ] && { cat >/dev/null; exit 0; }; ' if f.keep else "")
        + 'mkdir -p "$(dirname "$1")" && cat > "$1.tmp" && chmod "$2" "$1.tmp" '
        '&& mv -f "$1.tmp" "$1"'
    )
    return ["sh", "-c", script, "write", f.path, f.mode]


def start_argv() -> list[str]:
    """Start the agent in tmux unless its session already runs; hide tmux's status line."""
    new = shlex.join(["tmux", "new-session", "-d", "-s", TMUX_SESSION, "-x", str(COLS),
                      "-y", str(ROWS), "bash", START_SCRIPT_PATH])
    return ["bash", "-c",
            f"tmux has-session -t {TMUX_SESSION} 2>/dev/null && exit 0; {new} "
            f"&& tmux set-option -g status off >/dev/null "
            f"&& tmux set-option -g history-limit 10000 >/dev/null "
            f"&& tmux set-option -g focus-events on >/dev/null"]


def _start_script(body: str, workdir: str) -> bytes:
    return (
        "#!/bin/bash\n"
        "# Written by clauderon: starts the agent, resuming its conversation when one exists.\n"
        f"cd {shlex.quote(workdir)} || exit 1\n"
        + body
        + 'echo "[clauderon] the agent exited ($?); this shell keeps the terminal open"\n'
        "exec bash -l\n"
    ).encode()


def boot_plan(session: Session, placeholders: Mapping[str, str]) -> BootPlan:
    """The plan; ``placeholders`` are the session's own (the same as its environment's)."""
    workdir = workdir_for(session)
    files = [
        FileWrite(path=HOOK_SCRIPT_PATH, content=HOOK_SCRIPT.encode(), mode="0755",
                  as_root=True),
    ]
    if session.agent is Agent.CLAUDE:
        files += [
            FileWrite(path=MANAGED_SETTINGS_PATH, as_root=True, content=render_json(
                claude_managed_settings(skip_permissions=session.skip_permissions))),
            FileWrite(path=f"{CONTAINER_HOME}/.claude.json", mode="0600", keep=True,
                      content=render_json(claude_setup.claude_json(
                          workdir=workdir, api_key_placeholder=placeholders["ANTHROPIC_API_KEY"],
                          skip_permissions=session.skip_permissions))),
        ]
        body = claude_setup.start_script(session, home=CONTAINER_HOME, workdir=workdir)
    else:
        files += [
            FileWrite(path=f"{CONTAINER_HOME}/.codex/config.toml",
                      content=codex_setup.config_toml(session, workdir=workdir).encode()),
            FileWrite(path=f"{CONTAINER_HOME}/.codex/auth.json", mode="0600",
                      content=codex_setup.auth_json(placeholders["OPENAI_API_KEY"]).encode()),
        ]
        body = codex_setup.start_script(session)
    files.append(FileWrite(path=START_SCRIPT_PATH, mode="0755", as_root=True,
                           content=_start_script(body, workdir)))
    return BootPlan(tools=(*BASE_TOOLS, str(session.agent)), files=tuple(files),
                    start=tuple(start_argv()))


def attach_argv() -> list[str]:
    """Join the agent's terminal (any number of viewers at once: tmux clients); a plain
    shell when the container runs no agent."""
    return ["sh", "-c", f"tmux attach-session -t {TMUX_SESSION} 2>/dev/null "
            "|| exec bash -l 2>/dev/null || exec sh"]


def reading_argv() -> list[str]:
    """Exit 0 when the agent's terminal is being read key by key: a terminal agent (Claude
    Code, Codex, any TUI) turns canonical mode off once it takes input; until then keys
    typed into the pane land in a line buffer the agent may never read."""
    return ["sh", "-c", f'tty=$(tmux display -p -t {TMUX_SESSION} "#{{pane_tty}}") '
            '&& stty -a -F "$tty" | grep -q -- -icanon']


def cursor_line_argv() -> list[str]:
    """Print the line the agent's cursor is on (where typed, unsent input stands)."""
    return ["sh", "-c", f'y=$(tmux display -p -t {TMUX_SESSION} "#{{cursor_y}}") '
            f'&& tmux capture-pane -p -t {TMUX_SESSION} -S "$y" -E "$y"']


def send_text_argv(text: str) -> list[str]:
    """Type ``text`` into the agent's terminal, literally (Enter is sent separately)."""
    return ["tmux", "send-keys", "-t", TMUX_SESSION, "-l", "--", text]


def send_enter_argv() -> list[str]:
    return ["tmux", "send-keys", "-t", TMUX_SESSION, "Enter"]


def interrupt_argv() -> list[str]:
    """Ctrl-C in the agent's terminal: SIGINT to its foreground process (the agent stops
    the turn under way, as when a person presses it)."""
    return ["tmux", "send-keys", "-t", TMUX_SESSION, "C-c"]


def restart_argv() -> list[str]:
    """End the agent's terminal, then start it again (its start script resumes the
    conversation)."""
    stop = f"tmux kill-session -t {TMUX_SESSION} 2>/dev/null; "
    return ["bash", "-c", stop + start_argv()[2]]
