"""Shell completion: the bash script sourced in a real bash, asked as bash asks it.

Each case sets ``COMP_WORDS``/``COMP_CWORD`` as readline does and calls the registered
function, then prints ``COMPREPLY``; ``complete -p`` shows it is registered. zsh loads the same
function through bashcompinit; fish is asked through its own engine (``complete -C``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli.commands import TABLE, build_parser
from cli.completion import script, tree

BIN = Path(sys.executable).parent
COMMANDS = {command.name for command in TABLE}


def generated(shell: str, home: Path) -> str:
    """What `clauderon completion SHELL` prints (the real command)."""
    done = subprocess.run([str(BIN / "clauderon"), "completion", shell], capture_output=True,
                          text=True, timeout=60, check=True,
                          env={"PATH": "/usr/bin:/bin", "CLAUDERON_HOME": str(home)})
    assert done.stderr == ""
    return done.stdout


def ask_bash(source: Path, line: str, folder: Path) -> list[str]:
    """What bash offers after ``line`` (a trailing space: a new, empty word)."""
    program = (f"source {source}\n"
               "complete -p clauderon\n"
               f"read -ra COMP_WORDS <<< {line!r}\n"
               f"[[ {line!r} == *' ' ]] && COMP_WORDS+=('')\n"
               "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
               "_clauderon\n"
               "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    # PATH without clauderon: a session name would need the API, and none runs here.
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], cwd=folder,
                          capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    registered, *offered = done.stdout.splitlines()
    assert registered == "complete -F _clauderon clauderon"
    return [w for w in offered if w]


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("completion")
    path = folder / "clauderon.bash"
    path.write_text(generated("bash", folder / "home"))
    (folder / "backup-2024.db").write_text("")
    return path


@pytest.mark.parametrize(("line", "expected"), [
    ("clauderon cr", ["create"]),
    ("clauderon re", ["relay", "retry", "retitle", "reconcile", "restore", "restart-agent",
                      "recreate", "recreate-fresh"]),
    ("clauderon pu", ["push"]),
    ("clauderon merge --", ["--help", "--json", "--squash", "--merge", "--rebase",
                            "--delete-branch", "--head"]),
    ("clauderon create --ag", ["--agent"]),
    ("clauderon create --agent ", ["claude", "codex", "gemini", "custom"]),
    ("clauderon create --backend k", ["kubernetes"]),
    ("clauderon list --filter ", ["active", "waiting", "failed", "completed", "archived"]),
    ("clauderon logs ", ["-h", "--help", "-n", "--lines", "-f", "--follow", "api", "proxy",
                         "reconciler", "shipper", "supervisord"]),
    ("clauderon completion ", ["-h", "--help", "bash", "zsh", "fish"]),
    ("clauderon auth ", ["list", "revoke", "token", "-h", "--help"]),
    ("clauderon auth token ", ["create", "-h", "--help"]),
    ("clauderon auth token create --r", ["--read-only", "--read-write"]),
    ("clauderon backup back", ["backup-2024.db"]),
    ("clauderon config ", ["-h", "--help", "--json", "show", "paths"]),
])
def test_bash_offers_what_the_parser_takes(bash_script: Path, line: str,
                                           expected: list[str]) -> None:
    assert ask_bash(bash_script, line, bash_script.parent) == expected


def test_bash_offers_every_command_first(bash_script: Path) -> None:
    offered = ask_bash(bash_script, "clauderon ", bash_script.parent)
    assert len(COMMANDS) > 20
    assert set(COMMANDS) <= set(offered)
    assert {"logs", "backup", "restore", "completion", "status"} <= set(offered)
    assert {"push", "pr", "merge", "send", "interrupt", "health", "restart-agent", "recreate",
            "recreate-fresh", "update-image"} <= set(offered)


def test_zsh_loads_the_function_through_bashcompinit(tmp_path: Path) -> None:
    """zsh: the script registers ``_clauderon`` with bashcompinit, and the function answers
    under zsh's own rules (arrays as bashcompinit sets them: ``ksharrays``)."""
    path = tmp_path / "clauderon.zsh"
    path.write_text(generated("zsh", tmp_path / "home"))
    program = (f"source {path}\n"
               "print -r -- $_comps[clauderon]\n"
               "setopt ksharrays\n"
               "COMP_WORDS=(clauderon create --agent ''); COMP_CWORD=3; _clauderon\n"
               "print -r -- ${COMPREPLY[*]}\n"
               "COMP_WORDS=(clauderon auth token ''); COMP_CWORD=3; _clauderon\n"
               "print -r -- ${COMPREPLY[*]}\n")
    done = subprocess.run(["zsh", "-f", "-c", program], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["_bash_complete -F _clauderon",
                                        "claude codex gemini custom", "create -h --help"]


def test_fish_completes_with_its_own_engine(tmp_path: Path) -> None:
    """fish: ``complete -C`` asks fish's engine what it would offer for a command line."""
    path = tmp_path / "clauderon.fish"
    path.write_text(generated("fish", tmp_path / "home"))
    program = (f"source {path}\n"
               "complete -C'clauderon cr'\n"
               "echo ==\n"
               "complete -C'clauderon create --agent '\n"
               "echo ==\n"
               "complete -C'clauderon auth '\n")
    done = subprocess.run(["fish", "--no-config", "-c", program], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    first, agents, auth = (part.strip().splitlines()
                           for part in done.stdout.split("==\n"))
    assert [line.split("\t")[0] for line in first] == ["create"]
    assert first[0].split("\t")[1].startswith("create a session")
    assert sorted(line.split("\t")[0] for line in agents) == ["claude", "codex", "custom", "gemini"]
    assert [line.split("\t")[0] for line in auth] == ["list", "revoke", "token"]


def test_every_shell_gets_every_command_and_choice(tmp_path: Path) -> None:
    assert len(COMMANDS) > 20
    for shell in ("zsh", "fish"):
        text = generated(shell, tmp_path / "home")
        assert text == script(shell, build_parser())
        for name in COMMANDS:
            assert name in text, (shell, name)
        assert "claude codex gemini custom" in text and "read-write read-only" in text


def test_the_tree_is_the_parser() -> None:
    root = tree(build_parser())
    assert set(root.children) == set(COMMANDS)
    assert root.children["create"].valued["--agent"] == ("claude", "codex", "gemini", "custom")
    assert root.children["show"].sessions and not root.children["list"].sessions
    assert root.children["restore"].files
    assert set(root.children["auth"].children["token"].children) == {"create"}
