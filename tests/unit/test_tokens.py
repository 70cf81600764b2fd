"""Per-session tokens: the instance key, HMAC derivation, digests and comparison."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from appliance.tokens import (
    Purpose,
    derive_token,
    hash_token,
    load_or_create_instance_key,
    token_matches,
)


def test_instance_key_is_created_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "instance.key"
    key = load_or_create_instance_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert load_or_create_instance_key(path) == key
    assert path.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instance.key"]  # no temp file left


def test_instance_keys_differ_between_appliances(tmp_path: Path) -> None:
    a = load_or_create_instance_key(tmp_path / "a.key")
    b = load_or_create_instance_key(tmp_path / "b.key")
    assert a != b


def test_an_existing_key_is_used(tmp_path: Path) -> None:
    path = tmp_path / "instance.key"
    path.write_text("ab" * 32 + "\n")
    assert load_or_create_instance_key(path) == bytes.fromhex("ab" * 32)


def test_derive_token_is_stable_and_distinct() -> None:
    key = b"k" * 32
    t = derive_token(key, "s1", Purpose.PROXY)
    assert t == derive_token(key, "s1", Purpose.PROXY)
    others = {
        derive_token(key, "s1", Purpose.HOOK),
        derive_token(key, "s2", Purpose.PROXY),
        derive_token(b"j" * 32, "s1", Purpose.PROXY),
    }
    assert t not in others
    assert len(others) == 3
    assert len(t) == 64
    int(t, 16)


def test_hash_token_is_sha256_and_not_the_token() -> None:
    t = derive_token(b"k" * 32, "s1", Purpose.HOOK)
    assert hash_token(t) == hashlib.sha256(t.encode()).hexdigest()
    assert hash_token(t) != t


def test_token_matches() -> None:
    t = derive_token(b"k" * 32, "s1", Purpose.PROXY)
    stored = hash_token(t)
    assert token_matches(t, stored)
    assert not token_matches(t[:-1], stored)
    assert not token_matches("", stored)
    assert not token_matches(stored, stored)  # the digest is not a credential
    assert not token_matches(derive_token(b"k" * 32, "s1", Purpose.HOOK), stored)


def test_two_first_starts_racing_agree_on_one_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API and the reconciler may both create the key on first boot, at the same time.

    The second creator is run at the worst moment: after the first has written its
    temporary file, before it links it into place. Both must end with the same full key.
    """
    path = tmp_path / "instance.key"
    real_link = os.link
    other: list[bytes] = []

    def link_after_the_other_creator(src: str | Path, dst: str | Path) -> None:
        if not other:
            monkeypatch.setattr(os, "link", real_link)
            other.append(load_or_create_instance_key(path))
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_the_other_creator)
    mine = load_or_create_instance_key(path)
    assert other, "the second creator did not run"
    assert mine == other[0]
    assert len(mine) == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instance.key"]
