"""``clauderon completion bash|zsh|fish``: shell completion, generated from the parser.

The parser (``cli/commands.py``) is the one list of commands, options and choices, so the
scripts are built from it (:func:`tree`, pure) and can never name a command that is gone.
Session arguments complete from ``clauderon list --all`` (the names in its first column),
so the API is asked only when a session name is wanted; when it is down nothing is offered.

* bash: a ``_clauderon`` function registered with ``complete -F``;
* zsh: the same function through zsh's ``bashcompinit``;
* fish: ``complete -c clauderon`` lines with the subcommand conditions.

Install: ``source <(clauderon completion bash)`` in ``~/.bashrc`` (likewise ``.zshrc``), or
``clauderon completion fish > ~/.config/fish/completions/clauderon.fish``.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from cli.table import Command, arg

SHELLS = ("bash", "zsh", "fish")
SESSION_WORDS = "$(clauderon list --all 2>/dev/null | awk 'NR>1 && !/^!/ {print $1}')"


@dataclass
class Node:
    """One command level: its subcommands, options, and what its arguments take."""

    help: str = ""
    children: dict[str, Node] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)  # option string -> help
    #: Options that take a value: option string -> its choices (empty: any value).
    valued: dict[str, tuple[str, ...]] = field(default_factory=dict)
    choices: tuple[str, ...] = ()  # the positional arguments' fixed choices
    sessions: bool = False  # a positional argument is a session name
    files: bool = False  # a positional argument is a file's path


def tree(parser: argparse.ArgumentParser, help_text: str = "") -> Node:
    """The parser as a tree of :class:`Node` (pure)."""
    node = Node(help=help_text)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                node.children[name] = tree(sub, helps.get(name, ""))
        elif action.option_strings:
            for opt in action.option_strings:
                node.options[opt] = action.help or ""
                if action.nargs != 0:
                    node.valued[opt] = tuple(str(c) for c in action.choices or ())
        else:
            node.choices += tuple(str(c) for c in action.choices or ())
            node.sessions |= action.dest == "session"  # its value is a session name
            node.files |= action.dest == "path"  # its value is a file's path
    return node


def _paths(node: Node, prefix: str = "") -> list[tuple[str, Node]]:
    out = [(prefix, node)]
    for name, child in node.children.items():
        out += _paths(child, f"{prefix} {name}".strip())
    return out


def _bash_cases(root: Node) -> tuple[list[str], list[str], str]:
    """The bash function's cases: the words after each command, the values after each of
    its options, and every command's path (quoted, space-separated)."""
    words, values, subs = [], [], []
    for path, node in _paths(root):
        offered = [*node.children, *node.options, *node.choices]
        words.append(f"        {shlex.quote(path)}) words={shlex.quote(' '.join(offered))}"
                     + ("; sessions=1" if node.sessions else "")
                     + ("; files=1" if node.files else "") + " ;;")
        for opt, choices in node.valued.items():
            # A value without choices is most often a path (--repo): offer files.
            offer = (f"-W {shlex.quote(' '.join(choices))}" if choices else "-f")
            values.append(f"        {shlex.quote(path + '|' + opt)}) "
                          f'COMPREPLY=($(compgen {offer} -- "$cur")); return ;;')
        subs += [f"{path} {name}".strip() for name in node.children]
    return words, values, " ".join(shlex.quote(s) for s in subs)


def bash(root: Node) -> str:
    """The bash function (also what zsh runs through bashcompinit)."""
    words, values, known = _bash_cases(root)
    return "\n".join([
        "# clauderon completion for bash: source <(clauderon completion bash)",
        "_clauderon() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" path="" w i words=""',
        '    local sessions="" files="" next="" k=""',
        f"    local -a known=({known})",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        w="${COMP_WORDS[i]}"',
        '        next="${path:+$path }$w"',
        '        for k in "${known[@]}"; do',
        '            [[ "$k" == "$next" ]] && { path="$next"; break; }',
        "        done",
        "    done",
        '    (( COMP_CWORD > 1 )) && prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    case "$path|$prev" in',
        *values,
        "    esac",
        '    case "$path" in',
        *words,
        "    esac",
        '    if [[ -n "$sessions" && "$cur" != -* ]]; then',
        f'        words="$words {SESSION_WORDS}"',
        "    fi",
        '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        '    [[ -n "$files" && "$cur" != -* ]] && COMPREPLY+=($(compgen -f -- "$cur"))',
        "}",
        "complete -F _clauderon clauderon",
        "",
    ])


def zsh(root: Node) -> str:
    """The bash function through zsh's bashcompinit (compinit first, unless it ran)."""
    return ("#compdef clauderon\n# clauderon completion for zsh: source <(clauderon "
            "completion zsh)\n(( $+functions[compdef] )) || "
            "{ autoload -U +X compinit && compinit -u; }\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + bash(root))


def _fish_escape(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish(root: Node) -> str:
    lines = ["# clauderon completion for fish: clauderon completion fish > "
             "~/.config/fish/completions/clauderon.fish", "complete -c clauderon -f"]
    top = " ".join(root.children)
    for name, node in root.children.items():
        lines.append(f"complete -c clauderon -n 'not __fish_seen_subcommand_from {top}' "
                     f"-a {name} -d {_fish_escape(node.help)}")
        cond = f"-n '__fish_seen_subcommand_from {name}'"
        for sub, child in node.children.items():
            lines.append(f"complete -c clauderon {cond} -a {sub} -d {_fish_escape(child.help)}")
        for opt, help_text in node.options.items():
            flag = f"-l {opt[2:]}" if opt.startswith("--") else f"-s {opt[1:]}"
            choices = node.valued.get(opt)
            takes = (f" -xa {_fish_escape(' '.join(choices))}" if choices
                     else " -r" if opt in node.valued else "")
            lines.append(f"complete -c clauderon {cond} {flag}{takes} "
                         f"-d {_fish_escape(help_text)}")
        if node.choices:
            lines.append(f"complete -c clauderon {cond} -a {_fish_escape(' '.join(node.choices))}")
        if node.files:
            lines.append(f"complete -c clauderon {cond} -F")
        if node.sessions:
            lines.append(f"complete -c clauderon {cond} -a \"{SESSION_WORDS}\"")
    return "\n".join(lines) + "\n"


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](tree(parser))


def command(parser_of: Callable[[], argparse.ArgumentParser]) -> Command:
    """``completion``; ``parser_of()`` builds the whole parser when it runs."""

    def cmd_completion(args: argparse.Namespace) -> int:
        print(script(args.shell, parser_of()), end="")
        return 0

    return Command(name="completion", help="print shell completion for bash, zsh or fish "
                   "(bash: source <(clauderon completion bash))", handler=cmd_completion,
                   json=False, args=(arg("shell", choices=SHELLS),))
