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

In print mode the start script runs the agent's one-shot form (:func:`_print_body`): the
answer goes to the terminal and to a log in the agent's home, a marker says it is done, and
the ``Completed`` hook asks for the ``completed`` phase. A container made again for that
session (unarchived) finds the marker and carries the conversation on interactively
instead of asking the same question twice.

Every step is idempotent, so booting the same container twice (the reconciler restarted
mid-way, a stopped container started again) is safe.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from appliance.agents import claude_setup, codex_setup, custom, gemini_setup
from appliance.agents.hooks import (
    COMPLETED_EVENT,
    EXITED_EVENT,
    HOOK_SCRIPT,
    HOOK_SCRIPT_PATH,
    MANAGED_SETTINGS_PATH,
    claude_managed_settings,
    render_json,
)
from appliance.agents.modes import PRINT_DONE, PRINT_OUTPUT, plan_first
from appliance.contract import CONTAINER_HOME, workdir_for
from appliance.errors import InvalidInput
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


#: The exit status of :func:`check_then_argv` when a tool is missing (named on stdout).
MISSING_TOOLS = 99


def check_then_argv(tools: tuple[str, ...], then: tuple[str, ...]) -> list[str]:
    """The check and the start in one exec (a boot with nothing to write): prints each
    missing tool and exits :data:`MISSING_TOOLS`, else runs ``then``; ``sh`` only."""
    return ["sh", "-c",
            'missing=; while [ "$1" != -- ]; do command -v "$1" >/dev/null 2>&1 '
            '|| { echo "$1"; missing=1; }; shift; done; shift; '
            f'[ -z "$missing" ] || exit {MISSING_TOOLS}; exec "$@"',
            "check", *tools, "--", *then]


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


#: The name the shell left in the terminal after the agent exits runs under (its argv[0]):
#: what tells a message for the agent from one that would be typed into a shell.
EXIT_SHELL = "clauderon-shell"
#: Exit status of :func:`reading_argv` when the agent has exited and the shell reads keys.
SHELL_READING = 3

#: An agent that dies (killed, crashed) leaves the terminal in its own modes: keys read raw,
#: so Ctrl-C is a plain key and nothing echoes; the cursor hidden; mouse, focus and
#: bracketed-paste reporting on; perhaps the alternate screen. And input it never read is
#: still waiting: keys typed for the agent, the terminal's answers to its queries. The shell
#: that keeps the terminal open gets it back as a shell expects it, with that input thrown
#: away rather than run as a command (an agent that exits cleanly has reset the modes
#: itself; doing it again changes nothing).
_TERMINAL_RESET = (
    "stty sane iutf8 2>/dev/null\n"
    "printf '\\e[0m\\e[?25h\\e[?1049l\\e[?1000l\\e[?1002l\\e[?1003l\\e[?1006l"
    "\\e[?1004l\\e[?2004l\\e[>4;0m'\n"
    "while read -r -s -t 0.2 -n 4096 _; do :; done 2>/dev/null\n"
)


def _hook(event: str) -> str:
    """The line that sends ``event`` through the status hook, as the agent's hooks do."""
    return (f"printf '%s' {shlex.quote(json.dumps({'hook_event_name': event}))} "
            f"| bash {HOOK_SCRIPT_PATH}")


def _start_script(body: str, workdir: str) -> bytes:
    """Runs the agent; once it has ended, says so (the ``Exited`` hook: no agent reports its
    own death) and keeps the terminal open with a shell. A terminal that tmux ends (a
    restart) takes this script with it: nothing is said then."""
    return (
        "#!/bin/bash\n"
        "# Written by clauderon: starts the agent, resuming its conversation when one exists.\n"
        f"cd {shlex.quote(workdir)} || exit 1\n"
        + body
        + "status=$?\n"
        + _hook(EXITED_EVENT) + "\n"
        + _TERMINAL_RESET
        + 'echo "[clauderon] the agent exited ($status); this shell keeps the terminal open"\n'
        f"exec -a {EXIT_SHELL} bash -l\n"
    ).encode()


def _print_body(one_shot: list[str], interactive: str) -> str:
    """Print mode: the one answer (once), then the Completed hook; afterwards, the
    interactive form (a container made again for a completed session carries on)."""
    done = f'"{PRINT_DONE}"'
    return (
        f"if [ -e {done} ]; then\n"
        + interactive  # not indented: a quoted prompt may span lines
        + "else\n"
        '    mkdir -p "$HOME/.clauderon"\n'
        f'    {shlex.join(one_shot)} 2>&1 | tee -a "$HOME/{PRINT_OUTPUT}"\n'
        f'    echo "${{PIPESTATUS[0]}}" > {done}\n'
        f"    {_hook(COMPLETED_EVENT)}\n"
        "fi\n"
    )


#: What each agent adds to the plan: its files, its start script's body, its one-shot argv.
_Parts = tuple[list[FileWrite], str, list[str]]


def _claude(session: Session, placeholders: Mapping[str, str], workdir: str) -> _Parts:
    files = [
        FileWrite(path=MANAGED_SETTINGS_PATH, as_root=True, content=render_json(
            claude_managed_settings(skip_permissions=session.skip_permissions,
                                    plan_mode=session.plan_mode))),
        FileWrite(path=f"{CONTAINER_HOME}/.claude.json", mode="0600", keep=True,
                  content=render_json(claude_setup.claude_json(
                      workdir=workdir, api_key_placeholder=placeholders["ANTHROPIC_API_KEY"],
                      skip_permissions=session.skip_permissions))),
    ]
    return (files, claude_setup.start_script(session, workdir=workdir),
            claude_setup.print_argv(session))


