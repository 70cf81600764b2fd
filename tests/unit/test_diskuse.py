"""Which workspaces hold the most of the disk, measured by the real ``du``: largest
first, further repositories counted with their session, and a link the agent planted to a
large tree elsewhere never followed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

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
    found = rank([a, b, c], {a.id: 5, b.id: 3}, {b.id: 4, c.id: 1, "gone": 99}, top=3)
    assert found == [
        {"name": "b", "bytes": 7, "workspace_bytes": 3, "container_bytes": 4,
         "audit_bytes": 0, "files": None},
        {"name": "a", "bytes": 5, "workspace_bytes": 5, "container_bytes": 0,
         "audit_bytes": 0, "files": None},
        {"name": "c", "bytes": 1, "workspace_bytes": 0, "container_bytes": 1,
         "audit_bytes": 0, "files": None}]
    assert rank([a, b, c], {}, {}, top=3) == []
    assert rank([a, b, c], {a.id: 5, b.id: 3}, {b.id: 4}, top=1) == found[:1]
    # Ranked by files (the disk's inodes ran out): the session with the most files first,
    # though it holds the fewest bytes; one with files and no bytes is listed.
    by_files = rank([a, b, c], {a.id: 5, b.id: 3}, {}, top=3, files={c.id: 90, a.id: 2})
    assert [(r["name"], r["files"]) for r in by_files] == [("c", 90), ("a", 2), ("b", 0)]


@pytest.mark.parametrize(("audit", "first", "its"), [
    ({}, "a", 0),                       # no lines: the workspaces rank them
    ({"c": 10}, "c", 10),               # a tiny session whose requests' lines fill the disk
    ({"b": 2, "c": 1}, "b", 2),         # each part adds to its own session's
    ({"gone": 99, "(proxy)": 99}, "a", 0),  # lines of no listed session name none
])
def test_a_sessions_audit_lines_count_with_it(audit: dict[str, int], first: str,
                                               its: int) -> None:
    """The audit log is the appliance's, but each line is a session's request: a session
    sending requests as fast as it can is named by them, though its workspace is tiny."""
    a, b, c = (make_session(n, worktree_path=f"/w/{n}") for n in ("a", "b", "c"))
    ids = {"a": a.id, "b": b.id, "c": c.id}
    found = rank([a, b, c], {a.id: 5, b.id: 3}, {b.id: 1, c.id: 1}, top=3,
                 audit={ids.get(k, k): n for k, n in audit.items()})
    top = found[0]
    assert (top["name"], top["audit_bytes"]) == (first, its)
    assert top["bytes"] == top["workspace_bytes"] + top["container_bytes"] + its


def test_files_are_counted_when_asked(tmp_path: Path) -> None:
    """``du --inodes`` over the workspace and the home: empty files, no bytes, ranked
    first."""
    tiny = tmp_path / "w" / "tiny"
    tiny.mkdir(parents=True)
    for i in range(300):
        (tiny / str(i)).touch()
    heavy = make_session("heavy", worktree_path=str(fill(tmp_path / "w" / "heavy", 2)))
    many = make_session("many", worktree_path=str(tiny))
    home = tmp_path / "homes" / many.id
    home.mkdir(parents=True)
    for i in range(100):
        (home / str(i)).touch()
    found = largest_workspaces([heavy, many], homes={many.id: str(home)}, by_files=True)
    assert found is not None and [w["name"] for w in found] == ["many", "heavy"], found
    assert found[0]["files"] == 300 + 1 + 100 + 1  # each folder counts itself
    assert found[1]["files"] == 2 and found[1]["bytes"] >= 2 * 2**20
    assert largest_workspaces([heavy, many])[0]["name"] == "heavy"  # by bytes otherwise


def test_an_agent_home_counts_outside_its_workspace(tmp_path: Path) -> None:
    """What the agent wrote into its home (a host folder the container mounts) is named
    with its session, with the container's layer, as written outside its workspace."""
    quiet = make_session("quiet", worktree_path=str(fill(tmp_path / "w" / "quiet", 1)))
    hoard = make_session("hoard", worktree_path=str(fill(tmp_path / "w" / "hoard", 1)))
    homes = {hoard.id: str(fill(tmp_path / "homes" / hoard.id, 6)),
             quiet.id: str(tmp_path / "homes" / "never-made")}
    found = largest_workspaces([quiet, hoard], homes=homes, containers={hoard.id: 2**20})
    assert found is not None and [w["name"] for w in found] == ["hoard", "quiet"], found
    top = found[0]
    assert 7 * 2**20 <= top["container_bytes"] < 8 * 2**20, top
    assert 1 * 2**20 <= top["workspace_bytes"] < 2 * 2**20, top
    assert top["bytes"] == top["workspace_bytes"] + top["container_bytes"]
    assert found[1]["container_bytes"] == 0
