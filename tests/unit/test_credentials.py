"""Credential sources: precedence, 1Password through a fake ``op``, secret files.

1Password's ``op`` cannot run here (it needs an account and the network), so these tests
use ``tests/fakes/op``, a test double that speaks the real ``op read`` contract. Everything
else is real: files with real modes, real environment mappings, real subprocesses.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from appliance.config import Settings
from appliance.credentials import Credential, CredentialSet, load_credentials
from appliance.credentials.model import CREDENTIAL_NAMES
from appliance.errors import ConfigError

FAKES = Path(__file__).resolve().parent.parent / "fakes"


class World:
    """A CLAUDERON_HOME, a HOME, a fake 1Password vault and the env mapping naming them."""

    def __init__(self, root: Path) -> None:
        self.settings = Settings(home=root / "clauderon")
        self.settings.ensure_layout()
        self.home = root / "home"
        self.home.mkdir()
        self.vault = root / "vault.json"
        self.vault.write_text("{}")
        self.op_log = root / "op-calls.jsonl"
        self.env: dict[str, str] = {
            "PATH": f"{FAKES}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home),
            "OP_SERVICE_ACCOUNT_TOKEN": "ops_test_service_account",
            "FAKE_OP_DATA": str(self.vault),
            "FAKE_OP_LOG": str(self.op_log),
        }

    def secret(self, name: str, value: str, mode: int = 0o600) -> Path:
        path = self.settings.secrets_dir / name
        path.write_text(value)
        path.chmod(mode)
        return path

    def op_items(self, items: dict[str, object]) -> None:
        self.vault.write_text(json.dumps(items))

    def proxy_toml(self, text: str) -> None:
        self.settings.proxy_config_path.write_text(text)

    def op_calls(self) -> list[list[str]]:
        if not self.op_log.exists():
            return []
        return [json.loads(line) for line in self.op_log.read_text().splitlines()]

    def load(self) -> tuple[CredentialSet, list[str]]:
        return load_credentials(self.settings, self.env)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def value_of(creds: CredentialSet, name: str) -> tuple[str, str] | None:
    cred = creds.get(name)
    return None if cred is None else (cred.value, cred.source)


# --- precedence -----------------------------------------------------------------------


def test_nothing_configured_loads_nothing_without_warnings(world: World) -> None:
    creds, warnings = world.load()
    assert creds.names() == []
    assert warnings == []
    assert world.op_calls() == []  # no reference, no op call


def test_env_beats_1password_beats_file(world: World) -> None:
    world.proxy_toml(
        "[onepassword.credentials]\n"
        'github_token = "op://dev/github/token"\n'
        'npm_token = "op://dev/npm/token"\n'
    )
    world.op_items({"op://dev/github/token": "gh-from-op", "op://dev/npm/token": "npm-from-op"})
    world.secret("github_token", "gh-from-file")
    world.secret("npm_token", "npm-from-file")
    world.secret("sentry_auth_token", "sentry-from-file\n\n")
    world.env["GITHUB_TOKEN"] = "gh-from-env"

    creds, warnings = world.load()

    assert warnings == []
    assert value_of(creds, "github_token") == ("gh-from-env", "env")
    assert value_of(creds, "npm_token") == ("npm-from-op", "1password")
    assert value_of(creds, "sentry_auth_token") == ("sentry-from-file", "file")
    # the env value shadows the 1Password item: op is not asked for it
    assert world.op_calls() == [["read", "op://dev/npm/token"]]


@pytest.mark.parametrize(
    ("env", "name", "expected"),
    [
        ({"OPENAI_API_KEY": "a", "CODEX_API_KEY": "b"}, "openai_api_key", "a"),
        ({"CODEX_API_KEY": "b"}, "openai_api_key", "b"),
        ({"GITHUB_TOKEN": "g", "GH_TOKEN": "h"}, "github_token", "g"),
        ({"GH_TOKEN": "h"}, "github_token", "h"),
        ({"PAGERDUTY_API_KEY": "p"}, "pagerduty_token", "p"),
        ({"CLAUDE_CODE_OAUTH_TOKEN": "o"}, "anthropic_oauth_token", "o"),
        ({"ANTHROPIC_API_KEY": "k"}, "anthropic_api_key", "k"),
        ({"GRAFANA_API_KEY": "f"}, "grafana_api_key", "f"),
        ({"DOCKER_TOKEN": "d"}, "docker_token", "d"),
        ({"CODEX_ACCOUNT_ID": "acct"}, "codex_account_id", "acct"),
    ],
)
def test_env_variable_names(world: World, env: dict[str, str], name: str, expected: str) -> None:
    world.env.update(env)
    creds, _ = world.load()
    assert value_of(creds, name) == (expected, "env")


def test_empty_env_value_falls_through_to_file(world: World) -> None:
    world.env["NPM_TOKEN"] = ""
    world.secret("npm_token", "npm-file")
    creds, _ = world.load()
    assert value_of(creds, "npm_token") == ("npm-file", "file")


# --- 1Password ------------------------------------------------------------------------


def test_env_op_reference_is_resolved(world: World) -> None:
    world.op_items({"op://Private/Anthropic/credential": "sk-ant-oat01-from-op"})
    world.env["CLAUDE_CODE_OAUTH_TOKEN"] = "op://Private/Anthropic/credential"
    creds, warnings = world.load()
    assert warnings == []
    assert value_of(creds, "anthropic_oauth_token") == ("sk-ant-oat01-from-op", "1password")


def test_env_reference_wins_over_proxy_toml_reference(world: World) -> None:
    world.proxy_toml('[onepassword.credentials]\ngithub_token = "op://a/toml/field"\n')
    world.op_items({"op://a/toml/field": "from-toml", "op://a/env/field": "from-env-ref"})
    world.env["GH_TOKEN"] = "op://a/env/field"
    creds, _ = world.load()
    assert value_of(creds, "github_token") == ("from-env-ref", "1password")


def test_op_missing_warns_per_credential_and_others_load(world: World) -> None:
    world.proxy_toml(
        "[onepassword]\n"
        'op_path = "op-not-installed"\n'
        "[onepassword.credentials]\n"
        'github_token = "op://dev/github/token"\n'
    )
    world.env["DOCKER_TOKEN"] = "op://dev/docker/token"
    world.env["NPM_TOKEN"] = "npm-env"
    world.secret("docker_token", "docker-file")

    creds, warnings = world.load()

    assert value_of(creds, "npm_token") == ("npm-env", "env")
    # a failed reference lets the lower source have its turn
    assert value_of(creds, "docker_token") == ("docker-file", "file")
    assert creds.get("github_token") is None
    assert len(warnings) == 2
    assert any(w.startswith("github_token:") and "not found" in w for w in warnings)
    assert any(w.startswith("docker_token:") and "not found" in w for w in warnings)


def test_one_op_item_failing_warns_and_the_others_load(world: World) -> None:
    world.proxy_toml(
        "[onepassword.credentials]\n"
        'github_token = "op://dev/github/token"\n'
        'sentry_auth_token = "op://dev/sentry/missing"\n'
        'npm_token = "op://dev/npm/token"\n'
    )
    world.op_items({"op://dev/github/token": "gh-op", "op://dev/npm/token": "npm-op"})

    creds, warnings = world.load()

    assert value_of(creds, "github_token") == ("gh-op", "1password")
    assert value_of(creds, "npm_token") == ("npm-op", "1password")
    assert creds.get("sentry_auth_token") is None
    [warning] = warnings
    assert warning.startswith("sentry_auth_token: 1Password could not read op://dev/sentry/missing")
    # the real CLI's stderr line is quoted
    assert "could not read secret" in warning and "[ERROR]" in warning


def test_op_item_that_hangs_times_out_with_a_warning(world: World) -> None:
    world.proxy_toml(
        "[onepassword]\n"
        "timeout_seconds = 3\n"
        "[onepassword.credentials]\n"
        'grafana_api_key = "op://dev/grafana/key"\n'
        'npm_token = "op://dev/npm/token"\n'
    )
    world.op_items(
        {
            "op://dev/grafana/key": {"sleep_seconds": 30, "value": "never"},
            "op://dev/npm/token": "npm-op",
        }
    )
    creds, warnings = world.load()
    assert value_of(creds, "npm_token") == ("npm-op", "1password")
    assert creds.get("grafana_api_key") is None
    [warning] = warnings
    assert warning.startswith("grafana_api_key:") and "timed out" in warning


def test_op_gets_the_environment_it_needs_to_sign_in(world: World) -> None:
    del world.env["OP_SERVICE_ACCOUNT_TOKEN"]
    world.env["NPM_TOKEN"] = "op://dev/npm/token"
    world.op_items({"op://dev/npm/token": "npm-op"})
    creds, warnings = world.load()
    assert creds.get("npm_token") is None
    [warning] = warnings
    assert "not currently signed in" in warning


def test_1password_disabled_skips_the_proxy_toml_map(world: World) -> None:
    world.proxy_toml(
        "[onepassword]\nenabled = false\n"
        '[onepassword.credentials]\ngithub_token = "op://dev/github/token"\n'
    )
    world.op_items({"op://dev/github/token": "gh-op"})
    creds, warnings = world.load()
    assert creds.get("github_token") is None
    assert warnings == []
    assert world.op_calls() == []


def test_unknown_name_in_1password_map_is_a_warning(world: World) -> None:
    world.proxy_toml('[onepassword.credentials]\ngithb_token = "op://dev/github/token"\n')
    _, warnings = world.load()
    [warning] = warnings
    assert warning.startswith("githb_token: unknown credential")


@pytest.mark.parametrize(
    "text",
    [
        "[onepassword\n",
        "onepassword = 3\n",
        '[onepassword]\nenabled = "yes"\n',
        "[onepassword]\ntimeout_seconds = 0\n",
        "[onepassword.credentials]\ngithub_token = 1\n",
        "codex_auth_json_path = 5\n",
        'secrets_dir = ""\n',
    ],
)
def test_bad_proxy_toml_is_a_config_error_naming_the_file(world: World, text: str) -> None:
    world.proxy_toml(text)
    with pytest.raises(ConfigError) as info:
        world.load()
    assert str(world.settings.proxy_config_path) in info.value.message


# --- secret files ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_group_or_world_readable_file_is_refused(world: World, mode: int) -> None:
    path = world.secret("github_token", "gh-file", mode=mode)
    world.secret("npm_token", "npm-file")
    creds, warnings = world.load()
    assert creds.get("github_token") is None
    assert value_of(creds, "npm_token") == ("npm-file", "file")
    [warning] = warnings
    assert str(path) in warning
    assert f"chmod 600 {path}" in warning
    assert "gh-file" not in warning


def test_owner_only_files_load_with_trailing_whitespace_stripped(world: World) -> None:
    world.secret("anthropic_api_key", "  sk-ant-api03-key \t\n\n", mode=0o400)
    creds, warnings = world.load()
    assert warnings == []
    assert value_of(creds, "anthropic_api_key") == ("  sk-ant-api03-key", "file")


def test_empty_file_and_directory_are_skipped_with_warnings(world: World) -> None:
    world.secret("npm_token", "\n")
    (world.settings.secrets_dir / "docker_token").mkdir()
    creds, warnings = world.load()
    assert creds.names() == []
    assert sorted(w.split(":")[0] for w in warnings) == ["docker_token", "npm_token"]


def test_proxy_toml_secrets_dir_overrides_the_default(world: World, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir(mode=0o700)
    (other / "npm_token").write_text("npm-elsewhere")
    (other / "npm_token").chmod(0o600)
    world.secret("npm_token", "npm-default")
    world.proxy_toml(f'secrets_dir = "{other}"\n')
    creds, _ = world.load()
    assert value_of(creds, "npm_token") == ("npm-elsewhere", "file")


def test_env_value_means_the_file_is_not_read(world: World) -> None:
    world.secret("github_token", "gh-file", mode=0o644)  # would be refused if read
    world.env["GITHUB_TOKEN"] = "gh-env"
    creds, warnings = world.load()
    assert warnings == []
    assert value_of(creds, "github_token") == ("gh-env", "env")


# --- never a value in sight -----------------------------------------------------------


def test_values_never_reach_repr_summary_warnings_or_logs(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    canaries = {
        "github_token": "ghp_CANARYenv0000000000000000000000001",
        "npm_token": "npm_CANARYop00000000000000000000000002",
        "sentry_auth_token": "sntrys_CANARYfile000000000000000000003",
    }
    world.env["GITHUB_TOKEN"] = canaries["github_token"]
    world.env["NPM_TOKEN"] = "op://dev/npm/token"
    world.op_items({"op://dev/npm/token": canaries["npm_token"]})
    world.secret("sentry_auth_token", canaries["sentry_auth_token"])
    world.secret("docker_token", "docker_CANARYrefused0000000000004", mode=0o644)
    world.proxy_toml('[onepassword.credentials]\ngrafana_api_key = "op://dev/missing/x"\n')
    caplog.set_level(logging.DEBUG)

    creds, warnings = world.load()

    assert {n: c.value for n, c in ((c.name, c) for c in creds)} == canaries
    shown = [
        repr(creds),
        str(creds),
        json.dumps(creds.summary()),
        *warnings,
        caplog.text,
        *(repr(c) for c in creds),
        *(str(c) for c in creds),
        *(f"{c}" for c in creds),
    ]
    for text in shown:
        assert "CANARY" not in text
    assert "github_token (env)" in caplog.text  # the log does say what loaded


def test_summary_lists_name_source_and_masked_value(world: World) -> None:
    world.env["GITHUB_TOKEN"] = "ghp_abcdefghijklmnopqrstuvwxyz0123"
    world.env["NPM_TOKEN"] = "short"
    creds, _ = world.load()
    assert creds.summary() == [
        {"name": "github_token", "source": "env", "masked": "ghp_…23"},
        {"name": "npm_token", "source": "env", "masked": "…"},
    ]
    assert creds.names() == ["github_token", "npm_token"]
    assert set(creds.names()) <= set(CREDENTIAL_NAMES)


def test_masked_shows_at_most_six_characters() -> None:
    for length in range(0, 64):
        value = "x" * length
        masked = Credential(name="n", value=value, source="env").masked()
        assert masked.count("x") <= min(6, length * 3 // 10)
