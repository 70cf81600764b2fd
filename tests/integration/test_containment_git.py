"""The hostile agent against the user's repository, from inside real session containers.

Every attack runs as the agent's uid (1000) in a container of the agent image (it has git),
created by the real appliance (API, reconciler) on the real engine. The host then does all
it ever does with git — create sessions on the same repository, read the diff and the files,
bring the session branch in, archive, delete — and the user runs their own git in their
repository. Nothing the agent wrote may run on the host, and no ref but the session's own
branch may move.

When the user sees the agent's commits: on the reconciler's next pass after the commit.
Any hook event of the agent (every tool call) wakes it at once; ``resync_seconds`` (2 s by
default, 0.5 s here) bounds it otherwise. The tests wait for it, bounded.
"""

from __future__ import annotations

import os
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import ClauderonError
from cli import calls
from tests.conftest import AGENT_UID, make_traversable, user_git
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance, running, wait_for

HOOKS = ("pre-commit", "post-commit", "post-checkout", "post-merge", "pre-push", "post-update",
         "reference-transaction", "pre-auto-gc", "post-index-change", "fsmonitor-watchman",
         "push-to-checkout", "update", "pre-receive", "post-receive", "post-rewrite",
         "prepare-commit-msg", "commit-msg", "pre-rebase", "sendemail-validate",
         "p4-pre-submit", "proc-receive", "pre-applypatch", "post-applypatch",
         "applypatch-msg", "pre-merge-commit")


def refs(repo: Path) -> dict[str, str]:
    out = user_git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ", 1) for line in out.splitlines())


def synced(app: Appliance, repo: Path, session: dict[str, Any], commit: str) -> None:
    wait_for(lambda: refs(repo).get(f"refs/heads/{session['branch']}") == commit,
             what=f"{session['branch']} to reach {commit[:8]} in the user's repository")


def test_the_agent_commits_amends_and_rebases_and_the_user_sees_it(
        app: Appliance, repo: Path) -> None:
    s = create(app, repo, "worker")
    _, out = in_container(app, s, "git status --short && git log --oneline | wc -l && "
                                  "echo one > one.txt && git add one.txt && git commit -qm one && "
                                  "echo two >> one.txt && git commit -qam two && "
                                  "git commit -q --amend -m two-amended && "
                                  "git rebase -q origin/main && git rev-parse HEAD")
    head = out.split()[-1]
    synced(app, repo, s, head)
    assert user_git(repo, "log", "--format=%s", s["branch"]).splitlines()[:2] == [
        "two-amended", "one"]
    # A rewrite (the agent's own branch: allowed) is brought in too.
    _, out = in_container(app, s, "git reset -q --hard HEAD~1 && git commit -q --allow-empty "
                                  "-m again && git rev-parse HEAD")
    synced(app, repo, s, out.split()[-1])
    events = app.client().get(f"/api/sessions/{s['id']}/events")["events"]
    assert any(e["kind"] == "branch_synced" for e in events)


