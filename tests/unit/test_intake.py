"""Turning a create request into a Session: every field checked, errors name their field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.errors import InvalidInput
from appliance.intake import PROMPT_MAX, new_session, parse_create, suggest_name
from appliance.sessions import (
    AccessMode,
    Agent,
    BackendKind,
    Desired,
    Phase,
    validate_name,
)
from appliance.tokens import Purpose, derive_token, hash_token

REPO = "/src/app"


def test_defaults() -> None:
    req = parse_create({"repo_path": REPO})
    assert req.repo_path == REPO
    assert req.name is None
    assert req.prompt == ""
    assert req.agent is Agent.CLAUDE
    assert req.model is None
    assert req.image is None
    assert req.cpu is None
    assert req.memory is None
    assert req.access_mode is AccessMode.READ_WRITE
    assert req.base is None
    assert req.skip_permissions is False
    assert req.backend is BackendKind.DOCKER


def test_every_field_given() -> None:
    req = parse_create({
        "repo_path": REPO, "name": "flaky", "prompt": "fix it", "agent": "codex",
        "model": "o3", "image": "clauderon-agent:dev", "cpu": "500m", "memory": "4Gi",
        "access_mode": "read-only", "base": "main", "skip_permissions": True,
        "backend": "kubernetes",
    }, backends=("docker", "kubernetes"))
    assert req.name == "flaky"
    assert req.prompt == "fix it"
    assert req.agent is Agent.CODEX
    assert req.model == "o3"
    assert req.image == "clauderon-agent:dev"
    assert req.cpu == 0.5
    assert req.memory == "4Gi"
    assert req.access_mode is AccessMode.READ_ONLY
    assert req.base == "main"
    assert req.skip_permissions is True
    assert req.backend is BackendKind.KUBERNETES


def test_a_backend_that_is_not_configured_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_create({"repo_path": REPO, "backend": "kubernetes"})
    assert refused.value.field == "backend"
    assert "not configured" in refused.value.message and "docker" in refused.value.message


def test_unknown_fields_are_refused_by_name() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_create({"repo_path": REPO, "promt": "typo"})
    assert refused.value.field == "promt" and "unknown field" in refused.value.message


@pytest.mark.parametrize(("body", "field"), [
    ({}, "repo_path"),
    ({"repo_path": ""}, "repo_path"),
    ({"repo_path": 3}, "repo_path"),
    ({"repo_path": REPO, "name": "Bad_Name"}, "name"),
    ({"repo_path": REPO, "name": "x" * 41}, "name"),
    ({"repo_path": REPO, "name": 5}, "name"),
    ({"repo_path": REPO, "prompt": "p" * (PROMPT_MAX + 1)}, "prompt"),
    ({"repo_path": REPO, "prompt": ["a"]}, "prompt"),
    ({"repo_path": REPO, "agent": "gpt"}, "agent"),
    ({"repo_path": REPO, "model": 7}, "model"),
    ({"repo_path": REPO, "image": "bad image"}, "image"),
    ({"repo_path": REPO, "cpu": "abc"}, "cpu"),
    ({"repo_path": REPO, "cpu": 0}, "cpu"),
    ({"repo_path": REPO, "memory": "1k"}, "memory"),
    ({"repo_path": REPO, "memory": 512}, "memory"),
    ({"repo_path": REPO, "access_mode": "rw"}, "access_mode"),
    ({"repo_path": REPO, "base": 1}, "base"),
    ({"repo_path": REPO, "skip_permissions": "yes"}, "skip_permissions"),
    ({"repo_path": REPO, "backend": "podman"}, "backend"),
])
def test_field_errors_name_their_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_create(body)
    assert info.value.field == field
    assert info.value.http_status == 400


def test_enum_error_lists_the_choices() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_create({"repo_path": REPO, "agent": "gpt"})
    assert "claude" in info.value.message
    assert "codex" in info.value.message


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidInput):
        parse_create(["repo_path", REPO])  # type: ignore[arg-type]


def test_prompt_at_the_limit_is_accepted() -> None:
    assert len(parse_create({"repo_path": REPO, "prompt": "p" * PROMPT_MAX}).prompt) == PROMPT_MAX


@pytest.mark.parametrize("image", [
    "debian:bookworm-slim", "clauderon-agent", "ghcr.io/org/agent:1.2.3",
    "localhost:5000/agent:dev", "agent@sha256:" + "a" * 64, "a",
])
def test_good_images(image: str) -> None:
    assert parse_create({"repo_path": REPO, "image": image}).image == image


@pytest.mark.parametrize("image", [
    "img;rm -rf /", "img$(id)", "img`id`", "img|cat", "img&&x", "img>out", "img x",
    "-img", "img\n", "img'", 'img"', "img\\x", "img*", "x" * 300, "--privileged",
])
def test_bad_images(image: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_create({"repo_path": REPO, "image": image})
    assert info.value.field == "image"


@pytest.mark.parametrize("prompt", [
    "", "Fix the flaky test in tests/test_api.py", "   ", "!!!",
    "\u00dcn\u00efc\u00f6d\u00e9 \u0422\u0415\u0421\u0422",
    "a" * 500, "-" * 50, "word " * 40, "a-" * 40,
])
def test_suggest_name_examples(prompt: str) -> None:
    validate_name(suggest_name(prompt))


def test_suggest_name_reads_the_prompt() -> None:
    assert suggest_name("Fix the flaky test, please").startswith("fix-the-flaky-test-")
    assert suggest_name("").startswith("session-")


@settings(max_examples=300)
@given(st.text())
def test_suggest_name_is_always_valid(prompt: str) -> None:
    validate_name(suggest_name(prompt))


def test_new_session_stores_only_token_digests(tmp_path: Path) -> None:
    key = b"i" * 32
    req = parse_create({"repo_path": REPO, "prompt": "go"})
    s = new_session(
        req, name="flaky", repo_root=Path(REPO), subdirectory="pkg", base_ref="main",
        worktrees_dir=tmp_path / "worktrees", default_image="debian:bookworm-slim",
        default_cpu=1.0, default_memory="2g", instance_key=key,
    )
    proxy = derive_token(key, s.id, Purpose.PROXY)
    hook = derive_token(key, s.id, Purpose.HOOK)
    assert s.proxy_token_hash == hash_token(proxy)
    assert s.hook_token_hash == hash_token(hook)
    everything = repr(s)
    assert proxy not in everything
    assert hook not in everything
    assert s.worktree_path == str(tmp_path / "worktrees" / "flaky")
    assert s.branch == "clauderon/flaky"
    assert s.subdirectory == "pkg"
    assert s.image == "debian:bookworm-slim"
    assert s.cpu == 1.0
    assert s.memory == "2g"
    assert s.initial_prompt == "go"
    assert s.phase is Phase.CREATING
    assert s.desired is Desired.RUNNING
    assert s.created_at == s.updated_at


def test_new_session_request_beats_defaults(tmp_path: Path) -> None:
    req = parse_create({"repo_path": REPO, "image": "mine:1", "cpu": 3, "memory": "8g"})
    s = new_session(
        req, name="x", repo_root=Path(REPO), subdirectory="", base_ref="HEAD",
        worktrees_dir=tmp_path, default_image="debian:bookworm-slim", default_cpu=1.0,
        default_memory="2g", instance_key=b"i" * 32,
    )
    assert (s.image, s.cpu, s.memory) == ("mine:1", 3.0, "8g")


def test_new_sessions_get_distinct_ids_and_tokens(tmp_path: Path) -> None:
    req = parse_create({"repo_path": REPO})
    made = [new_session(
        req, name=f"s{i}", repo_root=Path(REPO), subdirectory="", base_ref="HEAD",
        worktrees_dir=tmp_path, default_image="i", default_cpu=None, default_memory=None,
        instance_key=b"i" * 32) for i in range(3)]
    assert len({s.id for s in made}) == 3
    assert len({s.proxy_token_hash for s in made}) == 3
    assert all(s.proxy_token_hash != s.hook_token_hash for s in made)
