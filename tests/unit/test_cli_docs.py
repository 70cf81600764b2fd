"""Every ``clauderon`` subcommand has help text and is listed in the README."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from appliance.config import load_settings
from appliance.errors import ConfigError
from cli.commands import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return dict(actions[0].choices)


def help_texts() -> dict[str, str]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help or "" for choice in action._choices_actions}


NAMES = sorted(subcommands())


def test_the_issue_commands_exist() -> None:
    for name in ("create", "list", "show", "attach", "archive", "unarchive", "delete",
                 "set-access-mode", "reconcile", "config", "status", "daemon"):
        assert name in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_subcommand_has_help(name: str) -> None:
    assert help_texts()[name].strip(), f"`clauderon {name}` has no help text"
    sub = subcommands()[name]
    assert (sub.description or "").strip()
    assert sub.format_help().strip()
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help or action.choices, f"{name} {action.option_strings} has no help"


def listed(text: str, name: str) -> bool:
    """``clauderon <name>`` as a whole word (``clauderon archive`` is not ``unarchive``)."""
    return re.search(rf"\bclauderon {re.escape(name)}(?![\w-])", text) is not None


def test_listed_matches_whole_commands_only() -> None:
    text = "run `clauderon unarchive x`, then clauderon list-all and clauderon stop."
    assert listed(text, "unarchive")
    assert listed(text, "stop")
    assert not listed(text, "archive")
    assert not listed(text, "list")


@pytest.mark.parametrize("name", NAMES)
def test_every_subcommand_is_in_the_readme(name: str) -> None:
    assert README.is_file(), "README.md is missing at the repository root"
    assert listed(README.read_text(), name), f"README.md does not list `clauderon {name}`"


def test_help_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in NAMES:
        assert name in out


def toml_blocks() -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```", README.read_text(), re.S | re.M)


def test_the_readme_configuration_loads(tmp_path: Path) -> None:
    """The README's reference `config.toml` is one a user can copy: valid TOML (no table
    twice), every key known, every value accepted. The other examples name files and
    clusters of their own, so only their TOML and their keys are checked."""
    blocks = toml_blocks()
    [reference] = [b for b in blocks if "[reconciler]" in b]
    (tmp_path / "config.toml").write_text(reference)
    settings = load_settings({"CLAUDERON_HOME": str(tmp_path)})
    assert settings.keep_events_days == 30 and settings.pids_limit == 1024
    for block in blocks:
        (tmp_path / "config.toml").write_text(block)
        try:
            load_settings({"CLAUDERON_HOME": str(tmp_path)})
        except ConfigError as exc:
            assert "not valid TOML" not in exc.message and "unknown key" not in exc.message, \
                exc.message
