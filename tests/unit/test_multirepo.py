"""Multi-repo sessions' small parts: the ``repos`` field, mount names, the CLI's
``PATH[:NAME][@BASE]``, the combined tip the plan compares, the stored record, the
container contract's mounts, and mount points that are never written through a link."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from appliance import multirepo
from appliance.config import Settings
from appliance.errors import InvalidInput
from appliance.hostgit import Owner
from appliance.intake import parse_create
from appliance.reconcile.sync import split_tip
from appliance.sessions import ExtraRepo
from appliance.store import Store
from appliance.workspaces import add_mountpoints
from cli.calls import parse_repo_arg
from tests.unit.test_contract import mounts_by_target, spec_for
from tests.unit.test_store import make_session


@pytest.mark.parametrize("name", ["../x", "..", ".git", ".hidden", "a/b", "x/../y", "a..b",
                                  "lost+found", "sp ace", "x" * 41, "-lead"])
def test_bad_mount_names_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_create({"repo_path": "/a", "repos": [{"path": "/b", "name": name}]})
    assert err.value.field == "repos[0].name"


def test_good_requests_and_defaults() -> None:
    req = parse_create({"repo_path": "/a", "repos": [
        {"path": "/src/lib/"}, {"path": "/x/.dots", "name": "web_ui.v2", "base": "dev"}]})
    assert [(r.path, r.name, r.base) for r in req.repos] == [
        ("/src/lib/", "lib", None), ("/x/.dots", "web_ui.v2", "dev")]
    assert multirepo.default_mount("/x/.hidden") == "hidden"
    assert parse_create({"repo_path": "/a"}).repos == ()


@pytest.mark.parametrize(("repos", "field"), [
    ("lib", "repos"), ([{"path": "/b"}] * 5, "repos"), (["/b"], "repos[0]"),
    ([{"path": "b"}], "repos[0].path"), ([{"name": "x"}], "repos[0].path"),
    ([{"path": "/b", "evil": 1}], "repos[0]"), ([{"path": "/b", "base": 3}], "repos[0].base"),
    ([{"path": "/b"}, {"path": "/c/b"}], "repos[1].name"),
    ([{"path": "/b\x00"}], "repos[0].path"), ([{"path": "/b", "base": "m\nx"}], "repos[0].base"),
])
def test_malformed_repos(repos: object, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_create({"repo_path": "/a", "repos": repos})
    assert err.value.field == field


def test_the_cli_form() -> None:
    assert parse_repo_arg("/r/lib") == {"path": "/r/lib"}
    assert parse_repo_arg("/r/lib:shared") == {"path": "/r/lib", "name": "shared"}
    assert parse_repo_arg("/r/lib@dev") == {"path": "/r/lib", "base": "dev"}
    assert parse_repo_arg("/r/lib:shared@v1.2") == {"path": "/r/lib", "name": "shared",
                                                     "base": "v1.2"}


def test_the_combined_tip() -> None:
    assert split_tip("a" * 40) == ("a" * 40, {})
    assert split_tip(f"{'a' * 40} lib={'b' * 40}") == ("a" * 40, {"lib": "b" * 40})


def test_the_store_keeps_every_repository(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite")
    extra = (ExtraRepo(mount="lib", repo_path="/src/lib", base_ref="main",
                       worktree_path="/w/one.repos/lib"),)
    s = replace(make_session("one"), extra_repos=extra)
    store.insert_session(s)
    got = store.get_session(s.id)
    assert got is not None and got.extra_repos == extra
    [view] = [v for v in store.list_views() if '"one"' in v]
    assert '"mount": "lib"' in view
    store.close()


def test_each_further_repository_is_mounted_at_its_name(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "home")
    extra = (ExtraRepo(mount="lib", repo_path="/src/lib", base_ref="main",
                       worktree_path=str(s.worktrees_dir / "flaky.repos" / "lib")),)
    m = mounts_by_target(spec_for(s, extra_repos=extra))
    assert m["/workspace/lib"] == (str(s.worktrees_dir / "flaky.repos" / "lib"), False)
    assert not any(t.startswith("/src/lib") for t in m)  # only borrowed objects, none here


def test_mount_points_never_follow_a_link(tmp_path: Path) -> None:
    """In a workspace whose ``.git`` (or ``.git/info``) is a link, nothing is written
    through it."""
    owner = Owner(uid=os.geteuid(), gid=os.getegid())
    outside = tmp_path / "outside"
    outside.mkdir()
    for link_at in (".git", ".git/info"):
        ws = tmp_path / f"ws-{link_at.replace('/', '-')}"
        (ws / ".git").mkdir(parents=True) if link_at != ".git" else ws.mkdir()
        (ws / link_at).symlink_to(outside)
        with pytest.raises(OSError):
            add_mountpoints(ws, ["lib"], owner)
        assert list(outside.iterdir()) == []
    good = tmp_path / "good"
    (good / ".git").mkdir(parents=True)
    add_mountpoints(good, ["lib", "docs"], owner)
    assert (good / "lib").is_dir() and (good / "docs").is_dir()
    assert (good / ".git" / "info" / "exclude").read_text() == "/lib/\n/docs/\n"
