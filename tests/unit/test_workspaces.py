"""Session workspaces with real git: creation, tips read without trust, the sync, the diff.

The agent's side is played by git run as uid 1000 inside the workspace (what the container
does); everything the host does must leave the user's repository alone except the session
branch, and must run nothing the workspace's config, hooks or attributes ask for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from appliance import branchsync, changes, hostgit, repos, safefs, shadow, timeline_git, workspaces
from appliance.errors import GitError
from appliance.multirepo import RepoView
from appliance.repos import RepoInfo
from tests.conftest import AGENT_UID, make_repo
from tests.support.forged_pack import forge
from tests.support.peaks import git_peak

BRANCH = "clauderon/x"
#: What a sync brings in at most, where the test is not about that.
LIMIT = 1 << 30


def sh(cwd: Path, *args: str) -> str:
    """The user's own git, as the user (the repositories belong to uid 1000)."""
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "User", "GIT_AUTHOR_EMAIL": "u@x", "GIT_COMMITTER_NAME": "User",
           "GIT_COMMITTER_EMAIL": "u@x"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=env, user=AGENT_UID, group=AGENT_UID,
                          extra_groups=[]).stdout.strip()


def agent(cwd: Path, script: str) -> subprocess.CompletedProcess[str]:
    """A shell as the agent's uid in its workspace (what the container runs)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_AUTHOR_NAME": "Agent",
           "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "Agent",
           "GIT_COMMITTER_EMAIL": "a@x", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, user=AGENT_UID, group=AGENT_UID, extra_groups=[],
                          check=False)


@pytest.fixture
def repo(tmp_path: Path) -> RepoInfo:
    r = make_repo(tmp_path / "repo", files={"README": "one\n", "src/app.py": "1\n"})
    return repos.repo_facts(r)


@pytest.fixture
def ws(repo: RepoInfo, tmp_path: Path) -> Path:
    home = tmp_path / "home" / "worktrees"
    home.mkdir(parents=True)
    path = home / "x"
    start = repos.resolve_ref(repo, "main")
    repos.create_branch(repo, BRANCH, start)
    workspaces.create_workspace(repo, path, BRANCH, start, base_branch="main")
    return path


def test_create_makes_a_private_repository_that_borrows_objects(repo: RepoInfo,
                                                                ws: Path) -> None:
    assert workspaces.is_workspace(ws)
    assert (ws / "README").read_text() == "one\n"
    assert sh(ws, "symbolic-ref", "--short", "HEAD") == BRANCH
    assert sh(ws, "rev-parse", "HEAD") == sh(repo.root, "rev-parse", "main")
    assert sh(ws, "rev-parse", "origin/main") == sh(repo.root, "rev-parse", "main")
    alternates = (ws / ".git" / "objects" / "info" / "alternates").read_text()
    assert alternates == f"{repo.objects_dir.resolve()}\n"
    assert ws.stat().st_uid == AGENT_UID and (ws / "README").stat().st_uid == AGENT_UID
    assert ws.stat().st_mode & 0o777 == 0o700
    # Nothing in the user's repository knows about it (no worktree for prune to find).
    assert sh(repo.root, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not (ws / ".git" / "hooks").exists()  # no templates copied


def test_create_is_idempotent_and_makes_an_empty_leftover_anew(repo: RepoInfo,
                                                               ws: Path) -> None:
    (ws / "work.txt").write_text("keep me")
    start = repos.resolve_ref(repo, "main")
    workspaces.create_workspace(repo, ws, BRANCH, start)
    assert (ws / "work.txt").read_text() == "keep me"
    safefs.remove_tree(ws)
    ws.mkdir()  # a create interrupted before its repository
    workspaces.create_workspace(repo, ws, BRANCH, start)
    assert workspaces.is_workspace(ws) and (ws / "README").read_text() == "one\n"


@pytest.mark.parametrize("broken", ["removed", "gitdir-file", "link-out", "link-in"])
def test_a_folder_whose_git_the_agent_broke_is_mended_around_its_files(
        repo: RepoInfo, ws: Path, tmp_path: Path, broken: str) -> None:
    """The agent's files stay as it left them (nothing of the folder is read or written),
    the repository is made again on the branch as last brought in, and a ``.git`` that was a
    file or a link is removed, never followed: the folder it named is left untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    os.chmod(outside, 0o777)
    done = agent(ws, "echo mine >> README && echo new > work.txt && rm src/app.py && "
                     "git add -A && git commit -qm unsynced && mkdir -p lib && echo x > lib/y")
    assert done.returncode == 0, done.stderr
    users_refs = sh(repo.root, "for-each-ref")
    plant = {"removed": "rm -rf .git",
             "gitdir-file": f"rm -rf .git && echo 'gitdir: {repo.root}/.git' > .git",
             "link-out": f"rm -rf .git && ln -s {outside} .git",
             "link-in": "rm -rf .git && mkdir -p lib/g && ln -s lib/g .git"}[broken]
    assert agent(ws, plant).returncode == 0
    assert not workspaces.is_workspace(ws)
    start = repos.resolve_ref(repo, BRANCH)
    workspaces.create_workspace(repo, ws, BRANCH, start)
    assert workspaces.is_workspace(ws) and not (ws / ".git").is_symlink()
    assert (ws / "README").read_text() == "one\nmine\n"
    assert (ws / "work.txt").read_text() == "new\n" and not (ws / "src" / "app.py").exists()
    assert sh(ws, "symbolic-ref", "--short", "HEAD") == BRANCH
    assert sh(ws, "rev-parse", "HEAD") == start
    status = agent(ws, "git status --porcelain")
    assert status.returncode == 0, status.stderr
    assert sorted(status.stdout.splitlines()) == [" D src/app.py", " M README", "?? lib/",
                                                  "?? work.txt"]
    assert list(outside.iterdir()) == []
    assert sh(repo.root, "for-each-ref") == users_refs
    if broken == "link-in":
        assert list((ws / "lib" / "g").iterdir()) == []


