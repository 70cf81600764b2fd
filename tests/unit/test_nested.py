"""Which nested repositories host git would wait on (:mod:`appliance.nested`), on real
FIFOs and links in a temporary work tree."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance import changes, nested
from appliance.errors import InvalidInput


def fifo_head(w: Path) -> None:
    (w / "x/.git").mkdir(parents=True)
    os.mkfifo(w / "x/.git/HEAD")


def fifo_commondir(w: Path) -> None:
    (w / "x/.git").mkdir(parents=True)
    (w / "x/.git/HEAD").write_text("ref: refs/heads/main\n")
    os.mkfifo(w / "x/.git/commondir")


def gitfile_to_fifo_head(w: Path) -> None:
    (w / "x/real").mkdir(parents=True)
    os.mkfifo(w / "x/real/HEAD")
    (w / "x/.git").write_text("gitdir: real\n")


def gitfile_outside(w: Path) -> None:
    (w / "x").mkdir()
    (w / "x/.git").write_text(f"gitdir: {w.parent}\n")


def commondir_outside(w: Path) -> None:
    (w / "x/.git").mkdir(parents=True)
    (w / "x/.git/HEAD").write_text("ref: refs/heads/main\n")
    (w / "x/.git/commondir").write_text(f"{w.parent}\n")


def dotgit_symlink(w: Path) -> None:
    (w / "x").mkdir()
    os.symlink("/", w / "x/.git")


def dotgit_fifo(w: Path) -> None:
    (w / "x").mkdir()
    os.mkfifo(w / "x/.git")


def gitfile_past_a_line_break(w: Path) -> None:
    (w / "x/real\nx").mkdir(parents=True)
    os.mkfifo(w / "x/real\nx/HEAD")
    (w / "x/.git").write_text("gitdir: real\nx\n")  # git reads on past the line break


def commondir_past_a_line_break(w: Path) -> None:
    (w / "x/.git").mkdir(parents=True)
    (w / "x/.git/HEAD").write_text("ref: refs/heads/main\n")
    (w / "x/.git/commondir").write_text(f"{w.parent}\n\n")  # the path ends at the breaks


def deep(w: Path) -> None:
    (w / "a/b/x/.git").mkdir(parents=True)
    os.symlink("refs/heads/main", w / "a/b/x/.git/HEAD")


@pytest.mark.parametrize(("plant", "named"), [
    (fifo_head, {"x": "its git directory's HEAD is not a file"}),
    (fifo_commondir, {"x": "its git directory's commondir is not a file"}),
    (gitfile_to_fifo_head, {"x": "its git directory's HEAD is not a file"}),
    (gitfile_outside, {"x": "its .git names a folder outside the work tree"}),
    (gitfile_past_a_line_break, {"x": "its git directory's HEAD is not a file"}),
    (commondir_past_a_line_break,
     {"x": "its git directory's commondir names a folder outside the work tree"}),
    (commondir_outside,
     {"x": "its git directory's commondir names a folder outside the work tree"}),
    (dotgit_symlink, {"x": "its .git is neither a folder nor a file"}),
    (dotgit_fifo, {"x": "its .git is neither a folder nor a file"}),
    (deep, {"a/b/x": "its git directory's HEAD is not a file"}),
])
def test_a_nested_repository_git_would_wait_on_is_named(
        tmp_path: Path, plant: Callable[[Path], None], named: dict[str, str]) -> None:
    w = tmp_path / "w"
    w.mkdir()
    plant(w)
    assert nested.traps(w) == named


@pytest.mark.parametrize(("data", "prefix", "path"), [
    (b"gitdir: real\n", b"gitdir: ", "real"),
    (b"gitdir: real\nx\n", b"gitdir: ", "real\nx"),
    (b"gitdir: real\r\n\n\r", b"gitdir: ", "real"),
    (b"gitdir: real\0x\n", b"gitdir: ", "real"),
    (b"gitdir: \n", b"gitdir: ", None),
    (b"gitdir:real\n", b"gitdir: ", None),
    (b"hello\ngitdir: real\n", b"gitdir: ", None),
    (b"../common\n", b"", "../common"),
    (b"../common\nx", b"", "../common\nx"),
    (b"", b"", None),
])
def test_a_pointer_is_read_as_git_reads_it(data: bytes, prefix: bytes,
                                           path: str | None) -> None:
    assert nested.pointed(data, prefix) == path


def plain(w: Path) -> None:
    (w / "x/.git/objects").mkdir(parents=True)
    (w / "x/.git/HEAD").write_text("ref: refs/heads/main\n")


def worktree_of_the_container(w: Path) -> None:
    (w / "x").mkdir()
    (w / "x/.git").write_text("gitdir: /nonexistent/workspace/.git/worktrees/x\n")


def not_a_gitfile(w: Path) -> None:
    (w / "x").mkdir()
    (w / "x/.git").write_text("hello\n")


def top_level_fifo(w: Path) -> None:
    (w / ".git").mkdir()
    os.mkfifo(w / ".git/HEAD")  # the diff's git directory is never this one


def inside_a_git_directory(w: Path) -> None:
    (w / "x/.git/modules/y").mkdir(parents=True)
    (w / "x/.git/HEAD").write_text("ref: refs/heads/main\n")
    (w / "x/.git/modules/y/.git").mkdir()
    os.mkfifo(w / "x/.git/modules/y/.git/HEAD")  # git never walks a .git


@pytest.mark.parametrize("plant", [plain, worktree_of_the_container, not_a_gitfile,
                                   top_level_fifo, inside_a_git_directory])
def test_what_git_reads_without_waiting_is_left_alone(
        tmp_path: Path, plant: Callable[[Path], None]) -> None:
    w = tmp_path / "w"
    w.mkdir()
    plant(w)
    assert nested.traps(w) == {}


@pytest.mark.parametrize(("skipped", "spec"), [
    ({}, ()),
    ({"x": "why", "a b/:c": "why"}, ("--", ".", ":(exclude,literal)x",
                                     ":(exclude,literal)a b/:c")),
])
def test_the_folders_named_are_left_out_of_gits_listing(
        skipped: dict[str, str], spec: tuple[str, ...]) -> None:
    assert changes.pathspec(skipped) == spec


@pytest.mark.parametrize(("skipped", "spec"), [
    ([], b".\0"),
    (["x", "a b/:c"], b".\0:(exclude,literal)x\0:(exclude,literal)a b/:c\0"),
])
def test_the_folders_left_out_of_an_add_are_read_from_its_input(
        skipped: list[str], spec: bytes) -> None:
    assert changes.pathspec_file(skipped) == spec


@pytest.mark.parametrize(("untracked", "folders"), [
    (set(), []),
    ({"new.txt", "sub/new.txt"}, []),
    ({"new.txt", "repo/", "deep/er/repo/"}, ["deep/er/repo", "repo"]),
])
def test_a_folder_git_lists_whole_is_a_repository_nested_there(
        untracked: set[str], folders: list[str]) -> None:
    assert changes.repositories(untracked) == folders


def test_more_folders_to_leave_out_than_a_command_line_holds_is_a_clear_refusal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each folder left out is an argument of git's listing: past the bound (a few here;
    thirty thousand long ones overflowed the command line), a refusal that says why, not
    an error of the system's."""
    monkeypatch.setattr(nested, "TRAP_LIMIT", 3)
    w = tmp_path / "w"
    for n in range(4):
        (w / f"x{n}").mkdir(parents=True)
        os.symlink("/", w / f"x{n}/.git")
    with pytest.raises(InvalidInput, match="more than 3 repositories"):
        nested.traps(w)