def plant(app: Appliance, s: dict[str, Any], markers: Path) -> None:
    """Every way the agent's repository could ask the host to run something: each payload
    touches a file in ``markers``, a host folder the container cannot see."""
    m = str(markers)
    lines = ["set -e", "mkdir -p .git/hooks evil-hooks .git/info",
             "printf '* filter=evil diff=evil merge=evil\\n' > .gitattributes",
             "git add .gitattributes && git commit -qm attrs"]
    for name in HOOKS:
        for folder in (".git/hooks", "evil-hooks"):
            lines.append(f"printf '#!/bin/sh\\ntouch {m}/hook-{name}\\ntouch /tmp/ran-{name}\\n'"
                         f" > {folder}/{name}; chmod +x {folder}/{name}")
    config = {
        "core.fsmonitor": f"touch {m}/fsmonitor", "core.hooksPath": "/workspace/evil-hooks",
        "core.sshCommand": f"touch {m}/ssh", "core.pager": f"touch {m}/pager",
        "core.editor": f"touch {m}/editor", "core.askPass": f"touch {m}/askpass",
        "filter.evil.clean": f"touch {m}/clean; cat", "filter.evil.smudge": f"touch {m}/smudge",
        "filter.evil.process": f"touch {m}/process", "filter.evil.required": "true",
        "diff.evil.command": f"touch {m}/diffcmd", "diff.evil.textconv": f"touch {m}/textconv",
        "diff.external": f"touch {m}/external", "merge.evil.driver": f"touch {m}/merge",
        "include.path": "/workspace/extra.cfg", "includeIf.gitdir:/.path": "/workspace/extra.cfg",
        "extensions.worktreeConfig": "true", "uploadpack.packObjectsHook": f"touch {m}/pack",
        "core.alternateRefsCommand": f"touch {m}/altrefs", "credential.helper": f"!touch {m}/cred",
        "gpg.program": f"touch {m}/gpg", "commit.gpgSign": "false",
        "protocol.allow": "always", "core.gitProxy": f"touch {m}/gitproxy",
    }
    for key, value in config.items():
        lines.append(f"git config '{key}' '{value}'")
    lines += [
        f"printf '[core]\\n\\tfsmonitor = touch {m}/included\\n' > extra.cfg",
        f"printf '[core]\\n\\tfsmonitor = touch {m}/config-worktree\\n' > .git/config.worktree",
        "printf '* filter=evil diff=evil\\n' > .git/info/attributes",
        # Alternates that point into the host's secrets, and a nested chain.
        "echo /etc >> .git/objects/info/alternates",
        "echo changed >> README.md && echo new > untracked.txt",
    ]
    in_container(app, s, "\n".join(lines))