def test_a_link_put_in_the_way_while_the_repository_is_made_again_is_never_followed(
        repo: RepoInfo, ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root writes the new repository's ``alternates`` (and owns its folder to the user):
    an agent whose container still ran as its ``.git`` was made again, swapping
    ``.git/objects`` for a link the moment git made it, gets the step refused, and root
    makes, owns and writes nothing where the link leads."""
    outside = tmp_path / "outside"
    outside.mkdir()
    os.chmod(outside, 0o777)
    assert agent(ws, "rm -rf .git").returncode == 0
    real = hostgit.run

    def racing(args: Any, **kwargs: Any) -> Any:
        done = real(args, **kwargs)
        if args[0] == "init":  # the agent, between git's init and root's next step
            raced = agent(ws, f"rm -rf .git/objects && ln -s {outside} .git/objects")
            assert raced.returncode == 0, raced.stderr
        return done

    monkeypatch.setattr(hostgit, "run", racing)
    try:
        workspaces.create_workspace(repo, ws, BRANCH, repos.resolve_ref(repo, BRANCH))
    except OSError:
        refused = True
    else:
        refused = False
    assert sorted(str(p.relative_to(outside)) for p in outside.rglob("*")) == []
    assert refused


def sync(repo: RepoInfo, ws: Path, scratch: Path | None = None) -> str:
    """The session branch's tip, read without trust and synced to the user's repository."""
    tip = workspaces.read_tip(ws, BRANCH)
    assert tip is not None
    branchsync.sync_branch(repo, ws, BRANCH, tip, scratch or ws.parent.parent / "shadows",
                           max_bytes=LIMIT)
    return tip


def test_the_agent_commits_amends_and_rebases(repo: RepoInfo, ws: Path) -> None:
    done = agent(ws, "echo hi > new.txt && git add -A && git commit -qm one && "
                     "echo more >> new.txt && git commit -qam two && "
                     "git commit -q --amend -m two-amended && "
                     "git rebase -q origin/main && git log --format=%s")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["two-amended", "one", "initial"]
    tip = sync(repo, ws)
    assert tip == sh(ws, "rev-parse", "HEAD")
    assert sh(repo.root, "rev-parse", BRANCH) == tip
    assert sh(repo.root, "log", "--format=%s", BRANCH).split()[0] == "two-amended"
    # A rewritten history (reset + new commit) replaces the branch: it is the agent's.
    done = agent(ws, "git reset -q --hard HEAD~2 && echo z > z && git add z && "
                     "git commit -qm rewritten")
    assert done.returncode == 0, done.stderr
    tip = sync(repo, ws)
    assert sh(repo.root, "rev-parse", BRANCH) == tip
    assert sh(repo.root, "fsck", "--strict", "--no-progress") == ""


def test_only_the_session_branch_moves(repo: RepoInfo, ws: Path) -> None:
    before = sh(repo.root, "for-each-ref", "--format=%(refname) %(objectname)")
    sh(repo.root, "tag", "v1")
    tags = sh(repo.root, "for-each-ref", "refs/tags")
    done = agent(ws, "git commit -q --allow-empty -m forged && "
                     "git update-ref refs/heads/main HEAD && git tag -f v1 HEAD && "
                     "git update-ref refs/heads/clauderon/other HEAD && "
                     "printf '%s refs/heads/main\\n' $(git rev-parse HEAD) > .git/packed-refs")
    assert done.returncode == 0, done.stderr
    tip = sync(repo, ws)
    after = sh(repo.root, "for-each-ref", "--format=%(refname) %(objectname)",
               "refs/heads/main", "refs/heads/clauderon/other")
    assert after == "\n".join(line for line in before.splitlines()
                              if line.startswith("refs/heads/main"))
    assert sh(repo.root, "for-each-ref", "refs/tags") == tags
    assert sh(repo.root, "rev-parse", BRANCH) == tip


@pytest.mark.parametrize("attack", [
    "ln -sf /etc/shadow .git/refs/heads/clauderon/x",
    "rm .git/refs/heads/clauderon/x && mkfifo .git/refs/heads/clauderon/x",
    "echo 'ref: refs/heads/main' > .git/refs/heads/clauderon/x",
    "echo ../../../../etc/passwd > .git/refs/heads/clauderon/x",
    "rm -rf .git/refs/heads/clauderon && ln -s / .git/refs/heads/clauderon",
    "rm -rf .git/refs && ln -s /proc/self/root .git/refs",
])
def test_a_tip_is_read_without_trust(ws: Path, attack: str) -> None:
    done = agent(ws, attack)
    assert done.returncode == 0, done.stderr
    assert workspaces.read_tip(ws, BRANCH) is None


def test_packed_refs_are_read(ws: Path) -> None:
    head = sh(ws, "rev-parse", "HEAD")
    sh(ws, "pack-refs", "--all")
    assert not (ws / ".git" / "refs" / "heads" / "clauderon" / "x").exists()
    assert workspaces.read_tip(ws, BRANCH) == head
    assert workspaces.read_head(ws) == head


def test_sync_refuses_a_branch_checked_out_in_the_users_repo(repo: RepoInfo, ws: Path) -> None:
    sh(repo.root, "checkout", "-q", BRANCH)
    assert agent(ws, "git commit -q --allow-empty -m work").returncode == 0
    tip = workspaces.read_tip(ws, BRANCH)
    assert tip is not None
    with pytest.raises(GitError) as info:
        branchsync.sync_branch(repo, ws, BRANCH, tip, ws.parent.parent / "shadows",
                               max_bytes=LIMIT)
    assert "checked out in your repository" in info.value.message
    assert sh(repo.root, "rev-parse", BRANCH) != tip


def test_sync_refuses_corrupt_objects(repo: RepoInfo, ws: Path) -> None:
    """An object the agent forged (bad content under a good name) never enters the repo."""
    done = agent(ws, "echo x > f && git add f && git commit -qm bad && "
                     "obj=.git/objects/$(git rev-parse HEAD:f | sed 's|^..|&/|') && "
                     "chmod u+w $obj && printf 'garbage' > $obj")
    assert done.returncode == 0, done.stderr
    tip = workspaces.read_tip(ws, BRANCH)
    assert tip is not None
    with pytest.raises(GitError):
        branchsync.sync_branch(repo, ws, BRANCH, tip, ws.parent.parent / "shadows",
                               max_bytes=LIMIT)
    assert sh(repo.root, "rev-parse", BRANCH) == sh(repo.root, "rev-parse", "main")


def test_sync_brings_in_no_more_than_the_limit(repo: RepoInfo, ws: Path) -> None:
    """An agent's branch is its own to fill; the user's repository is not. A commit of
    64 MiB of zeros (a few KiB on disk, all 64 MiB in a checkout) over a 32 MiB limit is
    refused saying what to do, and not one of its objects enters the user's repository;
    dropping the file in a later commit changes nothing (history holds it); a raised limit
    brings it in, and then only what is new counts."""
    shadows = ws.parent.parent / "shadows"
    done = agent(ws, "head -c $((64 << 20)) /dev/zero > zeros && git add zeros && "
                     "git commit -qm zeros && git rm -q zeros && git commit -qm dropped && "
                     "git count-objects -v | sed -n 's/^size: //p'")
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) < 1024  # KiB on disk: it compresses to nothing
    blob = sh(ws, "rev-parse", "HEAD~1:zeros")
    tip = workspaces.read_tip(ws, BRANCH)
    assert tip is not None
    before = sh(repo.root, "rev-parse", BRANCH)
    with pytest.raises(GitError) as info:
        branchsync.sync_branch(repo, ws, BRANCH, tip, shadows, max_bytes=32 << 20)
    assert "64 MiB, more than the 32 MiB" in info.value.message
    assert "[limits] max_sync_mib" in info.value.message
    assert sh(repo.root, "rev-parse", BRANCH) == before
    def has_blob() -> bool:
        return subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo.root),
                               "cat-file", "-e", blob], check=False).returncode == 0

    assert not has_blob()  # not one object reached the user's repository
    branchsync.sync_branch(repo, ws, BRANCH, tip, shadows, max_bytes=65 << 20)
    assert sh(repo.root, "rev-parse", BRANCH) == tip and has_blob()  # the control
    # Once in, only what is new counts: a small commit after it goes through the low limit.
    assert agent(ws, "echo hi > small && git add small && git commit -qm small").returncode == 0
    tip = workspaces.read_tip(ws, BRANCH)
    assert tip is not None
    branchsync.sync_branch(repo, ws, BRANCH, tip, shadows, max_bytes=1 << 20)
    assert sh(repo.root, "rev-parse", BRANCH) == tip



def test_a_read_copies_no_more_than_a_sync_brings_in(repo: RepoInfo, ws: Path) -> None:
    """The diff and the timeline read the workspace's commit through a checked copy: a
    commit of 64 MiB of zeros over a 32 MiB limit is refused as its sync is, saying what to
    do, and leaves no copy behind; once brought in, nothing is copied and the low limit
    holds no read back."""
    shadows = ws.parent.parent / "shadows"
    done = agent(ws, "head -c $((64 << 20)) /dev/zero > zeros && git add zeros && "
                     "git commit -qm zeros")
    assert done.returncode == 0, done.stderr
    view = RepoView(key="", label="repo", primary=True, repo_path=str(repo.root),
                    base_ref="main", worktree_path=str(ws), container_path="/workspace")
    with pytest.raises(GitError) as info:
        changes.diff(repo, ws, "main", shadows, branch=BRANCH, max_bytes=32 << 20)
    said = info.value.message
    assert "64 MiB, more than the 32 MiB" in said and "[limits] max_sync_mib" in said, said
    assert "drop the large files" in said, said
    with pytest.raises(GitError, match="max_sync_mib"):
        timeline_git.branch_log(repo, ws, view, BRANCH, shadows, max_bytes=32 << 20)
    assert not [p for p in shadows.rglob("*") if p.is_file()]  # no copy left behind
    tip = workspaces.read_tip(ws, BRANCH)
    assert tip is not None
    branchsync.sync_branch(repo, ws, BRANCH, tip, shadows, max_bytes=65 << 20)
    assert {"status": "A", "path": "zeros"} in changes.diff(
        repo, ws, "main", shadows, branch=BRANCH, max_bytes=32 << 20)["files"]
    log = timeline_git.branch_log(repo, ws, view, BRANCH, shadows, max_bytes=32 << 20)
    assert [c[3].strip() for c in log.commits] == ["zeros"]


def test_the_branch_a_diff_copies_is_held_as_the_checked_out_commit_is(
        repo: RepoInfo, ws: Path) -> None:
    """The diff copies the branch's commit beside the one checked out: an agent that
    committed 64 MiB to its branch and checked out the fork detached had the count read the
    fork alone (nothing new) while the copy took the branch's 64 MiB for each diff. What the
    two lack together is counted, and the diff refused as a sync of the branch is."""
    shadows = ws.parent.parent / "shadows"
    done = agent(ws, "head -c $((64 << 20)) /dev/zero > zeros && git add zeros && "
                     "git commit -qm zeros && git checkout -q --detach HEAD~1")
    assert done.returncode == 0, done.stderr
    with pytest.raises(GitError) as info:
        changes.diff(repo, ws, "main", shadows, branch=BRANCH, max_bytes=32 << 20)
    said = info.value.message
    assert "64 MiB, more than the 32 MiB" in said and "[limits] max_sync_mib" in said, said
    assert not [p for p in shadows.rglob("*") if p.is_file()]  # no copy left behind


@pytest.mark.parametrize(("plant", "said"), [
    ("mv .git/objects/pack own-pack && ln -s {other}/.git/objects/pack .git/objects/pack",
     ".git/objects/pack is a symbolic link"),
    ("d=.git/objects/$(git rev-parse HEAD | cut -c1-2) && rm -rf $d && ln -s {other} $d",
     "is a symbolic link"),
    ("o=.git/objects/$(git rev-parse HEAD | sed 's|^..|&/|') && rm -f $o && ln -s /etc/passwd $o",
     "is a symbolic link"),
    ("o=.git/objects/$(git rev-parse HEAD | sed 's|^..|&/|') && rm -f $o && mkfifo $o",
     "is a FIFO"),
    ("mv .git/objects own-objects && ln -s {other}/.git/objects .git/objects",
     ".git/objects is a symbolic link"),
])
def test_the_sync_reads_no_link_of_the_agents_objects(repo: RepoInfo, ws: Path, tmp_path: Path,
                                                      plant: str, said: str) -> None:
    """Each object folder or object the agent makes a link (to another of the owner's
    repositories, to a host file) or a FIFO is refused by name; nothing comes in."""
    other = make_repo(tmp_path / "other", files={"secret": "theirs\n"})
    done = agent(ws, "git commit -q --allow-empty -m mine && " + plant.format(other=other))
    assert done.returncode == 0, done.stderr
    before = sh(repo.root, "rev-parse", BRANCH)
    with pytest.raises(GitError) as info:
        sync(repo, ws)
    assert said in info.value.message, info.value.message
    assert sh(repo.root, "rev-parse", BRANCH) == before


def test_a_view_holds_the_files_it_found_whatever_the_agent_swaps_after(
        repo: RepoInfo, ws: Path, tmp_path: Path) -> None:
    """The view links the files themselves: a swap of the agent's object for a link after
    the view was made (between the checks and git's read) changes nothing git reads."""
    assert agent(ws, "git commit -q --allow-empty -m mine").returncode == 0
    tip = workspaces.read_tip(ws, BRANCH)
    assert tip is not None
    loose = ws / ".git" / "objects" / tip[:2] / tip[2:]
    with shadow.shadow_dir(tmp_path / "scratch", owner=repo.owner, refs={"sync": tip},
                           objects=repos.borrowed_object_dirs(repo.objects_dir),
                           agents=(ws,)) as gitdir:
        seen = gitdir.parent / "view-0" / tip[:2] / tip[2:]
        assert agent(ws, f"rm -f {loose} && ln -s /etc/passwd {loose}").returncode == 0
        assert not seen.is_symlink() and seen.read_bytes()[:1] == b"x"  # zlib, as git wrote it
    assert loose.is_symlink()  # the agent's own link, left as it is


def test_a_sessions_scratch_folder_goes_with_its_last_shadow(
        repo: RepoInfo, ws: Path, tmp_path: Path) -> None:
    """A delete removes the session's scratch folder while a fetch of its branch may still
    be under way in it (a pod's last fetch, a page of its timeline): the fetch's end takes
    the folder it made again, once no other shadow is in it."""
    assert agent(ws, "git commit -q --allow-empty -m mine").returncode == 0
    tip = workspaces.read_tip(ws, BRANCH)
    assert tip is not None
    scratch = tmp_path / "shadows" / "session-id"

    def shadow_of() -> contextlib.AbstractContextManager[Path]:
        return shadow.shadow_dir(scratch, owner=repo.owner, refs={"sync": tip},
                                 objects=repos.borrowed_object_dirs(repo.objects_dir),
                                 agents=(ws,))

    with shadow_of():
        with shadow_of() as inner:
            assert inner.parent.parent == scratch
        assert scratch.is_dir()  # the outer one is still in it
    assert not scratch.exists()
    with shadow_of():
        shutil.rmtree(scratch)  # the delete's cleanup, under the fetch
        with shadow_of():  # a read that starts after it
            pass
    assert not scratch.exists()
    assert (tmp_path / "shadows").is_dir()  # only the session's own folder goes


HOSTILE_CONFIG = {
    "core.fsmonitor": "touch {m}/fsmonitor",
    "core.hooksPath": "{hooks}",
    "core.sshCommand": "touch {m}/ssh",
    "core.pager": "touch {m}/pager",
    "core.editor": "touch {m}/editor",
    "filter.evil.clean": "touch {m}/clean; cat",
    "filter.evil.smudge": "touch {m}/smudge; cat",
    "filter.evil.process": "touch {m}/process",
    "filter.evil.required": "true",
    "diff.evil.command": "touch {m}/diffcmd",
    "diff.evil.textconv": "touch {m}/textconv; cat",
    "diff.external": "touch {m}/external",
    "include.path": "{ws}/extra.cfg",
    "includeIf.gitdir:/.path": "{ws}/extra.cfg",
    "extensions.worktreeConfig": "true",
    "uploadpack.packObjectsHook": "touch {m}/packhook; exec",
    "core.alternateRefsCommand": "touch {m}/altrefs",
}


def plant_everything(ws: Path, markers: Path) -> None:
    """Every way the agent's repository could ask the host to run something."""
    hooks = ws / "evil-hooks"
    fmt = {"m": markers, "hooks": hooks, "ws": ws}
    script = ["mkdir -p evil-hooks .git/hooks .git/info",
              "printf '* filter=evil diff=evil\\n' > .gitattributes",
              "git add .gitattributes && git commit -qm attrs"]
    for name in ("pre-commit", "post-checkout", "post-merge", "pre-push", "post-update",
                 "reference-transaction", "pre-auto-gc", "post-index-change",
                 "fsmonitor-watchman",
                 "push-to-checkout", "update", "pre-receive", "post-receive", "post-rewrite",
                 "prepare-commit-msg", "commit-msg", "post-commit", "pre-rebase"):
        for folder in (".git/hooks", "evil-hooks"):
            script.append(f"printf '#!/bin/sh\\ntouch {markers}/hook-{name}\\n' > {folder}/{name}"
                          f" && chmod +x {folder}/{name}")
    for key, value in HOSTILE_CONFIG.items():
        script.append(f"git config {key} '{value.format(**fmt)}'")
    script += [
        f"printf '[core]\\n\\tfsmonitor = touch {markers}/included\\n' > extra.cfg",
        f"printf '[core]\\n\\tfsmonitor = touch {markers}/worktree-config\\n' "
        "> .git/config.worktree",
        "printf '* filter=evil diff=evil\\n' > .git/info/attributes",
        "echo changed >> README && echo new > untracked.txt",
    ]
    done = agent(ws, " && ".join(script))
    assert done.returncode == 0, done.stderr


def test_nothing_the_agent_writes_runs_on_the_host(repo: RepoInfo, ws: Path,
                                                   tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir(mode=0o777)
    os.chmod(markers, 0o777)
    plant_everything(ws, markers)
    # The planted settings do work: the agent's own git runs them (positive control).
    agent(ws, "git status >/dev/null 2>&1; git commit -q --allow-empty -m probe")
    assert {p.name for p in markers.iterdir()} & {"process", "worktree-config", "fsmonitor",
                                                  "hook-pre-commit", "clean"}
    for p in markers.iterdir():
        p.unlink()
    scratch = ws.parent.parent / "shadows"
    sync(repo, ws, scratch)
    body = changes.diff(repo, ws, "main", scratch, branch=BRANCH,
                        max_bytes=LIMIT)
    assert {"path": "untracked.txt", "status": "?"} in body["files"]
    assert "+changed" in body["diff"]
    workspaces.read_head(ws)
    # The user's own git in their repository, on the branch the agent made.
    sh(repo.root, "log", "-p", BRANCH)
    sh(repo.root, "diff", "main", BRANCH)
    sh(repo.root, "status")
    sh(repo.root, "gc", "--quiet")
    assert sorted(p.name for p in markers.iterdir()) == []


def test_the_users_gc_and_prune_never_break_a_session(repo: RepoInfo, ws: Path) -> None:
    assert agent(ws, "echo a > a && git add a && git commit -qm a").returncode == 0
    sh(repo.root, "worktree", "prune")
    sh(repo.root, "-c", "gc.reflogExpire=now", "-c", "gc.reflogExpireUnreachable=now",
       "gc", "--quiet", "--prune=now")
    done = agent(ws, "git log --oneline | wc -l && git status --short && "
                     "echo b > b && git add b && git commit -qm b && git fsck --no-progress")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "2"
    tip = sync(repo, ws)
    assert sh(repo.root, "rev-parse", BRANCH) == tip


def test_diff_reports_committed_staged_and_untracked(repo: RepoInfo, ws: Path) -> None:
    done = agent(ws, "echo c > committed && git add committed && git commit -qm c && "
                     "echo s > staged && git add staged && echo u > untracked && "
                     "echo 2 > src/app.py && rm README && mkdir -p ignored && "
                     "echo ignored/ > .gitignore && echo i > ignored/i")
    assert done.returncode == 0, done.stderr
    body = changes.diff(repo, ws, "main", ws.parent.parent / "shadows", branch=BRANCH,
                        max_bytes=LIMIT)
    files = {f["path"]: f["status"] for f in body["files"]}
    assert files == {"committed": "A", "staged": "?", "untracked": "?", "src/app.py": "M",
                     "README": "D", ".gitignore": "?"}
    assert body["merge_base"] == sh(repo.root, "rev-parse", "main")
    assert "+2" in body["diff"] and not body["truncated"]
    assert not (ws.parent.parent / "shadows").exists()  # scratch cleaned up, itself too


def test_with_the_base_gone_the_branch_commit_shows_whole(repo: RepoInfo, ws: Path) -> None:
    """The person deleted the base branch: no fork to compare with, and the branch's commit
    is shown whole (all of it is what a push sends), never as nothing committed."""
    done = agent(ws, "echo c > committed && git add committed && git commit -qm c && "
                     "git rm -q --cached committed")
    assert done.returncode == 0, done.stderr
    sh(repo.root, "branch", "-q", "gone", "main")
    sh(repo.root, "update-ref", "-d", "refs/heads/gone")
    body = changes.diff(repo, ws, "gone", ws.parent.parent / "shadows", branch=BRANCH,
                        max_bytes=LIMIT)
    assert body["merge_base"] is None
    assert body["committed"]["files"] == [
        {"status": "A", "path": p, "work_tree": None} for p in ("README", "committed",
                                                                  "src/app.py")]
    assert body["uncommitted"]["files"] == []


def test_a_diff_copies_nothing_and_reads_a_bounded_answer(repo: RepoInfo, ws: Path,
                                                          tmp_path: Path) -> None:
    """The workspace is the agent's to fill. Its diff, with 48 MiB it never committed (not
    compressible) beside 4 MiB of text in two files, runs with its scratch on a 16 MiB disk
    of its own: a diff that copied the work into objects would overflow it (and write as
    much again on the appliance's disk). The answer lists every file and holds the first
    2 MiB of the diff, saying it was cut; a text file larger than that is diffed as a
    binary one."""
    done = agent(ws, "head -c $((48 << 20)) /dev/urandom > big.bin && "
                     "seq 1 300000 > many.txt && seq 300001 560000 > more.txt && "
                     "seq 1 400000 > long.txt && echo 2 > src/app.py && rm README")
    assert done.returncode == 0, done.stderr
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0777", "tmpfs", str(disk)],
                   check=True)
    try:
        body = changes.diff(repo, ws, "main", disk / "shadows", branch=BRANCH,
                        max_bytes=LIMIT)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
    assert {f["path"]: f["status"] for f in body["files"]} == {
        "big.bin": "?", "long.txt": "?", "many.txt": "?", "more.txt": "?",
        "src/app.py": "M", "README": "D"}
    assert body["truncated"] is True
    assert changes.DIFF_LIMIT - 4 <= len(body["diff"].encode()) <= changes.DIFF_LIMIT
    assert "Binary files /dev/null and b/big.bin differ" in body["diff"]
    assert "Binary files /dev/null and b/long.txt differ" in body["diff"]
    assert "\n+1\n+2\n+3\n" in body["diff"] and "+560000" not in body["diff"]


def test_the_timeline_reads_a_bounded_log(repo: RepoInfo, ws: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent writes its commit messages, of any length: a commit whose message is
    12 MiB under a small one on top. The log is read to its bound, whole commits only: the
    small one is there, the long one is not, and nothing more than the bound was held."""
    done = agent(ws, "head -c $((12 << 20)) /dev/zero | tr '\\0' m > /tmp/msg-$$ && "
                     "git commit -q --allow-empty -F /tmp/msg-$$ && rm /tmp/msg-$$ && "
                     "git commit -q --allow-empty -m small")
    assert done.returncode == 0, done.stderr
    view = RepoView(key="", label="repo", primary=True, repo_path=str(repo.root),
                    base_ref="main", worktree_path=str(ws), container_path="/workspace")
    log = timeline_git.branch_log(repo, ws, view, BRANCH, ws.parent.parent / "shadows",
                                   max_bytes=LIMIT)
    assert [c[3].strip() for c in log.commits] == ["small"]
    # The control: with room for both, both are read.
    monkeypatch.setattr(timeline_git, "LOG_LIMIT", 16 << 20)
    log = timeline_git.branch_log(repo, ws, view, BRANCH, ws.parent.parent / "shadows",
                                   max_bytes=LIMIT)
    assert [len(c[3].strip()) for c in log.commits] == [5, 12 << 20]


def test_what_among_the_objects_is_not_a_file_is_named(tmp_path: Path) -> None:
    """Looked at once the container is gone: a FIFO where an object should be would keep
    host git waiting for a writer; a link would lead it anywhere."""
    ws = tmp_path / "ws"
    objects = ws / ".git" / "objects"
    (objects / "ab").mkdir(parents=True)
    (objects / "pack").mkdir()
    (objects / "info").mkdir()
    (objects / "ab" / ("c" * 38)).write_bytes(b"x")
    (objects / "info" / "alternates").symlink_to("/dev/zero")  # never read by host git
    assert workspaces.odd_object(ws) is None
    os.mkfifo(objects / "ab" / ("d" * 38))
    assert workspaces.odd_object(ws) == f".git/objects/ab/{'d' * 38} is not a regular file (other)"
    os.unlink(objects / "ab" / ("d" * 38))
    (objects / "pack" / "p.idx").symlink_to("/etc/passwd")
    assert workspaces.odd_object(ws) == ".git/objects/pack/p.idx is not a regular file (symlink)"
    os.unlink(objects / "pack" / "p.idx")
    (objects / "cd").symlink_to(tmp_path)
    assert workspaces.odd_object(ws) == ".git/objects/cd is not a folder (symlink)"
    assert workspaces.odd_object(tmp_path / "none") is not None


@pytest.mark.parametrize(("base", "floor", "stops"), [
    (True, "a" * 40, ["^base", "^" + "a" * 40]),
    (True, "", ["^base"]),  # a branch shorter than the listing: down to the base
    (False, "b" * 64, ["^" + "b" * 64]),
    (False, "", []),
    (True, "head~1000", ["^base"]),  # only an id stops the walk: never a name or an option
    (True, "--all", ["^base"]),
])
def test_the_log_stops_where_it_can(base: bool, floor: str, stops: list[str]) -> None:
    argv = timeline_git.log_argv(base=base, floor=floor)
    assert argv[argv.index("head") + 1:] == [*stops, "--"]


#: Commits on the branch from ``git fast-import``: ``$1`` on its line, then a merge of a
#: side line of ``$2`` (from a root of its own), then ``$3`` more.
MANY = r"""
b=$(git symbolic-ref --short HEAD)
perl -e '
    my ($b, $n, $side, $after) = @ARGV; my $t = 1700000000;
    sub one { my ($ref, $extra) = @_; $t++;
              print "commit $ref\ncommitter A <a\@x> $t +0000\ndata 2\nc\n$extra\n" }
    one("refs/heads/$b", "from refs/heads/$b^0\n");
    one("refs/heads/$b", "") for 2 .. $n;
    one("refs/heads/side", "") for 1 .. $side;
    one("refs/heads/$b", "merge refs/heads/side\n") if $side;
    one("refs/heads/$b", "") for 1 .. $after;' "$b" "$@" | git fast-import --quiet
git reset -q --soft "$b"
"""


@pytest.mark.parametrize("shape", [(3000, 0, 0), (1500, 1500, 10), (10, 2000, 10), (5, 0, 0)])
def test_the_timeline_lists_what_a_walk_of_the_whole_branch_lists(
        repo: RepoInfo, ws: Path, shape: tuple[int, int, int]) -> None:
    """However the branch is shaped (a long line, a long line merged in, a short one), the
    log that stops early lists the same newest commits in the same order as git's walk of
    the whole branch down to the base."""
    done = agent(ws, MANY.replace('"$@"', " ".join(map(str, shape))))
    assert done.returncode == 0, done.stderr
    base = repos.base_commit(repo, "main")
    whole = agent(ws, f"git log --topo-order --max-count={timeline_git.MAX_COMMITS} "
                      f"--format=%H HEAD ^{base}")
    assert whole.returncode == 0, whole.stderr
    view = RepoView(key="", label="repo", primary=True, repo_path=str(repo.root),
                    base_ref="main", worktree_path=str(ws), container_path="/workspace")
    log = timeline_git.branch_log(repo, ws, view, BRANCH, ws.parent.parent / "shadows",
                                   max_bytes=LIMIT)
    assert [c[0] for c in log.commits] == whole.stdout.split()
    assert len(log.commits) == min(sum(shape) + (1 if shape[1] else 0),
                                   timeline_git.MAX_COMMITS)


@pytest.mark.parametrize(("count", "named", "cut"), [
    (0, 0, False),
    (3, 3, False),
    (changes.FILES_LIMIT, changes.FILES_LIMIT, False),  # all of them, not cut
    (changes.FILES_LIMIT + 1, changes.FILES_LIMIT, True),  # one more: the first, cut
    (200_000, changes.FILES_LIMIT, True),
])
def test_a_diff_names_a_bounded_few_files(count: int, named: int, cut: bool) -> None:
    stat = b"".join(b"A\td/%06d\n" % i for i in range(count))
    body = changes._part(stat, {"d/000001"}, b"")
    assert len(body["files"]) == named and body["truncated"] is cut
    assert body["files"][:2] == [{"status": "A", "path": "d/000000"},
                                 {"status": "?", "path": "d/000001"}][:named]


def test_a_file_is_new_only_where_the_commit_compared_with_lacks_it() -> None:
    # Untracked in the checked-out commit, but the branch's commit has it: changed, not new.
    body = changes._part(b"A\tn\nM\tm\nD\td\n", {"n", "m"}, b"")
    assert body["files"] == [{"status": "?", "path": "n"}, {"status": "M", "path": "m"},
                             {"status": "D", "path": "d"}]


def _listed(*paths: str, cut: bool = False) -> dict[str, Any]:
    return {"files": [{"status": "M", "path": p} for p in paths], "diff": "", "truncated": cut}


@pytest.mark.parametrize(("work_tree", "uncommitted", "mark"), [
    (_listed("a"), _listed(), None),  # the work tree holds the commit
    (_listed(), _listed("a"), changes.UNDONE),  # put back as the fork has it
    (_listed("a"), _listed("a"), changes.DIFFERS),  # changed again, not committed
    (_listed("a", "b"), _listed("b"), None),  # another file's uncommitted change
    (_listed(), _listed("b", cut=True), changes.UNDONE),  # the whole work tree as the fork
    (_listed("a"), _listed("b", cut=True), changes.DIFFERS),  # not known: the worse
    (_listed(cut=True), _listed("a"), changes.DIFFERS),  # a cut work-tree list: not undone
    (_listed(cut=True), _listed("b"), None),  # the whole uncommitted list: as committed
    (_listed(cut=True), _listed(cut=True), changes.DIFFERS),
    (_listed(), None, None),  # no work tree read (a pod's branch)
    (None, _listed("a"), changes.DIFFERS),  # no fork known: never undone, still differing
    (None, _listed("b"), None),
])
def test_each_committed_file_says_what_the_work_tree_holds_of_it(
        work_tree: dict[str, Any] | None, uncommitted: dict[str, Any] | None,
        mark: str | None) -> None:
    committed = [{"status": "M", "path": "a"}]
    assert changes.marked(committed, work_tree, uncommitted) == [
        {"status": "M", "path": "a", "work_tree": mark}]


@pytest.mark.parametrize(("in_workspace", "brought_in", "head", "sent"), [
    ("w", "b", "h", "w"),  # a push brings the workspace's branch in first
    (None, "b", "h", "b"),  # unreadable (a link, a symbolic ref): as last brought in
    (None, None, "h", "h"),  # nothing known: the commit checked out
    # HEAD unreadable (an unborn branch checked out, garbage): the branch still says it.
    ("w", "b", None, "w"),
    ("w", None, None, "w"),
    # Neither HEAD nor the branch the next sync reads (a ref linked outside): nothing.
    (None, "b", None, None),
    (None, None, None, None),
])
def test_the_committed_part_is_the_commit_a_push_sends(
        in_workspace: str | None, brought_in: str | None, head: str | None,
        sent: str | None) -> None:
    assert changes.sent_tip(in_workspace=in_workspace, brought_in=brought_in,
                            head=head) == sent


@pytest.mark.parametrize(("stderr", "says"), [
    (b"fatal: Out of memory, malloc failed (tried to allocate 524288001 bytes)\n"
     b"fatal: fetch-pack: invalid index-pack output\n", "memory"),
    (b"error: unable to allocate 1 bytes\nfatal: index-pack failed\n", "memory"),
    (b"fatal: unable to create thread: Resource temporarily unavailable\n"
     b"fatal: index-pack failed\n", "memory"),
    (b"error: inflate: out of memory (no message)\nfatal: index-pack failed\n", "memory"),
    (b"fatal: refusing to fetch into branch 'refs/heads/x' checked out at '/r'\n",
     "check out another branch"),
    (b"fatal: couldn't find remote ref refs/heads/x\n", "couldn't find remote ref"),
])
def test_a_failed_fetch_says_why(stderr: bytes, says: str) -> None:
    """git's own words, and what to do: running out of memory is said on any line (a
    child of the fetch says it; the fetch's last line only says the child failed)."""
    proc = subprocess.CompletedProcess(["git"], 128, b"", stderr)
    assert says in branchsync.fetch_error(proc, "x", "could not").message


def test_a_workspace_made_again_at_the_agents_commit_costs_host_git_a_bounded_heap(
        repo: RepoInfo, ws: Path) -> None:
    """The agent commits a file of 300 MiB of one letter (300 KiB as an object), then a
    ``.gitattributes`` naming UTF-16 as its working-tree encoding, and the sync brings both
    in. It empties its workspace, ``.git`` and all: the next start makes the workspace anew
    at the branch as brought in, and host git checking it out converted the file whole, as
    it had no bound on its heap: 926 MiB of the host's memory. Now the checkout fails
    saying so, and nothing of the host's memory is taken."""
    done = agent(ws, "set -e; head -c $((300 << 20)) /dev/zero | tr '\\0' a > big; "
                     "git add big; echo 'big working-tree-encoding=UTF-16' > .gitattributes; "
                     "git add .gitattributes; git commit -qm enc; git rev-parse HEAD")
    assert done.returncode == 0, done.stderr
    tip = done.stdout.split()[-1]
    branchsync.sync_branch(repo, ws, BRANCH, tip, ws.parent.parent / "shadows", max_bytes=LIMIT)
    assert agent(ws, "rm -rf .git .gitattributes big README src").returncode == 0
    said = None
    with git_peak(AGENT_UID) as seen:
        try:
            workspaces.create_workspace(repo, ws, BRANCH, repos.branch_tip(repo, BRANCH) or "")
        except GitError as exc:
            said = exc.message
    assert max(seen) < 600 << 20, f"host git grew to {max(seen) >> 20} MiB"
    assert said is not None and "memory" in said, said


@pytest.mark.parametrize("synced", [True, False])
def test_a_pack_that_lies_about_the_users_objects_hides_nothing_from_the_diff(
        repo: RepoInfo, ws: Path, synced: bool) -> None:
    """The agent commits a backdoor, then packs its own ``src`` folder under the name of
    the fork's (:mod:`tests.support.forged_pack`). The diff reads the workspace's commit
    fetched into a shadow of the user's objects, each object named from its content: brought
    in already, the backdoor is shown; not yet, the lie leaves the fetch short of an object
    and the diff fails, saying so. Never a diff without it."""
    done = agent(ws, "echo backdoor >> src/app.py && git commit -qam typo")
    assert done.returncode == 0, done.stderr
    if synced:
        sync(repo, ws)
    done = agent(ws, forge("HEAD:src", "origin/main:src"))
    assert "lies=" in done.stdout, done.stdout + done.stderr
    scratch = ws.parent.parent / "shadows"
    if not synced:
        with pytest.raises(GitError, match="could not read the workspace's commit"):
            changes.diff(repo, ws, "main", scratch, branch=BRANCH,
                        max_bytes=LIMIT)
        return
    body = changes.diff(repo, ws, "main", scratch, branch=BRANCH,
                        max_bytes=LIMIT)
    assert {"status": "M", "path": "src/app.py"} in body["files"], body["files"]
    assert "+backdoor" in body["diff"]
    assert not scratch.exists()


@pytest.mark.parametrize(("source", "ref", "into", "refspec"), [
    ("/s/git", "sync", BRANCH, f"+refs/heads/sync:refs/heads/{BRANCH}"),
    ("/s/git", "head", "head", "+refs/heads/head:refs/heads/head"),
])
def test_a_fetch_of_an_agents_commit_takes_one_branch_and_no_more(
        source: str, ref: str, into: str, refspec: str) -> None:
    argv = branchsync.fetch_argv(Path(source), ref, into)
    assert argv[-3:] == ["--end-of-options", source, refspec]
    assert {"--no-tags", "--no-recurse-submodules", "--no-auto-gc"} <= set(argv)
    assert argv[:2] == ["-c", f"core.bigFileThreshold={hostgit.STREAM_SIZE}"]


def test_an_object_that_answers_two_ways_is_counted_as_it_comes_in(repo: RepoInfo,
                                                                    ws: Path) -> None:
    """The agent commits 64 MiB of zeros, then packs them twice: honestly, beside a copy
    of the user's ``main`` commit, and, in a newer pack, a file of two bytes named as the
    zeros (:mod:`tests.support.forged_pack`). git looks in the pack it last found something
    in first: the count, which asks for the zeros first, read two bytes; the fetch, which
    reads ``main`` first (what the user's repository has), sent 64 MiB, over a 32 MiB
    limit. What is counted is now what came in, so the sync is refused."""
    done = agent(ws, """set -e
        head -c $((64 << 20)) /dev/zero > zeros && git add zeros && git commit -qm zeros
        p=$(git rev-parse HEAD:zeros origin/main | git pack-objects -q .git/objects/pack/pack)
        touch -d 2029-01-01 .git/objects/pack/pack-$p.*
        echo "small=$(echo x | git hash-object -w --stdin)"
        """)
    assert done.returncode == 0, done.stderr
    small = done.stdout.split("small=")[1].split()[0]
    done = agent(ws, forge(small, "HEAD:zeros") + "git cat-file -s HEAD:zeros")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "2"  # the control: the newer pack answers first
    before = sh(repo.root, "rev-parse", BRANCH)
    tip = workspaces.read_tip(ws, BRANCH)
    assert tip is not None
    with pytest.raises(GitError, match="64 MiB, more than the 32 MiB"):
        branchsync.sync_branch(repo, ws, BRANCH, tip, ws.parent.parent / "shadows",
                               max_bytes=32 << 20)
    assert sh(repo.root, "rev-parse", BRANCH) == before


@pytest.mark.parametrize(("listing", "links"), [
    (b":160000 160000 aaaaaaa 0123456 M\tvendor/lib\n", {"vendor/lib"}),
    (b":000000 160000 0000000 0123456 A\tnew\n", {"new"}),
    (b":160000 000000 aaaaaaa 0000000 D\tgone\n", {"gone"}),
    (b":100644 160000 1111111 0123456 T\tswapped\n", {"swapped"}),
    (b":100644 100644 1111111 2222222 M\tsrc/160000\n", set()),
    (b":100644 100644 1111111 2222222 M\t160000 160000\n", set()),
    (b"", set()),
])
def test_a_submodule_on_either_side_of_a_listing_is_named(listing: bytes,
                                                          links: set[str]) -> None:
    assert changes.gitlinks(listing) == links


def test_a_submodule_is_never_marked_by_a_work_tree_that_never_read_it() -> None:
    """The work tree's diffs never name a submodule: one the commit changes is not said to be
    undone (nor to differ), while a file beside it still is."""
    committed = [{"status": "M", "path": "vendor/lib"}, {"status": "M", "path": "src/app.py"}]
    empty = {"files": [], "truncated": False}
    assert changes.marked(committed, empty, empty, {"vendor/lib"}) == [
        {"status": "M", "path": "vendor/lib", "work_tree": None},
        {"status": "M", "path": "src/app.py", "work_tree": changes.UNDONE}]


def test_a_pods_branch_that_repoints_a_submodule_names_it(repo: RepoInfo) -> None:
    """A pod's branch as fetched into the person's repository (no work tree read): a commit
    that points the person's submodule at another commit is named with its new commit,
    whatever a ``.gitmodules`` on the branch says to ignore."""
    elsewhere = "0123456789abcdef0123456789abcdef01234567"
    root = repo.root
    sh(root, "update-index", "--add", "--cacheinfo", f"160000,{'a' * 40},vendor/lib")
    sh(root, "commit", "-qm", "vendor lib")
    sh(root, "checkout", "-qb", BRANCH)
    sh(root, "update-index", "--cacheinfo", f"160000,{elsewhere},vendor/lib")
    (root / ".gitmodules").write_text('[submodule "lib"]\n\tpath = vendor/lib\n'
                                      '\turl = ./lib\n\tignore = all\n')
    sh(root, "add", ".gitmodules")
    sh(root, "commit", "-qm", "tidy")
    sh(root, "checkout", "-q", "main")
    body = changes.branch_diff(repo, BRANCH, "main")
    assert body["committed"]["files"] == [
        {"status": "A", "path": ".gitmodules", "work_tree": None},
        {"status": "M", "path": "vendor/lib", "work_tree": None}]
    assert f"+Subproject commit {elsewhere}" in body["committed"]["diff"], body
    assert [f["path"] for f in body["files"]] == [".gitmodules", "vendor/lib"]
    assert body["uncommitted"] is None