def _codex(session: Session, placeholders: Mapping[str, str], workdir: str,
           login: Mapping[str, str] | None) -> _Parts:
    """``login``: the person's ChatGPT login (no API key), Codex logged in with it; its
    start runs without the API key's placeholders (Codex would take one over the login)."""
    auth = codex_setup.chatgpt_auth_json(login) if login else \
        codex_setup.auth_json(placeholders["OPENAI_API_KEY"])
    files = [
        FileWrite(path=f"{CONTAINER_HOME}/.codex/config.toml", content=codex_setup.config_toml(
            session, workdir=workdir, chatgpt=login is not None).encode()),
        FileWrite(path=f"{CONTAINER_HOME}/.codex/auth.json", mode="0600",
                  content=auth.encode()),
    ]
    body = codex_setup.start_script(session)
    if login:
        body = "unset OPENAI_API_KEY CODEX_API_KEY\n" + body
    return files, body, codex_setup.print_argv(session)


def _gemini(session: Session) -> _Parts:
    files = [FileWrite(path=gemini_setup.SYSTEM_SETTINGS_PATH, as_root=True,
                       content=render_json(gemini_setup.system_settings(session)))]
    return files, gemini_setup.start_script(session), gemini_setup.print_argv(session)


def _custom(session: Session, agent: custom.CustomAgent) -> _Parts:
    prompt = session.initial_prompt
    if session.plan_mode and agent.plan_args is None:
        prompt = plan_first(prompt)

    def run(print_mode: bool) -> list[str]:
        return custom.argv(agent, prompt=prompt, model=session.model, print_mode=print_mode,
                           plan_mode=session.plan_mode)

    files = [FileWrite(path=path, content=content, as_root=True)
             for path, content in custom.pattern_files(agent).items()]
    body = shlex.join(run(False)) + "\n"
    if files:
        files.append(FileWrite(path=custom.WATCHER_PATH, mode="0755", as_root=True,
                               content=custom.watcher_script(HOOK_SCRIPT_PATH, TMUX_SESSION,
                                                             EXIT_SHELL).encode()))
        body = f"(bash {custom.WATCHER_PATH} >/dev/null 2>&1 &)\n" + body
    return files, body, run(True)


def boot_plan(session: Session, placeholders: Mapping[str, str], *,
              agents: Mapping[str, custom.CustomAgent] | None = None,
              codex_login: Mapping[str, str] | None = None) -> BootPlan:
    """The plan; ``placeholders`` are the session's own (the same as its environment's);
    ``agents``: the custom agents of ``config.toml`` (a custom session names one);
    ``codex_login``: the person's ChatGPT login for Codex (``codex_setup``), or None."""
    workdir = workdir_for(session)
    files = [
        FileWrite(path=HOOK_SCRIPT_PATH, content=HOOK_SCRIPT.encode(), mode="0755",
                  as_root=True),
    ]
    program = str(session.agent)
    if session.agent is Agent.CLAUDE:
        mine, body, one_shot = _claude(session, placeholders, workdir)
    elif session.agent is Agent.CODEX:
        mine, body, one_shot = _codex(session, placeholders, workdir, codex_login)
    elif session.agent is Agent.GEMINI:
        mine, body, one_shot = _gemini(session)
    else:
        defined = custom.lookup(agents or {}, session.custom_agent)
        if session.print_mode and defined.print_args is None:
            raise InvalidInput(f"the custom agent {defined.name!r} has no print_args: it "
                               "cannot run in print mode", field="print_mode")
        mine, body, one_shot = _custom(session, defined)
        program = defined.program
    if session.print_mode:
        body = _print_body(one_shot, body)
    files += mine
    files.append(FileWrite(path=START_SCRIPT_PATH, mode="0755", as_root=True,
                           content=_start_script(body, workdir)))
    return BootPlan(tools=(*BASE_TOOLS, program), files=tuple(files),
                    start=tuple(start_argv()))


def attach_argv() -> list[str]:
    """Join the agent's terminal (any number of viewers at once: tmux clients); a plain
    shell when the container runs no agent."""
    return ["sh", "-c", f"tmux attach-session -t {TMUX_SESSION} 2>/dev/null "
            "|| exec bash -l 2>/dev/null || exec sh"]


def reading_argv() -> list[str]:
    """Exit 0 when the agent's terminal is being read key by key: a terminal agent (Claude
    Code, Codex, any TUI) turns canonical mode off once it takes input; until then keys
    typed into the pane land in a line buffer the agent may never read. Exit
    :data:`SHELL_READING` when the agent has exited and the terminal is the shell left
    after it (whatever runs in that shell)."""
    return ["sh", "-c", f'pid=$(tmux display -p -t {TMUX_SESSION} "#{{pane_pid}}") || exit 1; '
            f"{custom.pid_runs(EXIT_SHELL)} && exit {SHELL_READING}; "
            f'tty=$(tmux display -p -t {TMUX_SESSION} "#{{pane_tty}}") '
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