def test_nothing_the_agent_writes_runs_on_the_host(app: Appliance, repo: Path,
                                                   tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    os.chmod(markers, 0o777)
    s = create(app, repo, "hostile")
    plant(app, s, markers)
    # Positive control: the planted hooks do run for the agent's own git, in its container.
    in_container(app, s, "git -c core.fsmonitor=false hook run pre-commit")
    code, _ = in_container(app, s, "ls /tmp/ran-pre-commit", ok=False)
    assert code == 0
    _, out = in_container(app, s, "git -c core.fsmonitor=false rev-parse HEAD")
    synced(app, repo, s, out.split()[-1])
    # Everything the host does with a session and its repository.
    diff = app.client().get(f"/api/sessions/{s['id']}/diff")
    assert {"status": "?", "path": "untracked.txt"} in diff["files"]
    app.client().get(f"/api/sessions/{s['id']}/files")
    other = create(app, repo, "second")  # another session on the same repository
    app.client().get(f"/api/sessions/{other['id']}/diff")
    app.cli("archive", "hostile")
    app.wait_phase("hostile", "archived")
    app.cli("unarchive", "hostile")
    app.wait_phase("hostile", "running")
    # The user's own git, on their repository and on the branch the agent made.
    for args in (("status",), ("log", "-p", s["branch"]), ("diff", "main", s["branch"]),
                 ("checkout", "-q", s["branch"]), ("checkout", "-q", "main"),
                 ("gc", "--quiet"), ("fsck", "--no-progress")):
        user_git(repo, *args)
    app.cli("delete", "--force", "hostile")
    wait_for(lambda: not app.containers(s["id"]), what="the session to go")
    assert sorted(p.name for p in markers.iterdir()) == []


def test_the_agent_moves_no_ref_but_its_own(app: Appliance, repo: Path) -> None:
    user_git(repo, "tag", "v1")
    victim = create(app, repo, "victim")
    s = create(app, repo, "forger")
    before = refs(repo)
    _, out = in_container(app, s, "\n".join([
        "set -e",
        "git commit -q --allow-empty -m forged",
        "git update-ref refs/heads/main HEAD",
        f"git update-ref refs/heads/{victim['branch']} HEAD",
        "git tag -f v1 HEAD",
        # What would change what the user's main shows, were it brought in.
        "git replace -f $(git rev-parse origin/main) HEAD",
        "git notes add -f -m forged-note origin/main",
        "printf '%s refs/heads/main\\n' $(git rev-parse HEAD) >> .git/packed-refs",
        "git rev-parse HEAD",
    ]))
    forged = out.split()[-1]
    synced(app, repo, s, forged)
    after = refs(repo)
    assert after.pop(f"refs/heads/{s['branch']}") == forged
    before.pop(f"refs/heads/{s['branch']}")
    assert after == before  # main, the other session's branch and the tag are untouched,
    # and no replace ref or note came with the branch
    assert "forged" not in user_git(repo, "log", "--format=%s%n%N", "main")
    # The user's git directory is not there to be written; its objects are read-only.
    git_dir = str(repo / ".git")
    code, out = in_container(app, s, f"ls -A {git_dir}; touch {git_dir}/objects/x; "
                                     f"rm -rf {git_dir}/objects/*; "
                                     f"git --git-dir={git_dir} update-ref refs/heads/main HEAD",
                             ok=False)
    assert code != 0 and out.split()[0] == "objects"
    assert "Read-only file system" in out
    assert refs(repo) == {**before, f"refs/heads/{s['branch']}": forged}
    user_git(repo, "fsck", "--strict", "--no-progress")


def test_a_forged_ref_never_makes_the_host_read_outside(app: Appliance, repo: Path) -> None:
    canary = "CANARY-secret-9a7c3"
    (app.settings.secrets_dir / "token").write_text(canary)
    s = create(app, repo, "sneaky")
    branch_ref = f".git/refs/heads/{s['branch']}"
    in_container(app, s, f"ln -sf {app.settings.secrets_dir}/token {branch_ref} && "
                         f"ln -sf {app.settings.secrets_dir} .git/objects/pack/evil && "
                         "echo x > x")
    with pytest.raises(ClauderonError) as refused:  # the branch is unreadable: no diff
        app.client().get(f"/api/sessions/{s['id']}/diff")
    assert "no readable HEAD" in refused.value.message
    for path in ("", ".git", "x"):
        try:
            body = app.client().run(
                calls.get(f"/api/sessions/{s['id']}/file", {"path": path}))
        except ClauderonError as exc:  # a refusal is fine; a leak is not
            body = exc.message
        assert canary not in str(body)
    events = app.client().get(f"/api/sessions/{s['id']}/events")["events"]
    assert canary not in str(events)
    assert refs(repo)[f"refs/heads/{s['branch']}"] == refs(repo)["refs/heads/main"]


def test_the_remote_a_workspace_names_holds_no_credential(app: Appliance, repo: Path) -> None:
    """A person who cloned with a token in the URL: the workspace's ``origin`` is the
    remote without it (the proxy injects the credential), so the agent reads no token in
    its own ``.git/config``."""
    canary = "ghp-URL-CANARY-5d1e8b"
    user_git(repo, "remote", "add", "origin",
             f"https://x-access-token:{canary}@github.com/owner/app.git")
    s = create(app, repo, "reader")
    _, out = in_container(app, s, "git config --get remote.origin.url; cat .git/config")
    assert canary not in out, out
    assert out.splitlines()[0] == "https://github.com/owner/app.git"


def test_the_users_gc_and_prune_never_break_a_live_session(app: Appliance, repo: Path) -> None:
    s = create(app, repo, "durable")
    _, out = in_container(app, s, "echo a > a && git add a && git commit -qm a && "
                                  "git rev-parse HEAD")
    synced(app, repo, s, out.split()[-1])
    user_git(repo, "worktree", "prune")
    user_git(repo, "-c", "gc.reflogExpire=now", "-c", "gc.reflogExpireUnreachable=now",
             "gc", "--quiet", "--prune=now")
    _, out = in_container(app, s, "git fsck --no-progress && git log --oneline | wc -l && "
                                  "echo b > b && git add b && git commit -qm b && "
                                  "git rev-parse HEAD")
    assert out.split()[-2] == "2"
    synced(app, repo, s, out.split()[-1])


def test_delete_brings_the_last_commit_in_and_keeps_the_branch(app: Appliance,
                                                              repo: Path) -> None:
    s = create(app, repo, "last")
    app.stop("reconciler")  # no pass may bring it in before the delete does
    _, out = in_container(app, s, "git commit -q --allow-empty -m final && git rev-parse HEAD")
    app.cli("delete", "--force", "--no-wait", "last")
    app.start("reconciler")
    wait_for(lambda: not Path(s["worktree_path"]).exists(), what="the workspace to go")
    assert refs(repo)[f"refs/heads/{s['branch']}"] == out.split()[-1]


def test_an_agent_that_breaks_its_git_loses_no_work(app: Appliance, repo: Path) -> None:
    """The agent replaces its ``.git`` with a link to the appliance's ``secrets/`` (by
    mistake, ``rm -rf .git``, or to steer the host): the folder still stands, so no pass
    takes it for gone and remakes it; a container lost anyway is made again around the
    agent's files with the repository mended, the link removed and never followed; a delete
    keeps the files aside, and the branch as last brought in stays."""
    secrets = sorted(p.name for p in app.settings.secrets_dir.iterdir())
    s = create(app, repo, "careless")
    witness = create(app, repo, "witness")
    _, out = in_container(app, s, "echo done > done.txt && git add done.txt && "
                                  "git commit -qm done && git rev-parse HEAD")
    done = out.split()[-1]
    synced(app, repo, s, done)
    in_container(app, s, f"echo draft > draft.txt && rm -rf .git && "
                         f"ln -s {app.settings.secrets_dir} .git")
    [before] = app.containers(s["id"])
    # A later pass: the witness's commit is brought in by a pass that saw the broken .git.
    _, out = in_container(app, witness, "git commit -q --allow-empty -m w && git rev-parse HEAD")
    synced(app, repo, witness, out.split()[-1])
    assert [c.id for c in app.containers(s["id"])] == [before.id]
    assert app.client().get("/api/reconcile")["in_sync"]
    checks = {c["name"]: c for c in app.client().get(f"/api/sessions/{s['id']}/health")["checks"]}
    assert checks["workspace"]["verdict"] == "warn", checks["workspace"]
    assert checks["workspace"]["fix"] == "recreate", checks["workspace"]
    before.remove(force=True)
    wait_for(lambda: [c for c in app.containers(s["id"])
                      if c.id != before.id and c.status == "running"],
             timeout=120, what="a new container for the lost one")
    s = app.wait_phase("careless", "running")
    _, out = in_container(app, s, "cat done.txt draft.txt && git symbolic-ref --short HEAD && "
                                  "git rev-parse HEAD && git status --porcelain && "
                                  "test -d .git && ! test -L .git && echo real")
    assert out.split() == ["done", "draft", s["branch"], done, "??", "draft.txt", "real"], out
    in_container(app, s, "echo later > later.txt && rm -rf .git")
    deleted = app.cli("delete", "--force", "careless").stdout
    kept = app.settings.kept_dir / f"careless-{s['id'][:8]}"
    assert f"\n  workspace kept at {kept} (the workspace has no repository (.git)" in deleted, \
        deleted
    assert sorted(p.name for p in kept.iterdir()) == [
        ".git", "README.md", "done.txt", "draft.txt", "later.txt", "src"]
    assert not Path(s["worktree_path"]).exists()
    seen: list[dict[str, Any]] = []
    with closing(app.client().events(after=0)) as stream:
        for message in stream:
            if message is not None and message["type"] == "event" \
                    and message["event"]["session_id"] == s["id"]:
                seen.append(message["event"])
                if message["event"]["kind"] == "deleted":
                    break
    [kept_event] = [e["payload"] for e in seen if e["kind"] == "workspace_kept"]
    assert kept_event["path"] == str(kept) and ".git" in kept_event["reason"]
    assert refs(repo)[f"refs/heads/{s['branch']}"] == done
    assert sorted(p.name for p in app.settings.secrets_dir.iterdir()) == secrets


def test_a_kept_workspace_lends_its_repository_to_no_git_the_user_runs(
        app: Appliance, repo: Path, tmp_path: Path) -> None:
    """A branch the last fetch cannot bring in (its ref names no object) keeps the
    workspace in ``kept/``, where the user goes to take the work back: the agent's
    repository there is renamed, so the user's git in the folder (or a shell prompt's)
    finds none and runs none of the agent's config; the same git pointed at the renamed
    repository does run it (the control: the plant is live)."""
    markers = tmp_path / "markers"
    markers.mkdir()
    os.chmod(markers, 0o777)
    s = create(app, repo, "stubborn")
    app.stop("reconciler")  # no pass brings anything in before the delete tries
    in_container(app, s, f"echo work > work.txt && git config core.fsmonitor "
                         f"'touch {markers}/fsmonitor; false' && "
                         f"echo {'1' * 40} > .git/refs/heads/{s['branch']}")
    app.cli("delete", "--force", "--no-wait", "stubborn")
    app.start("reconciler")
    wait_for(lambda: not Path(s["worktree_path"]).exists(), what="the workspace to go")
    kept = app.settings.kept_dir / f"stubborn-{s['id'][:8]}"
    assert sorted(p.name for p in kept.iterdir()) == [
        ".git", ".git-agent", "README.md", "src", "work.txt"]
    make_traversable(kept)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}

    def users_git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args, "status", "--short"], cwd=kept / "src", env=env,
                              capture_output=True, text=True, check=False, user=AGENT_UID,
                              group=AGENT_UID, extra_groups=[])

    found = users_git()
    assert found.returncode == 128 and "not a git repository" in found.stderr, found
    assert list(markers.iterdir()) == []
    users_git(f"--git-dir={kept}/.git-agent", f"--work-tree={kept}")
    assert [p.name for p in markers.iterdir()] == ["fsmonitor"]
    assert refs(repo)[f"refs/heads/{s['branch']}"] == refs(repo)["refs/heads/main"]


