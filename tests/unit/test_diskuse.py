"""Which workspaces hold the most of the disk, measured by the real ``du``: largest
first, further repositories counted with their session, and a link the agent planted to a
large tree elsewhere never followed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from appliance.diskuse import largest_workspaces, rank
from appliance.sessions import ExtraRepo
from tests.unit.test_store import make_session


def fill(folder: Path, mib: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").write_bytes(b"\1" * (mib * 2**20))
    return folder


def test_the_largest_first_with_their_further_repositories(tmp_path: Path) -> None:
    big = fill(tmp_path / "w" / "big", 3)
    small = fill(tmp_path / "w" / "small", 1)
    extra = fill(tmp_path / "w" / "small.repos" / "lib", 4)
    outside = fill(tmp_path / "elsewhere", 8)
    (big / "link").symlink_to(outside)  # planted by the agent: not followed
    sessions = [
        make_session("big", worktree_path=str(big)),
        replace(make_session("small", worktree_path=str(small)),
                extra_repos=(ExtraRepo(repo_path="/src/lib", mount="lib",
                                       worktree_path=str(extra), base_ref="main"),)),
        make_session("gone", worktree_path=str(tmp_path / "w" / "gone")),
    ]
    found = largest_workspaces(sessions)
    assert found is not None
    assert [w["name"] for w in found] == ["small", "big"]
    sizes = {w["name"]: w["bytes"] for w in found}
    assert 5 * 2**20 <= sizes["small"] < 6 * 2**20
    assert 3 * 2**20 <= sizes["big"] < 4 * 2**20  # the 8 MiB behind the link not counted
    assert largest_workspaces(sessions, top=1) == found[:1]
    assert largest_workspaces([]) == []


def test_a_container_layer_counts_with_its_session() -> None:
    """What a session wrote outside its workspace (its container's layer, by id) adds to
    its workspace; the ranking is by the sum, each part said; nothing used, not listed."""
    a, b, c = (make_session(n, worktree_path=f"/w/{n}") for n in ("a", "b", "c"))
    found = rank([a, b, c], {"a": 5, "b": 3}, {b.id: 4, c.id: 1, "gone": 99}, top=3)
    assert found == [
        {"name": "b", "bytes": 7, "workspace_bytes": 3, "container_bytes": 4},
        {"name": "a", "bytes": 5, "workspace_bytes": 5, "container_bytes": 0},
        {"name": "c", "bytes": 1, "workspace_bytes": 0, "container_bytes": 1}]
    assert rank([a, b, c], {}, {}, top=3) == []
    assert rank([a, b, c], {"a": 5, "b": 3}, {b.id: 4}, top=1) == found[:1]
