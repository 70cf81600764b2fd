"""The user's repositories and host git, with real git in a temporary folder.

Repositories belong to uid 1000 (the agent's uid), as on a real machine: the appliance runs
as root here and must run git as that owner, never as root.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from appliance import hostgit, repos
from appliance.errors import GitError, InvalidInput
from appliance.hostgit import Owner
from tests.conftest import AGENT_UID, make_repo

OWNER = Owner(uid=AGENT_UID, gid=AGENT_UID)


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "safe.directory=*", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = make_repo(tmp_path / "repo", owner=0, files={"README": "one\n", "pkg/web/app.js": "1\n"})
    (r / "README").write_text("two\n")
    sh(r, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "two")
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(r)], check=True)
    return r


def _invalid_repo(path: str | Path) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        repos.inspect_repo(path)
    assert info.value.field == "repo_path"
    return info.value


def test_missing_path(tmp_path: Path) -> None:
    assert "does not exist" in _invalid_repo(tmp_path / "nope").message


def test_not_a_folder(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    os.chown(f, AGENT_UID, AGENT_UID)
    assert "not a folder" in _invalid_repo(f).message


def test_not_a_repository(tmp_path: Path) -> None:
    d = tmp_path / "plain"
    d.mkdir()
    os.chown(d, AGENT_UID, AGENT_UID)
    assert "git init" in _invalid_repo(d).message


def test_a_git_that_cannot_read_the_repository_says_what_it_said(tmp_path: Path) -> None:
    """A ``.git`` is there but git refuses it: the error quotes git, not "run git init"."""
    d = tmp_path / "broken"
    d.mkdir()
    (d / ".git").write_text(f"gitdir: {tmp_path / 'gone'}\n")
    os.chown(d, AGENT_UID, AGENT_UID)
    os.chown(d / ".git", AGENT_UID, AGENT_UID)
    message = _invalid_repo(d).message
    assert "git init" not in message
    assert "cannot read the repository" in message and "not a git repository" in message


def test_relative_path() -> None:
    assert "absolute" in _invalid_repo("src/app").message


def test_no_commit_yet(tmp_path: Path) -> None:
    d = tmp_path / "empty"
    d.mkdir()
    sh(d, "init", "-q")
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(d)], check=True)
    assert "no commit" in _invalid_repo(d).message


def test_bare_repository(tmp_path: Path) -> None:
    d = tmp_path / "bare.git"
    d.mkdir()
    sh(d, "init", "-q", "--bare")
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(d)], check=True)
    assert "bare" in _invalid_repo(d).message


def test_a_repository_of_root_is_refused(tmp_path: Path) -> None:
    r = make_repo(tmp_path / "rootrepo", owner=0)
    assert "belongs to root" in _invalid_repo(r).message


def test_repo_root_and_subdirectory(repo: Path) -> None:
    info = repos.inspect_repo(repo)
    assert info.root == repo.resolve() and info.subdirectory == ""
    assert info.common_dir == (repo / ".git").resolve()
    assert (info.owner_uid, info.owner_gid) == (AGENT_UID, AGENT_UID)
    sub = repos.inspect_repo(repo / "pkg" / "web")
    assert sub.root == repo.resolve() and sub.subdirectory == "pkg/web"


@pytest.mark.parametrize(("said", "root", "common"), [
    (b"/r\n.git\nfalse\n", "/r", "/w/sub/.git"),  # relative: to the folder asked about
    (b"/r\n/r/.git\nfalse\n", "/r", "/r/.git"),
    (b"/r\n/elsewhere/common\nfalse\n", "/r", "/elsewhere/common"),  # a linked worktree's
])
def test_the_toplevel_git_names(said: bytes, root: str, common: str) -> None:
    assert repos._toplevel(Path("/w/sub"), said) == (Path(root), Path(common))


def test_a_bare_toplevel_is_refused() -> None:
    with pytest.raises(InvalidInput, match="is a bare repository") as info:
        repos._toplevel(Path("/w/b.git"), b"/w/b.git\n.\ntrue\n")
    assert info.value.field == "repo_path"


def test_refs(repo: Path) -> None:
    info = repos.repo_facts(repo)
    assert repos.current_branch(info) == "main"
    assert repos.resolve_ref(info, "main") == sh(repo, "rev-parse", "main")
    sh(repo, "tag", "v1", "HEAD~1")
    assert repos.resolve_ref(info, "v1") == sh(repo, "rev-parse", "HEAD~1")
    assert not repos.branch_exists(info, "clauderon/x")
    first = sh(repo, "rev-parse", "HEAD~1")
    repos.create_branch(info, "clauderon/x", first)
    repos.create_branch(info, "clauderon/x", sh(repo, "rev-parse", "HEAD"))  # kept as it is
    assert repos.branch_tip(info, "clauderon/x") == first
    ref = repo / ".git" / "refs" / "heads" / "clauderon" / "x"
    assert ref.stat().st_uid == AGENT_UID  # written as the owner, not as root


@pytest.mark.parametrize("ref", ["nope", "HEAD~9", "-x", "--output=/tmp/x", "main..", ""])
def test_resolve_ref_errors(repo: Path, ref: str) -> None:
    with pytest.raises(InvalidInput) as info:
        repos.resolve_ref(repos.repo_facts(repo), ref)
    assert info.value.field == "base"


def test_borrowed_object_dirs_follow_alternates(repo: Path, tmp_path: Path) -> None:
    other = make_repo(tmp_path / "other", owner=AGENT_UID)
    objects = repo / ".git" / "objects"
    (objects / "info" / "alternates").write_text(f"# comment\n{other}/.git/objects\n")
    (other / ".git" / "objects" / "info" / "alternates").write_text(f"{objects}\n")  # a loop
    assert repos.borrowed_object_dirs(objects) == [objects.resolve(),
                                                   (other / ".git" / "objects").resolve()]


# --- hostgit ------------------------------------------------------------------------
def test_git_env_is_clean() -> None:
    env = hostgit.git_env({"PATH": "/bin", "GIT_DIR": "/evil", "GIT_CONFIG_GLOBAL": "/evil",
                           "GIT_EXTERNAL_DIFF": "/evil", "LD_PRELOAD": "/evil.so",
                           "HOME": "/root"})
    assert env["PATH"] == "/bin" and env["HOME"] == "/nonexistent"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    assert "GIT_DIR" not in env and "GIT_EXTERNAL_DIFF" not in env and "LD_PRELOAD" not in env


def test_git_argv_turns_off_what_runs_programs() -> None:
    argv = hostgit.git_argv(["status"])
    for setting in ("core.hooksPath=/dev/null", "core.fsmonitor=false",
                    "protocol.allow=never", "credential.helper="):
        assert setting in argv
    assert argv[-1] == "status" and "safe.directory=*" not in " ".join(argv)


@pytest.mark.parametrize(("memory", "files", "limits"), [
    (None, None, None),
    (512 << 20, None, "ulimit -d 524288 && exec \"$@\""),
    (None, 1000, "ulimit -f 2 && exec \"$@\""),  # blocks of 512, rounded up
    (512 << 20, 32 << 20, "ulimit -d 524288 && ulimit -f 65536 && exec \"$@\""),
])
def test_a_bounded_git_is_started_by_sh_with_its_limits(memory: int | None, files: int | None,
                                                         limits: str | None) -> None:
    argv = hostgit.bounded_argv(["git", "status"], memory, files)
    if limits is None:
        assert argv == ["git", "status"]
    else:
        assert argv == ["sh", "-c", limits, "git", "git", "status"]


def test_a_git_whose_file_outgrows_its_bound_fails(repo: Path) -> None:
    """``files`` holds each file git writes: an object of 4 KiB is no file of 1 KiB."""
    big = hostgit.run(["hash-object", "-w", "--stdin"], owner=OWNER, cwd=repo, check=False,
                      input=os.urandom(4096), files=1024)
    assert big.returncode != 0
    small = hostgit.run(["hash-object", "-w", "--stdin"], owner=OWNER, cwd=repo, check=False,
                        input=b"x", files=1024)
    assert small.returncode == 0, small.stderr  # the control


def test_git_runs_as_the_owner(repo: Path) -> None:
    out = hostgit.run(["var", "GIT_COMMITTER_IDENT"], owner=OWNER, cwd=repo, check=False,
                      env={"GIT_COMMITTER_NAME": "n", "GIT_COMMITTER_EMAIL": "e@x"})
    assert out.returncode == 0
    probe = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo), "config",
                            "alias.whoami", "!id -u > whoami"], check=True)
    assert probe.returncode == 0
    hostgit.run(["whoami"], owner=OWNER, cwd=repo, check=False)
    assert (repo / "whoami").read_text().strip() == str(AGENT_UID)


def test_a_bounded_read_stops_git_past_the_bound_or_the_time(repo: Path) -> None:
    """``limit``: at most that many bytes and one more are read, then git is stopped and
    the answer is not a failure; a git still running at ``timeout`` is a GitError."""
    whole = hostgit.run(["log", "--format=%H%n%B", "-z"], owner=OWNER, cwd=repo).stdout
    assert len(whole) > 50
    cut = hostgit.run(["log", "--format=%H%n%B", "-z"], owner=OWNER, cwd=repo, limit=10)
    assert cut.stdout == whole[:11]
    assert hostgit.run(["log", "--format=%H"], owner=OWNER, cwd=repo,
                       limit=1 << 20).stdout == hostgit.run(["log", "--format=%H"],
                                                            owner=OWNER, cwd=repo).stdout
    # Our own argument list (an alias given on the command line) stands in for a slow git.
    with pytest.raises(GitError, match="took over"):
        hostgit.run(["-c", "alias.slow=!sleep 30", "slow"], owner=OWNER, cwd=repo,
                    limit=10, timeout=0.5)


def test_owner_can_reach(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    (closed / "inner").mkdir(parents=True)
    os.chmod(closed, 0o700)
    if os.geteuid() == 0:
        assert hostgit.owner_can_reach(closed / "inner", OWNER) == closed
        os.chmod(closed, 0o711)
    assert hostgit.owner_can_reach(closed / "inner", OWNER) is None


def test_a_base_named_by_an_object_is_kept_as_its_full_commit(repo: Path) -> None:
    """A short name can come to name two commits (any session's sync brings commits in);
    a branch or tag is kept as named, and so is a ref whose name reads as hex."""
    info = repos.repo_facts(repo)
    head = sh(repo, "rev-parse", "HEAD")
    assert repos.kept_base(info, head[:7]) == head
    assert repos.kept_base(info, head.upper()) == head
    assert repos.kept_base(info, "main") == "main"
    sh(repo, "branch", "cafe", "HEAD~1")
    assert repos.kept_base(info, "cafe") == "cafe"
    assert repos.kept_base(info, "HEAD") == "HEAD"
    with pytest.raises(InvalidInput):
        repos.kept_base(info, "0000000")
    assert [repos.is_object_name(r) for r in ("abc", "abcd", "ABCDEF12", "abcg", "a" * 65)] \
        == [False, True, True, False, False]


@pytest.mark.parametrize(("packs", "left"), [(repos.PACK_LIMIT, repos.PACK_LIMIT),
                                             (repos.PACK_LIMIT + 1, 1)])
def test_packs_past_the_limit_are_rolled_up_keeping_every_object(
        tmp_path: Path, packs: int, left: int) -> None:
    """At the limit nothing is done; past it, packs of one size roll up into one, and an
    object nothing reaches (the person's, in a pack or loose) is kept."""
    root = make_repo(tmp_path / "r", owner=0)
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@x"}
    for i in range(packs):
        (root / "f").write_text(f"{i}\n")
        sh(root, "add", "f")
        subprocess.run(["git", "commit", "-qm", str(i)], cwd=root, check=True, env=env)
        sh(root, "repack", "-q")
    (root / "lone").write_text("nothing reaches me\n")
    packed = sh(root, "hash-object", "-w", "lone")
    sh(root, "repack", "-q")
    (root / "lone").write_text("nor me\n")
    loose = sh(root, "hash-object", "-w", "lone")
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(root)], check=True)
    info = repos.repo_facts(root)
    assert repos.pack_count(info) == packs
    repos.roll_up(info)
    assert repos.pack_count(info) == left
    assert sh(root, "cat-file", "-p", packed) == "nothing reaches me"
    assert sh(root, "cat-file", "-p", loose) == "nor me"


