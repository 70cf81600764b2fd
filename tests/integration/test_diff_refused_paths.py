"""Names host git will not index, from inside a real session container as uid 1000.

The diff of the work tree fills a scratch index with an intent to add each untracked file,
and git refuses some names outright: a symlink named ``.gitmodules`` in any folder (in any
case, or as Windows spells it), a folder macOS or Windows reads as ``.git``. One such name
failed the whole ``add`` ("adding files failed"), and the person had no diff of the
agent's work at all. Each is now shown as git sees it without an index (a symlink as a
symlink: its target, never what it points at), beside everything else.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_containment_git import refs
from tests.integration.test_sync_dotgit import dotgit_commit
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance, wait_for

PLANT = """
set -e
echo "work beside them" >> src/app.py
ln -s /etc/shadow .gitmodules
mkdir -p deep/er && ln -s ../../README.md deep/er/.GitModules
ln -s /etc/hostname .gitattributes
ln -s /etc/hostname .mailmap
mkdir -p mac/.GIT && echo 'planted' > mac/.GIT/config
"""


def test_names_git_will_not_index_deny_no_diff(app: Appliance, repo: Path) -> None:
    s = create(app, repo, "refused")
    in_container(app, s, PLANT)
    diff = app.client().get(f"/api/sessions/{s['id']}/diff")
    for part in (diff, diff["uncommitted"]):
        paths = {f["path"]: f["status"] for f in part["files"]}
        assert paths["src/app.py"] == "M", part["files"]
        for name in (".gitmodules", "deep/er/.GitModules", "mac/.GIT/config"):
            assert paths.get(name) == "?", (name, part["files"])
        assert "+work beside them" in part["diff"]
        assert "new file mode 120000" in part["diff"]
        assert "+/etc/shadow\n" in part["diff"], part["diff"]
        assert "+../../README.md\n" in part["diff"]
        assert "+planted\n" in part["diff"]
        # The symlink's target, never what it points at.
        assert "root:" not in part["diff"]
    assert ".gitmodules" in (diff["note"] or ""), diff["note"]
    shown = app.cli("diff", "refused").stdout
    assert "+work beside them" in shown and "+/etc/shadow" in shown, shown


HOSTILE_MODULES = """
set -e
cat > .gitmodules <<'END'
[submodule "a"]
	path = a
	url = --upload-pack=touch {markers}/upload-pack
[submodule "b"]
	path = b
	url = ext::sh -c touch% {markers}/ext
	update = !touch {markers}/update
END
head -c 3000000 /dev/zero | tr '\\0' '#' >> .gitmodules
git update-index --add --cacheinfo 160000,$(git rev-parse HEAD),a
git update-index --add --cacheinfo 160000,$(git rev-parse HEAD),b
echo "beside the modules" >> src/app.py
git add .gitmodules src/app.py
git -c user.name=a -c user.email=a@b commit -qm 'modules'
echo "commit=$(git rev-parse HEAD)"
"""


def test_a_hostile_gitmodules_file_runs_nothing_and_denies_no_diff(
        app: Appliance, repo: Path, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    markers.chmod(0o777)
    s = create(app, repo, "modules")
    _, out = in_container(app, s, HOSTILE_MODULES.format(markers=markers))
    commit = out.split("commit=")[1].split()[0]
    diff = app.client().get(f"/api/sessions/{s['id']}/diff")
    assert diff["committed"]["commit"] == commit, diff
    paths = {f["path"] for f in diff["committed"]["files"]}
    assert {"a", "b", ".gitmodules", "src/app.py"} <= paths, paths
    assert "+beside the modules" in diff["committed"]["diff"]
    assert "+beside the modules" in app.cli("diff", "modules").stdout
    # The sync refuses it, and says why: the person's repository never holds it.
    reason = wait_for(lambda: app.session(s["id"]).get("status_reason"),
                      what="the sync to refuse the commit")
    assert ".gitmodules" in reason and "git rm" in reason, reason
    assert refs(repo).get(f"refs/heads/{s['branch']}") != commit
    assert list(markers.iterdir()) == []


COMMITTED_LINK = """
set -e
echo "beside the link" >> src/app.py
git add src/app.py
blob=$(printf /etc/shadow | git hash-object -w --stdin)
tree=$( (git ls-tree $(git write-tree); printf "120000 blob $blob\\t.gitmodules\\n") | git mktree)
commit=$(git -c user.name=a -c user.email=a@b commit-tree $tree -p HEAD -m 'a link')
git update-ref HEAD $commit
echo "commit=$commit"
"""


def test_a_committed_gitmodules_symlink_denies_no_diff(app: Appliance, repo: Path) -> None:
    """git refuses the name in an index read from a tree too (``read-tree``: "invalid
    path"), and the agent can commit it without one (``mktree``, ``commit-tree``) and check
    the commit out as far as its HEAD goes."""
    s = create(app, repo, "linked")
    _, out = in_container(app, s, COMMITTED_LINK)
    commit = out.split("commit=")[1].split()[0]
    diff = app.client().get(f"/api/sessions/{s['id']}/diff")
    committed = diff["committed"]
    assert committed["commit"] == commit, diff
    assert {f["path"] for f in committed["files"]} >= {".gitmodules", "src/app.py"}
    assert "new file mode 120000" in committed["diff"] and "+/etc/shadow" in committed["diff"]
    assert "+beside the link" in diff["diff"]


def test_a_committed_dotgit_look_alike_denies_no_diff(app: Appliance, repo: Path) -> None:
    """A folder macOS or Windows reads as ``.git``, committed without an index: the sync
    refuses it (``test_sync_dotgit.py``), and the person still reads the diff that shows
    it, the config it holds."""
    s = create(app, repo, "lookalike")
    in_container(app, s, "echo 'beside the folder' >> src/app.py")
    _, out = in_container(app, s, dotgit_commit(".GIT"))
    commit = out.split("commit=")[1].split()[0]
    diff = app.client().get(f"/api/sessions/{s['id']}/diff")
    committed = diff["committed"]
    assert committed["commit"] == commit, diff
    assert ".GIT/config" in {f["path"] for f in committed["files"]}, committed["files"]
    assert "+[core] fsmonitor = touch /tmp/pwned" in committed["diff"]
    assert "+beside the folder" in diff["diff"]
