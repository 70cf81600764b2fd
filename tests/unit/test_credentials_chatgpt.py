"""Codex credentials: the host's auth.json, the account id in the id_token, atomic write-back.

Real files in a temporary HOME; the JWTs are built here the way OpenAI's are shaped
(header.payload.signature, base64url without padding, the account id under the
``https://api.openai.com/auth`` claim).
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from appliance.config import Settings
from appliance.credentials import CredentialSet, load_credentials, write_codex_auth
from appliance.credentials.chatgpt import account_id_from_id_token
from appliance.errors import ConfigError


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_jwt(claims: dict[str, object]) -> str:
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(b'signature')}"


ID_TOKEN = make_jwt(
    {
        "email": "dev@example.com",
        "https://api.openai.com/auth": {
            "chatgpt_account_id": "acct-1234-from-claims",
            "chatgpt_plan_type": "pro",
        },
    }
)


def auth_doc(**tokens: str) -> dict[str, object]:
    return {
        "OPENAI_API_KEY": None,
        "tokens": {"id_token": ID_TOKEN, **tokens},
        "last_refresh": "2025-01-01T00:00:00Z",
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home" / ".codex").mkdir(parents=True)
    return tmp_path / "home"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(home=tmp_path / "clauderon")
    s.ensure_layout()
    return s


def load(settings: Settings, env: dict[str, str]) -> tuple[CredentialSet, list[str]]:
    return load_credentials(settings, {"PATH": os.environ.get("PATH", ""), **env})


def sources(creds: CredentialSet) -> dict[str, tuple[str, str]]:
    return {c.name: (c.value, c.source) for c in creds}


def test_auth_json_supplies_tokens_and_account_id_from_claims(
    settings: Settings, home: Path
) -> None:
    (home / ".codex" / "auth.json").write_text(
        json.dumps(auth_doc(access_token="at-1", refresh_token="rt-1"))
    )
    creds, warnings = load(settings, {"HOME": str(home)})
    assert warnings == []
    assert sources(creds) == {
        "codex_access_token": ("at-1", "codex-auth.json"),
        "codex_refresh_token": ("rt-1", "codex-auth.json"),
        "codex_id_token": (ID_TOKEN, "codex-auth.json"),
        "codex_account_id": ("acct-1234-from-claims", "codex-auth.json"),
    }
    assert creds.codex_auth_path == home / ".codex" / "auth.json"


def test_account_id_field_wins_over_claims(settings: Settings, home: Path) -> None:
    (home / ".codex" / "auth.json").write_text(json.dumps(auth_doc(account_id="acct-field")))
    creds, _ = load(settings, {"HOME": str(home)})
    assert sources(creds)["codex_account_id"] == ("acct-field", "codex-auth.json")


def test_api_key_field_is_a_fallback_for_openai_api_key(settings: Settings, home: Path) -> None:
    path = home / ".codex" / "auth.json"
    path.write_text(json.dumps({"OPENAI_API_KEY": "sk-from-auth-json"}))
    creds, _ = load(settings, {"HOME": str(home)})
    assert sources(creds) == {"openai_api_key": ("sk-from-auth-json", "codex-auth.json")}
    creds, _ = load(settings, {"HOME": str(home), "CODEX_API_KEY": "sk-env"})
    assert sources(creds) == {"openai_api_key": ("sk-env", "env")}


def test_env_tokens_win_and_account_id_comes_from_env_id_token(
    settings: Settings, home: Path
) -> None:
    (home / ".codex" / "auth.json").write_text(
        json.dumps(auth_doc(access_token="at-file", refresh_token="rt-file"))
    )
    env_id = make_jwt({"https://api.openai.com/auth": {"chatgpt_account_id": "acct-env"}})
    creds, _ = load(
        settings,
        {"HOME": str(home), "CODEX_ACCESS_TOKEN": "at-env", "CODEX_ID_TOKEN": env_id},
    )
    got = sources(creds)
    assert got["codex_access_token"] == ("at-env", "env")
    assert got["codex_refresh_token"] == ("rt-file", "codex-auth.json")
    assert got["codex_id_token"] == (env_id, "env")
    assert got["codex_account_id"] == ("acct-env", "env")


def test_path_override_env_beats_proxy_toml(settings: Settings, tmp_path: Path) -> None:
    by_toml = tmp_path / "toml-auth.json"
    by_env = tmp_path / "env-auth.json"
    by_toml.write_text(json.dumps(auth_doc(access_token="at-toml")))
    by_env.write_text(json.dumps(auth_doc(access_token="at-env-path")))
    settings.proxy_config_path.write_text(f'codex_auth_json_path = "{by_toml}"\n')
    creds, _ = load(settings, {"HOME": str(tmp_path)})
    assert sources(creds)["codex_access_token"] == ("at-toml", "codex-auth.json")
    creds, _ = load(settings, {"HOME": str(tmp_path), "CODEX_AUTH_JSON_PATH": str(by_env)})
    assert sources(creds)["codex_access_token"] == ("at-env-path", "codex-auth.json")
    assert creds.codex_auth_path == by_env


@pytest.mark.parametrize("text", ["{not json", "[]", '{"tokens": "x"}'])
def test_broken_auth_json_is_a_warning(settings: Settings, home: Path, text: str) -> None:
    path = home / ".codex" / "auth.json"
    path.write_text(text)
    creds, warnings = load(settings, {"HOME": str(home), "NPM_TOKEN": "npm"})
    assert creds.names() == ["npm_token"]
    [warning] = warnings
    assert str(path) in warning


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "a.!!!.c",
        f"a.{b64url(b'[1, 2]')}.c",
        make_jwt({"sub": "no account here"}),
        make_jwt({"https://api.openai.com/auth": "not an object"}),
    ],
)
def test_id_token_without_account_id(token: str) -> None:
    assert account_id_from_id_token(token) is None


def test_write_back_is_atomic_keeps_fields_and_mode(home: Path) -> None:
    path = home / ".codex" / "auth.json"
    doc = auth_doc(access_token="at-old", refresh_token="rt-old", account_id="acct")
    doc["OPENAI_API_KEY"] = "sk-keep-me"
    doc["extra_field"] = {"kept": True}
    path.write_text(json.dumps(doc))
    path.chmod(0o644)
    inode_before = path.stat().st_ino

    write_codex_auth(path, {"access_token": "at-new", "refresh_token": "rt-new", "id_token": None})

    after = json.loads(path.read_text())
    assert after["tokens"] == {
        "id_token": ID_TOKEN,
        "access_token": "at-new",
        "refresh_token": "rt-new",
        "account_id": "acct",
    }
    assert after["OPENAI_API_KEY"] == "sk-keep-me"
    assert after["extra_field"] == {"kept": True}
    assert after["last_refresh"] != "2025-01-01T00:00:00Z"
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_ino != inode_before  # replaced by rename, not rewritten in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["auth.json"]  # no temp left


def test_write_back_creates_the_file_when_absent(tmp_path: Path) -> None:
    path = tmp_path / "new" / "auth.json"
    write_codex_auth(path, {"access_token": "at", "refresh_token": "rt"})
    doc = json.loads(path.read_text())
    assert doc["tokens"] == {"access_token": "at", "refresh_token": "rt"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_back_then_load_round_trips(settings: Settings, home: Path) -> None:
    path = home / ".codex" / "auth.json"
    path.write_text(json.dumps(auth_doc(access_token="at-1", refresh_token="rt-1")))
    write_codex_auth(path, {"access_token": "at-2", "refresh_token": "rt-2"})
    creds, _ = load(settings, {"HOME": str(home)})
    assert sources(creds)["codex_access_token"] == ("at-2", "codex-auth.json")
    assert sources(creds)["codex_refresh_token"] == ("rt-2", "codex-auth.json")


def test_write_back_refuses_to_clobber_a_file_it_cannot_read(home: Path) -> None:
    path = home / ".codex" / "auth.json"
    path.write_text("{hand edited")
    with pytest.raises(ConfigError):
        write_codex_auth(path, {"access_token": "at"})
    assert path.read_text() == "{hand edited"
    with pytest.raises(ValueError, match="unknown"):
        write_codex_auth(path, {"codex_access_token": "at"})


def test_write_back_to_an_unreadable_path_is_a_config_error(home: Path) -> None:
    path = home / ".codex" / "auth.json"
    path.mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        write_codex_auth(path, {"access_token": "at"})
    assert path.is_dir()
    assert sorted(p.name for p in path.parent.iterdir()) == ["auth.json"]