@pytest.mark.parametrize(("url", "clean"), [
    ("https://github.com/o/r.git", "https://github.com/o/r.git"),
    ("https://x-access-token:ghp_secret@github.com/o/r.git", "https://github.com/o/r.git"),
    ("https://person@git.example.test:8443/o/r", "https://git.example.test:8443/o/r"),
    ("https://:pw@GitHub.com/o/r.git#frag", "https://github.com/o/r.git"),
    ("http://github.com/o/r.git", None),
    ("git@github.com:o/r.git", None),
    ("ssh://git@github.com/o/r.git", None),
    ("https:///nohost", None),
    ("https://git.example.test/o/r.git?private_token=glpat-secret", "https://git.example.test/o/r.git"),
    ("https://[fd00::1]:8443/o/r.git", "https://[fd00::1]:8443/o/r.git"),
    ("https://tok@[fd00::1]/o/r.git", "https://[fd00::1]/o/r.git"),
    ("https://github.com:notaport/o/r.git", None),
    ("", None),
    (None, None),
])
def test_the_remote_an_agent_is_given_holds_no_credential(url: str | None,
                                                            clean: str | None) -> None:
    assert repos.clean_remote(url) == clean


def test_a_repositorys_github_remotes_are_every_remote_on_github_once(repo: Path) -> None:
    """What a session's writes on GitHub may reach: each remote on github.com (https or
    ssh, ``.git`` or not), in order, once; remotes elsewhere are none of GitHub's."""
    for name, url in (("origin", "https://github.com/me/fork.git"),
                      ("upstream", "git@github.com:Them/App.git"),
                      ("again", "https://github.com/me/fork"),
                      ("mirror", "https://gitlab.com/me/fork.git"),
                      ("local", "/srv/git/fork.git")):
        sh(repo, "remote", "add", name, url)
    assert repos.github_remotes(repo, OWNER) == ("me/fork", "Them/App")


