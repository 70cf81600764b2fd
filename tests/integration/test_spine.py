"""The spine end to end: CLI -> API (Unix socket) -> SQLite -> reconciler -> real Docker.

Every test runs the real services as processes on a temporary CLAUDERON_HOME against the
real engine, with real git repositories.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.appliance import Appliance


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo), *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_create_shows_progress_and_follows_the_container_contract(
    appliance: Appliance, repo: Path
) -> None:
    out = appliance.cli("create", "--repo", str(repo / "src"), "--name", "flaky",
                        "--prompt", "fix the flaky test", "--cpu", "0.5", "--memory", "256m")
    assert "flaky  creating" in out.stdout
    assert "worktree ▸ container ▸ start ▸ running" in out.stdout
    s = appliance.session("flaky")
    # Named by its id: the engine's DNS tells every neighbour a container's name.
    assert f"branch clauderon/flaky, container clauderon-{s['id']}" in out.stdout
    assert s["phase"] == "running" and s["subdirectory"] == "src"
    assert git(repo, "rev-parse", "clauderon/flaky") == git(repo, "rev-parse", "main")
    [container] = appliance.containers(s["id"])
    attrs = container.attrs
    assert container.name == s["container_name"] == f"clauderon-{s['id']}"
    labels = attrs["Config"]["Labels"]
    assert labels["clauderon.session"] == s["id"] and labels["clauderon.managed"] == "true"
    assert labels["clauderon.name"] == "flaky"
    assert attrs["Config"]["User"] == "1000:1000"
    assert attrs["Config"]["WorkingDir"] == "/workspace/src"
    # The sessions' network only, host.docker.internal naming its gateway, no DNS out.
    network = f"clauderon-{appliance.instance}"
    assert attrs["HostConfig"]["NetworkMode"] == network
    assert list(attrs["NetworkSettings"]["Networks"]) == [network]
    gateway = attrs["NetworkSettings"]["Networks"][network]["Gateway"]
    assert attrs["HostConfig"]["ExtraHosts"] == [f"host.docker.internal:{gateway}"]
    assert attrs["HostConfig"]["Dns"] == ["127.0.0.1"]
    # Hardened and limited.
    assert attrs["HostConfig"]["CapDrop"] == ["ALL"] and not attrs["HostConfig"]["CapAdd"]
    assert attrs["HostConfig"]["SecurityOpt"] == ["no-new-privileges"]
    assert attrs["HostConfig"]["PidsLimit"] == 1024
    assert attrs["HostConfig"]["NanoCpus"] == 500_000_000
    assert attrs["HostConfig"]["Memory"] == 256 * 1024 * 1024
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounts["/workspace"]["Source"] == s["worktree_path"]
    # Of the user's git directory, only its objects, read-only (the workspace borrows them).
    objects = str(repo / ".git" / "objects")
    assert mounts[objects]["Source"] == objects and not mounts[objects]["RW"]
    assert str(repo / ".git") not in mounts
    home = str(appliance.home)
    assert all(not m["Source"].startswith(home) or m["Source"].startswith(
        (f"{home}/worktrees/", f"{home}/uploads/", f"{home}/homes/", f"{home}/proxy-ca.pem"))
        for m in attrs["Mounts"])
    env = dict(e.split("=", 1) for e in attrs["Config"]["Env"])
    assert env["CLAUDERON_SESSION_ID"] == s["id"]
    assert env["HTTPS_PROXY"].startswith(f"http://{s['id']}:")
    # The worktree is the agent's: it can write there.
    result = container.exec_run(["bash", "-c", "id -u && touch /workspace/new-file && echo ok"],
                                user="1000:1000")
    assert result.exit_code == 0 and b"ok" in result.output
    assert (Path(s["worktree_path"]) / "new-file").exists()


def test_list_show_json_and_table(appliance: Appliance, repo: Path) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "one", "--prompt", "p")
    table = appliance.cli("list").stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "AGENT-STATUS", "BRANCH", "BACKEND", "AGE",
                                "COST"]
    assert table[1].split()[:4] == ["one", "running", "unknown", "clauderon/one"]
    listed = json.loads(appliance.cli("list", "--json").stdout)
    assert [s["name"] for s in listed] == ["one"]
    shown = json.loads(appliance.cli("show", "one", "--json").stdout)
    assert shown["id"] == listed[0]["id"] and "proxy_token_hash" not in shown
    assert f"clauderon-{shown['id']}" in appliance.cli("attach", "one",
                                                        "--print-command").stdout


def test_archive_unarchive_delete_keep_the_work(appliance: Appliance, repo: Path) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "keep", "--prompt", "p")
    s = appliance.session("keep")
    (Path(s["worktree_path"]) / "work.txt").write_text("precious")

    assert "archived" in appliance.cli("archive", "keep").stdout
    s = appliance.session("keep")
    assert s["phase"] == "archived" and s["archived_at"]
    [c] = appliance.containers(s["id"])
    assert c.status == "exited"  # compute stopped, nothing lost
    assert json.loads(appliance.cli("list", "--json").stdout) == []
    assert [x["name"] for x in json.loads(appliance.cli("list", "--archived", "--json").stdout)] \
        == ["keep"]

    assert "running" in appliance.cli("unarchive", "keep").stdout
    assert appliance.session("keep")["phase"] == "running"
    assert (Path(s["worktree_path"]) / "work.txt").read_text() == "precious"

    out = appliance.cli("delete", "keep", "--force")
    assert "gone" in out.stdout and "branch clauderon/keep kept" in out.stdout
    assert appliance.containers(s["id"]) == []
    assert not Path(s["worktree_path"]).exists()
    assert git(repo, "branch", "--list", "clauderon/keep") != ""
    assert "clauderon/keep" not in git(repo, "worktree", "list")


def test_delete_asks_for_confirmation(appliance: Appliance, repo: Path) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "ask", "--prompt", "p")
    out = appliance.cli("delete", "ask", check=False)
    assert out.returncode == 2 and "--force" in out.stderr
    assert appliance.session("ask")["phase"] == "running"


def test_stop_start_and_attach_starts_a_stopped_session(appliance: Appliance, repo: Path
                                                        ) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "sleepy", "--prompt", "p")
    assert "stopped" in appliance.cli("stop", "sleepy").stdout
    out = appliance.cli("attach", "sleepy", "--print-command")
    assert "running" in out.stdout and "docker" in out.stdout
    assert appliance.session("sleepy")["phase"] == "running"


def test_set_access_mode_and_recent_repos(appliance: Appliance, repo: Path) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "ro", "--prompt", "p",
                  "--access-mode", "read-only")
    assert appliance.session("ro")["access_mode"] == "read-only"
    appliance.cli("set-access-mode", "ro", "read-write")
    assert appliance.session("ro")["access_mode"] == "read-write"
    repos = appliance.client().get("/api/recent-repos")["repos"]
    assert repos[0]["repo_path"] == str(repo)


def test_reconcile_status_and_config(appliance: Appliance, repo: Path) -> None:
    assert appliance.cli("reconcile").stdout.strip() == "All sessions are in sync"
    status = json.loads(appliance.cli("status", "--json").stdout)
    assert status["docker"]["reachable"] is True and status["database"]["schema_version"] >= 1
    paths = json.loads(appliance.cli("config", "paths", "--json").stdout)
    assert paths["database"] == str(appliance.home / "db.sqlite")
    shown = json.loads(appliance.cli("config", "show", "--json").stdout)
    assert shown["http_port"] == appliance.http_port
    assert oct((appliance.home / "clauderon.sock").stat().st_mode & 0o777) == "0o600"
    # Stop the reconciler, remove the container behind its back: reconcile reports it.
    appliance.cli("create", "--repo", str(repo), "--name", "drifty", "--prompt", "p")
    appliance.stop("reconciler")
    for c in appliance.containers(appliance.session("drifty")["id"]):
        c.remove(force=True)
    out = appliance.cli("reconcile", check=False)
    assert out.returncode == 1 and "drifty: container missing" in out.stdout
