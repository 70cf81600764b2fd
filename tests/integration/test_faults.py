"""Bad input and faults: clear errors, and nothing left behind (real services, real engine)."""

from __future__ import annotations

import json
import secrets
import signal
import socket
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import trio

from appliance.backends.docker import DockerBackend
from tests.conftest import make_repo
from tests.support.appliance import BIN, SERVICES, Appliance, running, wait_for
from tests.support.engine import BASE_IMAGE


def post(app: Appliance, path: str, body: Any) -> httpx.Response:
    return app.http().post(path, json=body)


def worktree_list(repo: Path) -> str:
    return subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo), "worktree", "list"],
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize(
    ("body", "status", "field", "needle"),
    [
        ({"repo_path": "/nonexistent/repo"}, 400, "repo_path", "does not exist"),
        ({"repo_path": "relative/path"}, 400, "repo_path", "must be absolute"),
        ({"repo_path": "{plain}"}, 400, "repo_path", "not inside a git repository"),
        ({"repo_path": "{repo}", "name": "Bad_Name"}, 400, "name", "lowercase letters"),
        ({"repo_path": "{repo}", "name": "x" * 41}, 400, "name", "the limit is 40"),
        ({"repo_path": "{repo}", "name": "ok", "image": "nope:missing"}, 400, "image",
         "not on the Docker engine"),
        ({"repo_path": "{repo}", "name": "ok", "agent": "aider"}, 400, "agent", "not one of"),
        ({"repo_path": "{repo}", "name": "ok", "base": "no-such-branch"}, 400, "base",
         "not a branch"),
        ({"repo_path": "{repo}", "name": "ok", "memory": "lots"}, 400, "memory", "size like"),
        ({"repo_path": "{rootrepo}", "name": "ok"}, 400, "repo_path", "belongs to root"),
        # A backend this appliance does not run is refused, never run on Docker instead.
        ({"repo_path": "{repo}", "name": "ok", "backend": "kubernetes"}, 400, "backend",
         "not configured on this appliance"),
        ({"repo_path": "{repo}", "name": "ok", "backend": "lambda"}, 400, "backend",
         "not one of"),
    ],
)
def test_create_rejects_bad_input_with_the_reason(
    appliance: Appliance, repo: Path, tmp_path: Path, body: dict[str, Any], status: int,
    field: str, needle: str,
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    rootrepo = make_repo(tmp_path / "rootrepo", owner=0)
    sub = {"{repo}": str(repo), "{plain}": str(plain), "{rootrepo}": str(rootrepo)}
    body = {k: sub.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    r = post(appliance, "/api/sessions", body)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field and needle in r.json()["error"]
    assert appliance.client().get("/api/sessions")["sessions"] == []
    assert appliance.containers() == []


def test_a_container_named_after_the_session_elsewhere_stands_in_no_ones_way(
    appliance: Appliance, repo: Path, engine: docker.DockerClient,
) -> None:
    """The engine's names are its own, and a Docker session's container is named by its
    id: a person's container (or another appliance's) named ``clauderon-<name>`` neither
    stops the create nor is touched by it. A name that is held is said with what to do
    (the create's early check asks it of the id's name)."""
    name = f"held-{secrets.token_hex(3)}"
    stranger = engine.containers.create(BASE_IMAGE, ["true"], name=f"clauderon-{name}")
    try:
        r = post(appliance, "/api/sessions", {"repo_path": str(repo), "name": name})
        assert r.status_code == 202, r.text
        s = appliance.wait_phase(r.json()["session"]["id"], "running")
        [c] = appliance.containers(s["id"])
        assert c.name == s["container_name"] == f"clauderon-{s['id']}"
        stranger.reload()
        assert stranger.status == "created" and "clauderon.session" not in stranger.labels
        backend = DockerBackend(url=None, instance=appliance.instance)
        said = trio.run(backend.name_holder, f"clauderon-{name}")
        assert said is not None and f"docker rm -f clauderon-{name}" in said, said
        assert "pick another name" in said
    finally:
        stranger.remove(force=True)


def test_duplicate_unknown_and_cli_errors(appliance: Appliance, repo: Path) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "dup", "--prompt", "p")
    r = post(appliance, "/api/sessions", {"repo_path": str(repo), "name": "dup"})
    assert r.status_code == 409 and "already exists" in r.json()["error"]
    http = appliance.http()
    base = "/api/sessions/nope"
    assert http.get(base).status_code == 404
    assert http.delete(base).status_code == 404
    assert http.post(base + "/archive").status_code == 404
    r = http.post("/api/sessions", content=b"{not json",
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    out = appliance.cli("show", "nope", check=False)
    assert out.returncode == 3
    assert out.stderr.strip().splitlines() == [
        "clauderon: no session named or with id 'nope' (see `clauderon list --all`)"]
    out = appliance.cli("create", "--repo", str(repo), "--name", "BAD", check=False)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    out = appliance.cli("unarchive", "dup", check=False)
    assert out.returncode == 4 and "it is running" in out.stderr


def test_docker_unreachable_is_503_and_a_clear_cli_line(
    tmp_path: Path, repo: Path, engine: docker.DockerClient
) -> None:
    dead = f"unix://{tmp_path}/no-docker.sock"
    with running(tmp_path / "home", "api", env={"DOCKER_HOST": dead}) as app:
        r = post(app, "/api/sessions", {"repo_path": str(repo), "name": "x"})
        assert r.status_code == 503
        assert r.json()["error"].startswith(f"Docker engine not reachable at {dead}")
        out = app.cli("create", "--repo", str(repo), "--name", "x", check=False)
        assert out.returncode == 69
        assert out.stderr.startswith(f"clauderon: Docker engine not reachable at {dead}")
        assert httpx.get(f"{app.base}/api/health").status_code == 503
        status = app.cli("status", check=False)
        assert status.returncode == 1 and "UNREACHABLE" in status.stdout


@pytest.mark.parametrize(("service", "key", "held"), [
    ("api", "CLAUDERON_HTTP_PORT", "127.0.0.1"), ("proxy", "CLAUDERON_PROXY_PORT", "127.0.0.1"),
    # A neighbour on the other address of ``localhost`` would be the web UI's origin.
    ("api", "CLAUDERON_HTTP_PORT", "::1")])
def test_a_port_another_program_holds_ends_the_service_with_one_clear_line(
    tmp_path: Path, engine: docker.DockerClient, service: str, key: str, held: str
) -> None:
    family = socket.AF_INET6 if ":" in held else socket.AF_INET
    with socket.socket(family) as holder, running(tmp_path / "home") as app:
        holder.bind((held, 0))
        holder.listen()
        port = holder.getsockname()[1]
        app.env[key] = str(port)
        proc = subprocess.run([str(BIN / SERVICES[service])], env=app.env,
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 78, proc.stderr
    assert "Traceback" not in proc.stderr
    last = json.loads(proc.stderr.strip().splitlines()[-1])
    assert last["level"] == "error"
    where = f"127.0.0.1:{port}, [::1]:{port}" if service == "api" else f"127.0.0.1:{port}"
    assert last["msg"] == (
        f"cannot listen on {where}: another program already listens there; "
        f"stop it, or set {'[server]' if service == 'api' else '[proxy]'} port ({key}) "
        "to another port")


def test_a_create_failing_half_way_leaves_nothing_and_says_why(
    appliance: Appliance, repo: Path
) -> None:
    # More CPUs than the machine has: git work succeeds, the engine refuses the container.
    out = appliance.cli("create", "--repo", str(repo), "--name", "greedy", "--cpu", "500",
                        check=False)
    assert out.returncode == 1 and "greedy failed" in out.stderr and "CPUs" in out.stderr
    s = appliance.session("greedy")
    assert s["phase"] == "failed" and "Range of CPUs" in s["status_reason"]
    assert appliance.containers(s["id"]) == []
    assert not Path(s["worktree_path"]).exists()
    assert "greedy" not in worktree_list(repo)
    listed = appliance.cli("list").stdout
    assert "failed (" in listed and "Range of CPUs" in listed
    assert "greedy: failed" in appliance.cli("reconcile", check=False).stdout
    # Delete works on a failed session and keeps the branch.
    appliance.cli("delete", "greedy", "--force")
    assert appliance.client().get("/api/sessions", all="true")["sessions"] == []


def test_reconciler_killed_mid_create_converges_without_orphans(
    appliance: Appliance, repo: Path
) -> None:
    for step in ("worktree", "container", "start"):
        appliance.stop("reconciler")
        name = f"crash-{step}"
        sid = post(appliance, "/api/sessions", {"repo_path": str(repo), "name": name}
                   ).json()["session"]["id"]
        appliance.start("reconciler")

        def reached(sid: str = sid, step: str = step) -> bool:
            events = appliance.client().get(f"/api/sessions/{sid}/events")["events"]
            return any(e["payload"].get("step") == step for e in events)

        wait_for(reached, interval=0.005, what=f"the {step} step")
        appliance.stop("reconciler", signal.SIGKILL)
        appliance.start("reconciler")
        s = appliance.wait_phase(name, "running")
        assert len(appliance.containers(sid)) == 1
        assert Path(s["worktree_path"], ".git", "HEAD").is_file()
    assert appliance.client().get("/api/reconcile") == {"in_sync": True, "problems": []}


def test_adopts_a_half_made_container_and_removes_orphans(
    appliance: Appliance, repo: Path, engine: docker.DockerClient
) -> None:
    appliance.stop("reconciler")
    sid = post(appliance, "/api/sessions", {"repo_path": str(repo), "name": "half"}
               ).json()["session"]["id"]
    labels = {"clauderon.managed": "true", "clauderon.instance": appliance.instance}
    # What a reconciler killed between create and start leaves behind...
    engine.containers.create("debian:bookworm-slim", "bash", name=f"clauderon-{sid}", tty=True,
                             stdin_open=True, labels={**labels, "clauderon.session": sid})
    # ...and a container of a session that no longer exists.
    orphan = engine.containers.create("debian:bookworm-slim", "bash", name=f"orphan-{sid[:8]}",
                                      labels={**labels, "clauderon.session": "gone"})
    appliance.start("reconciler")
    appliance.wait_phase("half", "running")
    [c] = appliance.containers(sid)
    assert c.name == f"clauderon-{sid}" and c.status == "running"
    wait_for(lambda: orphan.id not in {x.id for x in appliance.containers()},
             what="the orphan's removal")


def test_container_removed_behind_our_back_is_recreated_with_backoff(
    appliance: Appliance, repo: Path
) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "fragile", "--prompt", "p")
    sid = appliance.session("fragile")["id"]
    seen: list[str] = []
    for attempt in (1, 2, 3, 4):
        [c] = appliance.containers(sid)
        seen.append(c.id)
        c.remove(force=True)
        if attempt < 4:
            wait_for(lambda: [x for x in appliance.containers(sid) if x.id not in seen],
                     what=f"recreation {attempt}")
            s = wait_for(lambda a=attempt: (x := appliance.session("fragile"))["attempts"] == a
                         and x, what=f"attempts {attempt}")
            assert s["phase"] == "running" and s["retry_at"]
    failed = appliance.wait_phase("fragile", "failed")
    assert "gave up after 3 attempts" in failed["status_reason"]
    events = appliance.client().get(f"/api/sessions/{sid}/events")["events"]
    drift = [e for e in events if e["kind"] == "drift"]
    assert [e["payload"]["attempt"] for e in drift] == [1, 2, 3]
    # Back-off: each recreation waited for the retry time the previous one set.
    updates = [e["payload"]["session"] for e in events if e["kind"] == "updated"]
    retry_times = sorted({u["retry_at"] for u in updates if u["retry_at"]})
    for prev_retry, later in zip(retry_times, drift[1:], strict=False):
        assert datetime.fromisoformat(later["ts"]) >= datetime.fromisoformat(prev_retry)


def test_api_restart_loses_nothing(appliance: Appliance, repo: Path) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "durable", "--prompt", "p")
    # The reconciler writes on its own time (a branch sync, timings); stopped, it leaves
    # the API the only writer, so the state either side of the restart must be identical.
    assert appliance.stop("reconciler") == 0

    def state() -> tuple[Any, Any, Any]:
        c = appliance.client()
        return (c.get("/api/sessions")["sessions"], c.get("/api/health")["latest_event"],
                c.get("/api/sessions/durable/events")["events"])

    before = state()
    assert before[1] >= 1 and before[2], before
    assert appliance.stop("api") == 0
    appliance.start("api")
    assert state() == before