def test_a_repository_without_remotes_has_no_github_repository(repo: Path) -> None:
    assert repos.github_remotes(repo, OWNER) == ()


def test_a_session_made_before_its_github_repositories_were_recorded_gets_them_at_start(
        repo: Path, tmp_path: Path) -> None:
    """A session made before the appliance recorded its GitHub repositories has none on its
    row (NULL), so the proxy lets it write to no repository on GitHub, its own branch's
    push included; the reconciler's start reads them from its repository's remotes as a
    create does, and a repository that is gone gives none, never another's."""
    from dataclasses import replace

    from appliance.admission import fill_github_repos
    from appliance.proxystore import credentials, github_repos
    from appliance.store import Store
    from tests.unit.test_store import make_session

    sh(repo, "remote", "add", "origin", "https://github.com/octo/app.git")
    sh(repo, "remote", "add", "mirror", "https://gitlab.com/octo/app.git")
    store = Store.open(tmp_path / "db.sqlite")
    try:
        old = store.insert_session(replace(make_session("old"), repo_path=str(repo)))
        gone = store.insert_session(replace(make_session("gone"),
                                            repo_path=str(tmp_path / "moved-away")))
        new = store.insert_session(replace(make_session("new"), repo_path=str(repo),
                                           github_repos=("made/later",)))
        with store.transaction() as conn:  # as the upgrade leaves the sessions made before
            conn.execute("UPDATE sessions SET github_repos = NULL WHERE id != ?", (new.id,))
        seen = {r["name"]: github_repos(r["github_repos"]) for r in credentials(store)}
        assert seen == {"old": frozenset(), "gone": frozenset(), "new": {"made/later"}}

        assert sorted(fill_github_repos(store)) == ["gone", "old"]
        seen = {r["name"]: github_repos(r["github_repos"]) for r in credentials(store)}
        assert seen == {"old": {"octo/app"}, "gone": frozenset(), "new": {"made/later"}}
        got = store.get_session(old.id)
        assert got is not None and got.github_repos == ("octo/app",)
        assert store.get_session(gone.id) is not None
        assert fill_github_repos(store) == []  # once: a session recorded is left as it is
    finally:
        store.close()
