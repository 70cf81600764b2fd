"""Multi-repo sessions on real Docker and real git, and the hostile agent against them.

A session on three repositories: the primary at ``/workspace``, two more at
``/workspace/<name>``, each on the session branch in its own per-session repository. The
agent commits in each (uid 1000, inside the container); each branch reaches its user
repository; delete keeps all three. The agent plants hooks and an fsmonitor in a further
repository and tries to move its ``main``: the host runs nothing and moves nothing but the
session branch. Bad mount names are refused with a 400 naming the field, and a create that
fails on its third repository leaves nothing anywhere.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import user_git
from tests.integration.test_containment_git import refs
from tests.support.agent_app import in_container as run_in
from tests.support.appliance import Appliance, running, wait_for


@pytest.fixture
def three(repo: Path, repo_factory: Callable[..., Path]) -> tuple[Path, Path, Path]:
    lib = repo_factory("lib", files={"lib.txt": "lib\n"})
    docs = repo_factory("docs", files={"index.md": "docs\n"})
    user_git(docs, "branch", "stable")
    return repo, lib, docs


def branch_at(repo: Path, branch: str, commit: str) -> None:
    wait_for(lambda: refs(repo).get(f"refs/heads/{branch}") == commit,
             what=f"{branch} to reach {commit[:8]} in {repo.name}")


def test_three_repositories_commit_sync_and_keep(app: Appliance,
                                                 three: tuple[Path, Path, Path]) -> None:
    app_repo, lib, docs = three
    app.cli("create", "--repo", str(app_repo), "--repo", f"{lib}:shared",
            "--repo", f"{docs}@stable", "--name", "multi", "--prompt", "p")
    s = app.wait_phase("multi", "running")
    assert [(e["mount"], e["repo_path"], e["base_ref"]) for e in s["extra_repos"]] == [
        ("shared", str(lib), "main"), ("docs", str(docs), "stable")]
    shown = app.cli("show", "multi").stdout
    assert f"{lib} (base main, at /workspace/shared" in shown
    assert f"{docs} (base stable, at /workspace/docs" in shown
    assert f"{app_repo} (primary)" in app.cli("list").stdout
    # Each is its own repository on the session branch, with no host git directory in it.
    _, out = run_in(app, s, "git -C shared rev-parse --abbrev-ref HEAD && "
                            "git -C docs rev-parse --abbrev-ref HEAD && cat shared/lib.txt && "
                            "git -C shared rev-parse --git-dir && git status --porcelain")
    assert out.split() == [s["branch"], s["branch"], "lib", ".git"]
    heads = {}
    for where, repo in (("/workspace", app_repo), ("/workspace/shared", lib),
                        ("/workspace/docs", docs)):
        _, out = run_in(app, s, f"echo {repo.name} > work.txt && git add work.txt && "
                                f"git commit -qm 'work in {repo.name}' && git rev-parse HEAD",
                        workdir=where)
        heads[repo] = out.split()[-1]
    for repo, head in heads.items():
        branch_at(repo, s["branch"], head)
        assert user_git(repo, "log", "-1", "--format=%s", s["branch"]) == f"work in {repo.name}"
    # The primary never took the further repositories in as its own.
    _, out = run_in(app, s, "git status --porcelain")
    assert out.strip() == ""
    # A last commit after the reconciler's pass is brought in by the delete itself.
    app.stop("reconciler")
    _, out = run_in(app, s, "echo late >> work.txt && git commit -qam late && "
                            "git rev-parse HEAD", workdir="/workspace/shared")
    late = out.split()[-1]
    app.start("reconciler")
    app.cli("delete", "--force", "multi")
    wait_for(lambda: "multi" not in app.cli("list", "--all").stdout, what="the delete")
    assert refs(lib)[f"refs/heads/{s['branch']}"] == late
    for repo, head in heads.items():
        assert f"refs/heads/{s['branch']}" in refs(repo), repo
        if repo != lib:
            assert refs(repo)[f"refs/heads/{s['branch']}"] == head
    worktrees = app.settings.worktrees_dir
    assert not (worktrees / "multi").exists() and not (worktrees / "multi.repos").exists()
    assert not app.containers(s["id"])


def test_a_workspace_folder_gone_is_made_again_with_a_new_container(
        app: Appliance, three: tuple[Path, Path, Path]) -> None:
    """Drift: a workspace folder removed behind the appliance's back, a further
    repository's and then the primary's, takes its container with it (a mount of nothing);
    the next pass makes both again, each workspace from its session branch."""
    app_repo, lib, _ = three
    app.cli("create", "--repo", str(app_repo), "--repo", f"{lib}:shared", "--name", "lost",
            "--prompt", "p")
    s = app.wait_phase("lost", "running")
    _, out = run_in(app, s, "echo kept > kept.txt && git add kept.txt && git commit -qm kept "
                            "&& git rev-parse HEAD", workdir="/workspace/shared")
    branch_at(lib, s["branch"], out.split()[-1])
    sid = s["id"]
    for gone in (Path(s["extra_repos"][0]["worktree_path"]), Path(s["worktree_path"])):
        [before] = app.containers(sid)
        shutil.rmtree(gone)
        wait_for(lambda b=before.id: [c for c in app.containers(sid)
                                      if c.id != b and c.status == "running"],
                 timeout=120, what=f"a new container once {gone.name} is gone")
        s = app.wait_phase("lost", "running")
        _, out = run_in(app, s, "cat shared/kept.txt && git -C shared rev-parse "
                                "--abbrev-ref HEAD && git rev-parse --abbrev-ref HEAD")
        assert out.split() == ["kept", s["branch"], s["branch"]], out
    drift = [e["payload"]["reason"] for e in app.client().get(
        f"/api/sessions/{sid}/events")["events"] if e["kind"] == "drift"]
    assert drift.count("a workspace folder of it is gone; the container is recreated with "
                       "it") == 2, drift


HOOKS = ("pre-commit", "post-commit", "post-checkout", "reference-transaction",
         "post-index-change", "fsmonitor-watchman", "pre-auto-gc", "post-merge")


def test_hostile_agent_in_a_further_repository(app: Appliance, three: tuple[Path, Path, Path],
                                               tmp_path: Path) -> None:
    app_repo, lib, _ = three
    markers = tmp_path / "markers"
    markers.mkdir()
    os.chmod(markers, 0o777)
    app.cli("create", "--repo", str(app_repo), "--repo", f"{lib}:lib", "--name", "evil",
            "--prompt", "p")
    s = app.wait_phase("evil", "running")
    m = str(markers)
    lines = ["set -e", "mkdir -p .git/hooks evil-hooks .git/info"]
    for name in HOOKS:
        for folder in (".git/hooks", "evil-hooks"):
            lines.append(f"printf '#!/bin/sh\\ntouch {m}/hook-{name}\\ntouch /tmp/ran-{name}\\n'"
                         f" > {folder}/{name}; chmod +x {folder}/{name}")
    for key, value in {"core.fsmonitor": f"touch {m}/fsmonitor",
                       "core.hooksPath": "/workspace/lib/evil-hooks",
                       "core.pager": f"touch {m}/pager",
                       "core.alternateRefsCommand": f"touch {m}/altrefs",
                       "uploadpack.packObjectsHook": f"touch {m}/pack",
                       "include.path": "/workspace/lib/extra.cfg"}.items():
        lines.append(f"git config '{key}' '{value}'")
    lines += [f"printf '[core]\\n\\tfsmonitor = touch {m}/included\\n' > extra.cfg",
              "echo /etc >> .git/objects/info/alternates"]
    run_in(app, s, "\n".join(lines), workdir="/workspace/lib")
    # Positive control: the planted hook runs for the agent's own git, in its container.
    run_in(app, s, "git -c core.fsmonitor=false hook run pre-commit", workdir="/workspace/lib")
    assert run_in(app, s, "ls /tmp/ran-pre-commit", ok=False)[0] == 0
    before = refs(lib)
    _, out = run_in(app, s, "\n".join([
        "set -e", "export GIT_CONFIG_PARAMETERS=\"'core.fsmonitor'='false'\"",
        "git commit -q --allow-empty -m forged",
        "git update-ref refs/heads/main HEAD",
        "printf '%s refs/heads/main\\n' $(git rev-parse HEAD) >> .git/packed-refs",
        "git rev-parse HEAD"]), workdir="/workspace/lib")
    forged = out.split()[-1]
    branch_at(lib, s["branch"], forged)
    # The user's repository cannot be written from inside: its objects are read-only.
    code, _ = run_in(app, s, f"touch {lib}/.git/objects/x", ok=False)
    assert code != 0
    code, _ = run_in(app, s, f"ls {lib}/.git/config", ok=False)
    assert code != 0
    after = refs(lib)
    assert after["refs/heads/main"] == before["refs/heads/main"]
    assert {k: v for k, v in after.items() if k != f"refs/heads/{s['branch']}"} == \
        {k: v for k, v in before.items() if k != f"refs/heads/{s['branch']}"}
    for args in (("status",), ("log", "-p", s["branch"]), ("checkout", "-q", s["branch"]),
                 ("checkout", "-q", "main"), ("gc", "--quiet"), ("fsck", "--no-progress")):
        user_git(lib, *args)
    app.cli("delete", "--force", "evil")
    wait_for(lambda: not app.containers(s["id"]), what="the session to go")
    wait_for(lambda: not (app.settings.worktrees_dir / "evil.repos").exists(),
             what="the further workspace to go")
    assert sorted(p.name for p in markers.iterdir()) == []
    assert refs(lib)["refs/heads/main"] == before["refs/heads/main"]


@pytest.mark.parametrize(("repos", "field"), [
    ([{"path": "LIB", "name": "../x"}], "repos[0].name"),
    ([{"path": "LIB", "name": ".git"}], "repos[0].name"),
    ([{"path": "LIB", "name": "a/b"}], "repos[0].name"),
    ([{"path": "LIB", "name": "src"}], "repos[0].name"),  # the primary's own folder
    ([{"path": "LIB", "name": "x"}, {"path": "DOCS", "name": "x"}], "repos[1].name"),
    ([{"path": "LIB"}, {"path": "LIB", "name": "again"}], "repos[1].path"),
    ([{"path": "LIB", "name": f"r{i}"} for i in range(5)], "repos"),
    ([{"path": "LIB"}, {"path": "DOCS", "base": "nope"}], "repos[1].base"),
])
def test_bad_repositories_are_refused_naming_the_field(
        app: Appliance, three: tuple[Path, Path, Path], repos: list[dict[str, str]],
        field: str) -> None:
    app_repo, lib, docs = three
    for r in repos:
        r["path"] = {"LIB": str(lib), "DOCS": str(docs)}[r["path"]]
    r = app.http().post("/api/sessions", json={"repo_path": str(app_repo), "name": "bad",
                                               "repos": repos})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field, r.text
    assert app.client().get("/api/sessions")["sessions"] == []
    for repo in three:
        assert not any("clauderon/" in ref for ref in refs(repo))
    assert not list(app.settings.worktrees_dir.glob("bad*"))


def test_a_create_failing_on_its_third_repository_leaves_nothing(
        tmp_path: Path, agent_image: str, three: tuple[Path, Path, Path]) -> None:
    app_repo, lib, docs = three
    # No reconciler yet: the world changes between admission and create.
    with running(tmp_path / "home2", "api", image=agent_image) as a:
        a.cli("create", "--repo", str(app_repo), "--repo", f"{lib}:lib",
              "--repo", f"{docs}:docs@stable", "--name", "doomed", "--no-wait")
        user_git(docs, "branch", "-D", "stable")
        a.start("reconciler")
        s = a.wait_phase("doomed", "failed")
        assert "stable" in (s["status_reason"] or "")
        assert not a.containers(s["id"])
        for repo in three:
            assert not any("clauderon/" in ref for ref in refs(repo)), repo
        assert not list(a.settings.worktrees_dir.glob("doomed*"))
        # Positive control: the same create with the base back succeeds on retry.
        user_git(docs, "branch", "stable")
        a.cli("retry", "doomed")
        a.wait_phase("doomed", "running")
        assert all(f"refs/heads/{s['branch']}" in refs(repo) for repo in three)


def test_a_create_failing_after_its_branches_are_made_removes_them(
        tmp_path: Path, agent_image: str, three: tuple[Path, Path, Path]) -> None:
    app_repo, lib, docs = three
    with running(tmp_path / "home3", "api", image=agent_image) as a:
        a.cli("create", "--repo", str(app_repo), "--repo", f"{lib}:lib", "--repo",
              f"{docs}:docs", "--name", "late-fail", "--no-wait")
        # Something in the way of the further repositories' folder, after admission: the
        # create fails once every branch and the primary's workspace are made.
        blocker = a.settings.worktrees_dir / "late-fail.repos"
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_text("in the way\n")
        a.start("reconciler")
        s = a.wait_phase("late-fail", "failed")
        assert "in the way" in (s["status_reason"] or "")
        assert not a.containers(s["id"])
        for repo in three:
            assert not any("clauderon/" in ref for ref in refs(repo)), repo
        assert not (a.settings.worktrees_dir / "late-fail").exists()


BAD_REPO_NAMES = ("nope", "../views.repos/shared", "/etc", "shared/..", ".git", "views.repos",
                  "..", "shared/", "SHARED")


def test_every_view_covers_every_repository(app: Appliance,
                                            three: tuple[Path, Path, Path]) -> None:
    app_repo, lib, docs = three
    app.cli("create", "--repo", str(app_repo), "--repo", f"{lib}:shared",
            "--repo", f"{docs}@stable", "--name", "views", "--prompt", "p")
    s = app.wait_phase("views", "running")
    for where, label in (("/workspace", "app"), ("/workspace/shared", "shared"),
                         ("/workspace/docs", "docs")):
        run_in(app, s, f"echo 'work in {label}' > work.txt && git add work.txt && "
                       f"git commit -qm 'commit in {label}' && echo draft > draft-{label}.txt",
               workdir=where)
    http = app.http()
    url = "/api/sessions/views"
    # The diff: a section per repository, the primary first, each against its own base.
    d = http.get(f"{url}/diff").json()
    assert [(r["repo"], r["name"], r["path"], r["primary"], r["base_ref"], r["error"])
            for r in d["repos"]] == [
        (".", "app", "/workspace", True, "main", None),
        ("shared", "shared", "/workspace/shared", False, "main", None),
        ("docs", "docs", "/workspace/docs", False, "stable", None)]
    for section, label in zip(d["repos"], ("app", "shared", "docs"), strict=True):
        # The primary never takes the further repositories in (their mount points are
        # excluded), and no section shows another's work.
        assert section["files"] == [{"status": "?", "path": f"draft-{label}.txt"},
                                    {"status": "A", "path": "work.txt"}], section
        assert f"+work in {label}" in section["diff"]
        # Each repository's branch commit (what a push sends) apart from its draft.
        assert section["committed"]["files"] == [
            {"status": "A", "path": "work.txt", "work_tree": None}], section["committed"]
        assert section["uncommitted"]["files"] == [
            {"status": "?", "path": f"draft-{label}.txt"}], section["uncommitted"]
        assert all(f"work in {other}" not in section["diff"]
                   for other in ("app", "shared", "docs") if other != label)
    assert d["repo"] == "." and d["files"] == d["repos"][0]["files"]
    assert d["diff"] == d["repos"][0]["diff"] and d["base_ref"] == "main"
    only = http.get(f"{url}/diff", params={"repo": "docs"}).json()
    assert only["repo"] == "docs" and [r["repo"] for r in only["repos"]] == ["docs"]
    assert only["base_ref"] == "stable" and "+work in docs" in only["diff"]
    assert http.get(f"{url}/diff", params={"repo": "."}).json()["repos"][0]["name"] == "app"
    # The files routes read the repository named; a name is looked up, never a path.
    listed = http.get(f"{url}/files", params={"repo": "shared"}).json()
    assert [e["name"] for e in listed["entries"]] == ["draft-shared.txt", "lib.txt", "work.txt"]
    read = http.get(f"{url}/file", params={"repo": "docs", "path": "index.md"}).json()
    assert read["text"] == "docs\n"
    assert http.get(f"{url}/file", params={"path": "README.md"}).json()["text"] == "hello\n"
    assert http.get(f"{url}/file", params={"repo": ".", "path": "work.txt"}).json()["text"] \
        == "work in app\n"
    for route in ("files", "file", "diff"):
        for bad in BAD_REPO_NAMES:
            r = http.get(f"{url}/{route}", params={"repo": bad, "path": "lib.txt"})
            assert r.status_code == 400, (route, bad, r.text)
            assert r.json()["field"] == "repo" and "'shared'" in r.json()["error"], r.text
    r = http.get(f"{url}/file", params={"repo": "shared", "path": "../views/README.md"})
    assert r.status_code == 400 and r.json()["field"] == "path", r.text
    # The CLI: a section per repository under its name; one, or the files only, on asking.
    out = app.cli("diff", "views").stdout
    heads = [line for line in out.splitlines() if line.startswith("== ")]
    assert [h.split(" against ")[0] for h in heads] == [
        "== app (primary, /workspace)", "== shared (/workspace/shared)",
        "== docs (/workspace/docs)"], out
    assert heads[2].split(" against ")[1].startswith("stable @ "), heads
    assert "+work in shared" in out
    stat = app.cli("diff", "views", "--repo", "docs", "--stat").stdout.splitlines()
    assert stat[1].startswith("-- committed @ ") and stat[2:] == [
        "A  work.txt", "-- not committed (the work tree; no push sends it)",
        "?  draft-docs.txt"], stat
    refused = app.cli("diff", "views", "--repo", "../x", check=False)
    assert refused.returncode != 0 and "no repository" in refused.stderr
    # The timeline's commits: every session branch's, each naming its repository.
    items = http.get(f"{url}/timeline", params={"limit": "200"}).json()["items"]
    commits = {(i["repo"], i["title"]) for i in items if i["source"] == "commit"}
    assert commits == {(".", "commit in app"), ("shared", "commit in shared"),
                       ("docs", "commit in docs")}, items
    for i in items:
        if i["source"] == "commit":
            label = i["title"].removeprefix("commit in ")
            assert i["text"].splitlines()[0].endswith(f" · {label}"), i
        else:
            assert i["repo"] is None, i
    timeline = app.cli("timeline", "views", "-n", "200").stdout
    assert " · shared" in timeline and " · docs" in timeline
    # A further repository whose HEAD the agent broke still shows what a push of its
    # branch sends, in its own section, saying its HEAD cannot be read; the rest as before.
    run_in(app, s, "echo garbage > .git/HEAD", workdir="/workspace/docs")
    d = http.get(f"{url}/diff").json()
    assert [r["repo"] for r in d["repos"]] == [".", "shared", "docs"]
    docs = d["repos"][2]
    assert docs["error"] is None and "HEAD cannot be read" in (docs["note"] or ""), docs
    assert [f["path"] for f in docs["committed"]["files"]] == ["work.txt"], docs
    assert d["repos"][1]["files"] and d["files"] and d["note"] is None
    r = http.get(f"{url}/diff", params={"repo": "docs"})
    assert r.status_code == 200 and r.json()["note"] == docs["note"], r.text
    assert "! the workspace's HEAD cannot be read" in app.cli("diff", "views").stdout
    # Its branch unreadable too (a link): that section alone is refused, the rest show.
    run_in(app, s, f"ln -sf /etc/passwd .git/refs/heads/{s['branch']}",
           workdir="/workspace/docs")
    d = http.get(f"{url}/diff").json()
    assert "no readable HEAD" in (d["repos"][2]["error"] or ""), d["repos"][2]
    assert d["repos"][2]["files"] == [] and d["repos"][1]["files"] and d["files"]
    r = http.get(f"{url}/diff", params={"repo": "docs"})
    assert r.status_code == 400 and "no readable HEAD" in r.json()["error"], r.text
    assert "! the workspace has no readable HEAD" in app.cli("diff", "views").stdout
