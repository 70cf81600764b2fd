"""``appliance.opening.open_to_owner``: every folder of a tree opened to its owner by
descriptor, nothing a link names changed, no descriptor held a level."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from appliance import opening, safefs
from appliance.errors import ClauderonError


def test_closed_folders_deeper_than_descriptors_go_are_opened(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o500)
    (outside / "keep").touch(mode=0o400)
    root = tmp_path / "tree"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    depth = 1100  # past a process's usual 1,024 descriptors
    for _ in range(depth):
        os.mkdir("a", dir_fd=fd)
        os.symlink(outside, "out", dir_fd=fd)
        os.symlink(outside / "keep", "keep", dir_fd=fd)
        nxt = os.open("a", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.fchmod(fd, 0)  # the deepest, kept open to look at (longer than a path may be)
    os.chmod(root, 0)
    gc.collect()  # what an earlier test left open is not counted as the walk's
    before = len(os.listdir("/proc/self/fd"))
    opening.open_to_owner(root)
    assert len(os.listdir("/proc/self/fd")) == before
    assert os.stat(root).st_mode & 0o777 == 0o700
    assert os.fstat(fd).st_mode & 0o777 == 0o700
    os.close(fd)
    assert os.stat(outside).st_mode & 0o777 == 0o500
    assert os.stat(outside / "keep").st_mode & 0o777 == 0o400
    safefs.remove_tree(root)


def test_a_link_or_nothing_is_left_alone(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o500)
    os.symlink(outside, tmp_path / "link")
    opening.open_to_owner(tmp_path / "link")
    opening.open_to_owner(tmp_path / "nothing")
    assert os.stat(outside).st_mode & 0o777 == 0o500


@pytest.mark.parametrize(("wide", "deep", "ends"), [
    (4, 0, False), (6, 0, True),  # folders side by side: their names held at once
    (0, 4, False), (0, 6, True),  # a chain made deeper than the walk goes
])
def test_a_tree_past_the_names_the_walk_reads_ends_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wide: int, deep: int,
        ends: bool) -> None:
    """The walk reads at most ``NAMES_AT_MOST`` names, then ends with a message to try
    again (an agent's tree growing under it would hold it, and its memory, for ever)."""
    monkeypatch.setattr(opening, "NAMES_AT_MOST", 5)
    root = tmp_path / "tree"
    for n in range(wide):
        (root / f"w{n}").mkdir(parents=True)
    (root / "/".join(["d"] * deep) if deep else root).mkdir(parents=True, exist_ok=True)
    if ends:
        with pytest.raises(ClauderonError, match="try again when nothing writes it"):
            opening.open_to_owner(root)
    else:
        opening.open_to_owner(root)
