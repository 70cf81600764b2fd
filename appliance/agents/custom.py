"""Custom agents: any terminal agent, defined in ``config.toml`` (parse and build, pure).

A person names an agent the appliance does not know in ``[agents.custom.<name>]``::

    [agents.custom.aider]
    command = ["aider", "--no-auto-commits"]     # argv, never a shell string
    prompt_args = ["--message", "{prompt}"]       # added when the session has a prompt
    model_args = ["--model", "{model}"]           # added when it names a model
    print_args = ["--exit"]                       # print mode; absent: print is refused
    plan_args = []                                # plan mode; absent: a plan-first prompt
    [agents.custom.aider.status]                  # grep -E patterns on the terminal's text
    working = ["Thinking", "Running"]
    waiting_approval = ["\\(Y\\)es/\\(N\\)o"]
    waiting_input = ["^> *$"]

Every value is an argv element: ``{prompt}`` and ``{model}`` are replaced *inside* one
element, so whatever a prompt holds, it stays one argument (the start script quotes each
with ``shlex``). Unknown keys are errors, as everywhere in ``config.toml``.

Status: an agent without hooks tells nothing, so a watcher in the container reads its
tmux pane every :data:`WATCH_SECONDS` and, when the first status whose patterns match
changes, sends it through the same hook script (:data:`PANE_EVENTS`). The patterns live in
root-owned files, handed to ``grep -f``: no pattern is ever part of a command line.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from appliance.errors import ConfigError, InvalidInput, refuse_unknown

_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?")
_KEYS = frozenset({"command", "prompt_args", "model_args", "print_args", "plan_args",
                   "status"})
WATCH_SECONDS = 2
PATTERNS_DIR = "/etc/clauderon/pane-status"
WATCHER_PATH = "/etc/clauderon/pane-status.sh"
#: Status -> the hook event the watcher sends (``appliance.agents.hooks.HOOK_STATUS``),
#: in the order they are tried: asking a person beats anything else on the screen.
PANE_EVENTS: tuple[tuple[str, str], ...] = (
    ("waiting_approval", "PermissionRequest"),
    ("waiting_input", "Stop"),
    ("idle", "IdlePrompt"),
    ("working", "PreToolUse"),
)
_STATUS_KEYS = frozenset(name for name, _ in PANE_EVENTS)
MAX_PATTERNS = 20
MAX_PATTERN_LEN = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomAgent:
    name: str
    command: tuple[str, ...]
    prompt_args: tuple[str, ...] = ("{prompt}",)
    model_args: tuple[str, ...] = ()
    #: None: the agent has no print mode (a print-mode create is refused).
    print_args: tuple[str, ...] | None = None
    #: None: plan mode is a plan-first prompt.
    plan_args: tuple[str, ...] | None = None
    status: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def program(self) -> str:
        return self.command[0]


def _argv(value: object, where: str, *, required: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) \
            or any("\0" in v or "\n" in v for v in value):
        raise ConfigError(f"{where} must be a list of strings, one argument each (like "
                          '["aider", "--yes"]), never one shell string')
    if required and (not value or not value[0].strip()):
        raise ConfigError(f"{where} needs at least the program to run")
    return tuple(value)


def _status(value: object, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of status = [patterns]")
    refuse_unknown(value, _STATUS_KEYS, where)
    out: dict[str, tuple[str, ...]] = {}
    for key, patterns in value.items():
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns) \
                or len(patterns) > MAX_PATTERNS:
            raise ConfigError(f"{where} {key}: a list of at most {MAX_PATTERNS} patterns")
        for p in patterns:
            if not p or len(p) > MAX_PATTERN_LEN or "\n" in p or "\0" in p:
                raise ConfigError(f"{where} {key}: {p[:40]!r} must be one line of 1 to "
                                  f"{MAX_PATTERN_LEN} characters")
            try:
                re.compile(p)
            except re.error as exc:
                raise ConfigError(f"{where} {key}: {p[:40]!r} is not a pattern ({exc})") \
                    from None
        out[key] = tuple(patterns)
    return out


def parse_custom_agents(body: object, origin: str) -> dict[str, CustomAgent]:
    """``[agents.custom]``: name -> definition; :class:`ConfigError` naming the key."""
    if not isinstance(body, dict):
        raise ConfigError(f"{origin} [agents.custom] must hold tables, like "
                          "[agents.custom.aider]")
    out: dict[str, CustomAgent] = {}
    for name, spec in body.items():
        where = f"{origin} [agents.custom.{name}]"
        if not _NAME.fullmatch(name):
            raise ConfigError(f"{where}: a name of lowercase letters, digits, - and _")
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be a table")
        refuse_unknown(spec, _KEYS, where)
        if "command" not in spec:
            raise ConfigError(f'{where}: command = ["program", ...] is required')
        out[name] = CustomAgent(
            name=name,
            command=_argv(spec["command"], f"{where} command", required=True),
            prompt_args=_argv(spec.get("prompt_args", ["{prompt}"]), f"{where} prompt_args"),
            model_args=_argv(spec.get("model_args", []), f"{where} model_args"),
            print_args=(_argv(spec["print_args"], f"{where} print_args")
                        if "print_args" in spec else None),
            plan_args=(_argv(spec["plan_args"], f"{where} plan_args")
                       if "plan_args" in spec else None),
            status=_status(spec.get("status", {}), f"{where} status"),
        )
    return out


def lookup(agents: Mapping[str, CustomAgent], name: str | None) -> CustomAgent:
    """The named custom agent, or a 400 that lists the defined ones."""
    if name and name in agents:
        return agents[name]
    known = ", ".join(sorted(agents)) or "none: define one under [agents.custom.<name>] in "\
        "config.toml"
    raise InvalidInput(f"custom agent {name!r} is not defined (defined: {known})",
                       field="custom_agent")


_SLOT = re.compile(r"\{(prompt|model)\}")


def _fill(args: tuple[str, ...], values: Mapping[str, str]) -> list[str]:
    """Each slot replaced in one pass: a prompt holding ``{model}`` stays as written."""
    return [_SLOT.sub(lambda m: values[m.group(1)], arg) for arg in args]


def argv(agent: CustomAgent, *, prompt: str, model: str | None, print_mode: bool,
         plan_mode: bool) -> list[str]:
    """The command line for one run (each element one argument, whatever it holds)."""
    values = {"prompt": prompt, "model": model or ""}
    out = list(agent.command)
    if print_mode and agent.print_args is not None:
        out += _fill(agent.print_args, values)
    if plan_mode and agent.plan_args is not None:
        out += _fill(agent.plan_args, values)
    if model:
        out += _fill(agent.model_args, values)
    if prompt:
        out += _fill(agent.prompt_args, values)
    return out


def pattern_files(agent: CustomAgent) -> dict[str, bytes]:
    """Per status with patterns: its file's content (one ERE a line)."""
    return {f"{PATTERNS_DIR}/{status}": ("\n".join(agent.status[status]) + "\n").encode()
            for status, _ in PANE_EVENTS if agent.status.get(status)}


