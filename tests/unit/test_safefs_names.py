"""A walk of an agent's tree takes each component as one name in its folder, whoever split
the path: a ``..`` among the parts (the branch an agent's ``HEAD`` names) walked out."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import safefs, workspaces
from appliance.errors import InvalidInput

OUTSIDE = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "secret").write_text(f"{OUTSIDE}\n")
    root = tmp_path / "ws"
    (root / "a").mkdir(parents=True)
    (root / "a" / "f").write_text("inside\n")
    return root


@pytest.mark.parametrize("parts", [
    ("..", "secret"), ("a", "..", "..", "secret"), ("a", ".", "f"), ("a", "", "f"),
    ("a/f",), ("a", "f\x00"), (".",), ("..",),
])
def test_a_part_that_is_not_one_name_is_refused(tree: Path, parts: tuple[str, ...]) -> None:
    with safefs.open_tree(tree, label="the workspace", absent="") as t:
        with pytest.raises(InvalidInput, match="is no path inside the workspace"):
            safefs.read_file(t, parts, limit=64)
        with pytest.raises(InvalidInput, match="is no path inside the workspace"):
            safefs.list_dir(t, parts)
        assert not safefs.has_dir(t, parts)


def test_plain_parts_are_read(tree: Path) -> None:
    with safefs.open_tree(tree, label="the workspace", absent="") as t:
        assert safefs.read_file(t, ("a", "f"), limit=64).data == b"inside\n"
        assert safefs.has_dir(t, ("a",))


HEADS = {
    "a branch": ("ref: refs/heads/main\n", "b" * 40),
    "a commit": ("c" * 40 + "\n", "c" * 40),
    "up and out": ("ref: refs/heads/../../../../secret\n", None),
    "up from the root": ("ref: refs/heads/" + "../" * 40 + "secret\n", None),
    "a doubled slash": ("ref: refs/heads//main\n", None),
}


@pytest.mark.parametrize("name", list(HEADS))
def test_the_head_is_read_only_inside_the_workspace(tree: Path, name: str) -> None:
    head, expected = HEADS[name]
    git = tree / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "refs" / "heads" / "main").write_text("b" * 40 + "\n")
    (git / "HEAD").write_text(head)
    assert workspaces.read_head(tree) == expected
