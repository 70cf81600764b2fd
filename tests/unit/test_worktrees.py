"""Git worktrees with real git in a temporary folder: inspection, add, remove, refs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from appliance.errors import InvalidInput
from appliance.worktrees import (
    add_worktree,
    branch_exists,
    changed_files,
    inspect_repo,
    is_worktree,
    remove_worktree,
    resolve_ref,
)


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(autouse=True)
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A git that ignores the host's configuration and never walks above tmp_path."""
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "test@example.org")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    (r / "pkg" / "web").mkdir(parents=True)
    sh(r, "init", "-q", "-b", "main")
    (r / "README").write_text("one\n")
    (r / "pkg" / "web" / "app.js").write_text("1\n")
    sh(r, "add", "-A")
    sh(r, "commit", "-q", "-m", "one")
    (r / "README").write_text("two\n")
    sh(r, "commit", "-q", "-am", "two")
    return r


def head(path: Path, ref: str = "HEAD") -> str:
    return sh(path, "rev-parse", ref)


# --- inspect_repo -------------------------------------------------------------------
def _invalid_repo(path: str | Path) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        inspect_repo(path)
    assert info.value.field == "repo_path"
    return info.value


def test_missing_path(tmp_path: Path) -> None:
    assert "does not exist" in _invalid_repo(tmp_path / "nope").message