def pid_runs(name: str) -> str:
    """A shell test, true when the process ``$pid`` runs under the argv[0] ``name`` (the
    shell a start script leaves after the agent: ``boot.EXIT_SHELL``)."""
    return (f'[ "$(head -c {len(name)} "/proc/$pid/cmdline" 2>/dev/null)" '
            f"= {shlex.quote(name)} ]")


def watcher_script(hook_script: str, tmux_session: str, exit_shell: str) -> str:
    """Reads the pane every few seconds; sends a status when the first match changes. It
    ends with the agent: once the pane runs the shell left after it (its argv[0] is
    ``exit_shell``), what the screen shows is that shell's, and a status read from it would
    overwrite the ``exited`` the start script said."""
    tries = " ".join(f"{status}:{event}" for status, event in PANE_EVENTS)
    pane = shlex.quote(tmux_session)
    return (
        "#!/bin/bash\n"
        "# Written by clauderon: the agent's status, read from its terminal's text.\n"
        f'last=\nwhile pid="$(tmux display -p -t {pane} "#{{pane_pid}}" 2>/dev/null)" \\\n'
        f"        && ! {pid_runs(exit_shell)}; do\n"
        f"    screen=\"$(tmux capture-pane -p -t {pane} 2>/dev/null)\"\n"
        "    now=\n"
        f"    for pair in {tries}; do\n"
        f'        f={shlex.quote(PATTERNS_DIR)}/"${{pair%%:*}}"\n'
        '        if [ -s "$f" ] && printf \'%s\\n\' "$screen" | grep -qE -f "$f"; then\n'
        '            now="${pair#*:}"; break\n'
        "        fi\n"
        "    done\n"
        '    if [ -n "$now" ] && [ "$now" != "$last" ]; then\n'
        "        printf '{\"hook_event_name\":\"%s\"}' \"$now\" | "
        f"bash {shlex.quote(hook_script)}\n"
        '        last="$now"\n'
        "    fi\n"
        f"    sleep {WATCH_SECONDS}\n"
        "done\n"
    )