def small_commit_synced(app: Appliance, repo: Path, session: dict[str, Any]) -> str:
    """A small commit of the agent's, once it is brought into the user's repository: the
    control before a flood."""
    _, out = in_container(app, session, "echo ok > ok.txt && git add ok.txt && "
                                        "git commit -qm ok && git rev-parse HEAD")
    good = out.split()[-1]
    synced(app, repo, session, good)
    return good


def test_an_agent_cannot_flood_the_users_repository(repo: Path, tmp_path: Path,
                                                    agent_image: str) -> None:
    """The agent commits 64 MiB of zeros (a few KiB packed) on its branch, as uid 1000 in
    its container, under a 32 MiB ``[limits] max_sync_mib``: the session says why its
    branch is not brought in and what to do, not one of its objects enters the user's
    repository, the branch stays at the last commit brought in, and a delete keeps the
    workspace aside with the work in it. The control: a small commit before is brought in."""
    with running(tmp_path / "home", "api", "reconciler", image=agent_image,
                 config="[limits]\nmax_sync_mib = 32\n") as app:
        s = create(app, repo, "flood")
        good = small_commit_synced(app, repo, s)
        _, out = in_container(app, s, "head -c $((64 << 20)) /dev/zero > zeros && "
                                      "git add zeros && git commit -qm zeros && "
                                      "git rev-parse HEAD:zeros")
        blob = out.split()[-1]
        reason = wait_for(lambda: (app.session(s["id"]).get("status_reason") or "")
                          if "max_sync_mib" in (app.session(s["id"]).get("status_reason")
                                                or "") else None,
                          what="the session to say its branch was not brought in")
        assert "64 MiB, more than the 32 MiB" in reason and "Files tab" in reason, reason
        events = app.client().get(f"/api/sessions/{s['id']}/events")["events"]
        assert any(e["kind"] == "branch_sync_failed" and "max_sync_mib" in e["payload"]["reason"]
                   for e in events), events
        assert refs(repo)[f"refs/heads/{s['branch']}"] == good
        with pytest.raises(AssertionError, match="cat-file"):
            user_git(repo, "cat-file", "-e", blob)  # not in the user's objects
        out = app.cli("delete", "--force", "flood").stdout
        kept = app.settings.kept_dir / f"flood-{s['id'][:8]}"
        assert str(kept) in out, out
        assert (kept / "zeros").stat().st_size == 64 << 20
        assert refs(repo)[f"refs/heads/{s['branch']}"] == good