def test_not_a_folder(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert "not a folder" in _invalid_repo(f).message


def test_not_a_repository(tmp_path: Path) -> None:
    d = tmp_path / "plain"
    d.mkdir()
    assert "git init" in _invalid_repo(d).message


def test_relative_path() -> None:
    assert "absolute" in _invalid_repo("src/app").message


def test_no_commit_yet(tmp_path: Path) -> None:
    d = tmp_path / "empty"
    d.mkdir()
    sh(d, "init", "-q")
    assert "no commit" in _invalid_repo(d).message


def test_bare_repository(tmp_path: Path) -> None:
    d = tmp_path / "bare.git"
    d.mkdir()
    sh(d, "init", "-q", "--bare")
    assert "bare" in _invalid_repo(d).message


def test_repo_root(repo: Path) -> None:
    info = inspect_repo(repo)
    assert info.root == repo.resolve()
    assert info.subdirectory == ""
    assert info.common_dir == (repo / ".git").resolve()
    assert info.owner_uid == repo.stat().st_uid
    assert info.owner_gid == repo.stat().st_gid


def test_subdirectory_detection(repo: Path) -> None:
    info = inspect_repo(repo / "pkg" / "web")
    assert info.root == repo.resolve()
    assert info.subdirectory == "pkg/web"
    assert info.common_dir == (repo / ".git").resolve()


def test_inside_a_worktree_the_common_dir_is_the_repos(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "wt" / "a"
    add_worktree(repo, wt, "clauderon/a", "main")
    info = inspect_repo(wt / "pkg")
    assert info.root == wt.resolve()
    assert info.subdirectory == "pkg"
    assert info.common_dir == (repo / ".git").resolve()


# --- add_worktree -------------------------------------------------------------------
def test_add_creates_the_branch_from_base(repo: Path, tmp_path: Path) -> None:
    first = head(repo, "main~1")
    wt = tmp_path / "worktrees" / "x"
    add_worktree(repo, wt, "clauderon/x", first)
    assert is_worktree(wt)
    assert branch_exists(repo, "clauderon/x")
    assert head(wt) == first
    assert sh(wt, "symbolic-ref", "--short", "HEAD") == "clauderon/x"
    assert (wt / "README").read_text() == "one\n"
    assert head(repo) == head(repo, "main")  # the main checkout is untouched


def test_add_is_idempotent(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "worktrees" / "x"
    add_worktree(repo, wt, "clauderon/x", "main")
    (wt / "work.txt").write_text("keep me")
    add_worktree(repo, wt, "clauderon/x", "main")
    assert (wt / "work.txt").read_text() == "keep me"
    listed = sh(repo, "worktree", "list", "--porcelain")
    assert listed.count(f"worktree {wt.resolve()}") == 1


def test_add_reuses_an_existing_branch(repo: Path, tmp_path: Path) -> None:
    sh(repo, "branch", "clauderon/old", "main~1")
    kept = head(repo, "clauderon/old")
    wt = tmp_path / "worktrees" / "old"
    add_worktree(repo, wt, "clauderon/old", "main")
    assert head(wt) == kept
    assert kept != head(repo, "main")


def test_add_replaces_a_leftover_folder(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "worktrees" / "x"
    wt.mkdir(parents=True)
    (wt / "junk").write_text("half-made")
    add_worktree(repo, wt, "clauderon/x", "main")
    assert is_worktree(wt)
    assert not (wt / "junk").exists()


def test_add_recovers_when_the_folder_vanished(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "worktrees" / "x"
    add_worktree(repo, wt, "clauderon/x", "main")
    subprocess.run(["rm", "-rf", str(wt)], check=True)
    add_worktree(repo, wt, "clauderon/x", "main")
    assert is_worktree(wt)
    assert head(wt) == head(repo, "clauderon/x")


# --- remove_worktree ----------------------------------------------------------------
def test_remove_keeps_the_branch_and_the_work(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "worktrees" / "x"
    add_worktree(repo, wt, "clauderon/x", "main")
    (wt / "new.txt").write_text("work")
    sh(wt, "add", "new.txt")
    sh(wt, "commit", "-q", "-m", "agent work")
    committed = head(wt)
    (wt / "dirty.txt").write_text("uncommitted")
    remove_worktree(repo, wt)
    assert not wt.exists()
    assert branch_exists(repo, "clauderon/x")
    assert head(repo, "clauderon/x") == committed
    assert str(wt) not in sh(repo, "worktree", "list")


def test_remove_is_idempotent(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "worktrees" / "x"
    add_worktree(repo, wt, "clauderon/x", "main")
    remove_worktree(repo, wt)
    remove_worktree(repo, wt)
    assert not wt.exists()
    remove_worktree(tmp_path / "no-repo", tmp_path / "no-worktree")


# --- refs and status ----------------------------------------------------------------
def test_resolve_ref(repo: Path) -> None:
    assert resolve_ref(repo, "main") == head(repo)
    assert resolve_ref(repo, "HEAD~1") == head(repo, "HEAD~1")
    sh(repo, "tag", "v1", "HEAD~1")
    assert resolve_ref(repo, "v1") == head(repo, "HEAD~1")


@pytest.mark.parametrize("ref", ["nope", "HEAD~9", "-x", "--output=/tmp/x", "main..", ""])
def test_resolve_ref_errors(repo: Path, ref: str) -> None:
    with pytest.raises(InvalidInput) as info:
        resolve_ref(repo, ref)
    assert info.value.field == "base"


def test_changed_files(repo: Path) -> None:
    assert changed_files(repo) == []
    (repo / "README").write_text("three\n")
    (repo / "new.txt").write_text("x")
    assert sorted(changed_files(repo)) == ["README", "new.txt"]


def test_worktree_belongs_to_the_repos_owner(repo: Path, tmp_path: Path) -> None:
    """As root, the new worktree (and git's record of it) is handed to the repo's owner."""
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "1000:1000", str(repo)], check=True)
    owner = (repo.stat().st_uid, repo.stat().st_gid)
    info = inspect_repo(repo)
    assert (info.owner_uid, info.owner_gid) == owner
    wt = tmp_path / "worktrees" / "x"
    add_worktree(repo, wt, "clauderon/x", "main")
    admin = repo / ".git" / "worktrees" / "x"
    for path in (wt, wt / "README", wt / ".git", admin, admin / "HEAD"):
        assert (path.stat().st_uid, path.stat().st_gid) == owner, path
