"""Shell completion: the bash script sourced in a real bash, asked as bash asks it.

Each case sets ``COMP_WORDS``/``COMP_CWORD`` as readline does and calls the registered
function, then prints ``COMPREPLY``; ``complete -p`` shows it is registered. The zsh and fish
scripts come from the same tree; they are checked for every command's presence.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli.commands import COMMANDS, build_parser
from cli.completion import script, tree

BIN = Path(sys.executable).parent


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
    ("clauderon re", ["retry", "reconcile", "restore"]),
    ("clauderon create --ag", ["--agent"]),
    ("clauderon create --agent ", ["claude", "codex"]),
    ("clauderon create --backend k", ["kubernetes"]),
    ("clauderon list --filter ", ["active", "waiting", "failed", "archived"]),
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
    build_parser()  # fills COMMANDS
    assert len(COMMANDS) > 20
    assert set(COMMANDS) <= set(offered)
    assert {"logs", "backup", "restore", "completion", "status"} <= set(offered)


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_every_command_and_choice(shell: str, tmp_path: Path
                                                            ) -> None:
    text = generated(shell, tmp_path / "home")
    assert text == script(shell, build_parser())
    assert len(COMMANDS) > 20
    for name in COMMANDS:
        assert name in text, name
    assert "claude codex" in text and "read-write read-only" in text


def test_the_tree_is_the_parser() -> None:
    root = tree(build_parser())
    assert set(root.children) == set(COMMANDS)
    assert root.children["create"].valued["--agent"] == ("claude", "codex")
    assert root.children["show"].sessions and not root.children["list"].sessions
    assert root.children["restore"].files
    assert set(root.children["auth"].children["token"].children) == {"create"}