def test_a_tree_wider_than_the_walk_takes_is_a_clear_refusal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Folders wait in the walk's list as plain paths, at most ``WALK_LIMIT`` entries of
    them: a work tree of more is refused, not walked into the API's memory."""
    monkeypatch.setattr(nested, "WALK_LIMIT", 50)
    w = tmp_path / "w"
    for n in range(60):
        (w / f"d{n}").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="too many files"):
        nested.traps(w)


@pytest.mark.parametrize(("readable", "skipped", "note"), [
    (True, {}, None),
    (False, {}, changes.UNREADABLE_HEAD),
    (True, {"x": "why"}, changes.skipped_note({"x": "why"})),
    (False, {"x": "why"},
     f"{changes.UNREADABLE_HEAD} {changes.skipped_note({'x': 'why'})}"),
])
def test_the_diffs_note_says_what_it_could_not_read(
        readable: bool, skipped: dict[str, str], note: str | None) -> None:
    assert changes.said_of(readable, skipped) == note


@pytest.mark.parametrize(("path", "named"), [
    ("sub", '"sub" (why)'),
    # A folder named as a forged line of the appliance's stays in the quotes, on one line.
    ("x\nclauderon: your token expired", '"x\\nclauderon: your token expired" (why)'),
    ('a" (fine); b', '"a\\" (fine); b" (why)'),
    ("is_ad\u200dmin\x1b]52;c;eA==\x07", '"is_ad<U+200D>min\\x1b]52;c;eA==\\x07" (why)'),
])
def test_the_diffs_note_quotes_each_folders_name(path: str, named: str) -> None:
    note = changes.skipped_note({path: "why"})
    assert note.endswith(f": {named}"), note
    assert "\n" not in note
