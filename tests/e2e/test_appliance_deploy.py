"""The appliance image deployed by images/appliance/compose.yaml, the way README "Run it on
a home server" says: a data folder and a repositories folder mounted at their own paths, the
engine's socket, the host's network, credentials from credentials.env.

It starts on a database made by the previous schema version (tests/fixtures/schema3), so
the upgrade is the real one. A browser signs in through a one-time link made by the host's
CLI over the data folder's Unix socket; sessions are created from the web API and from the
host's CLI; the real Claude Code in its sibling container reaches a fake Messages API on
this host's loopback through the appliance's proxy (the canary arrives, no placeholder
does). Then the operations: every service SIGKILLed and restarted by supervisord, `stop`
draining every service, and the container restarted and replaced with the sessions kept.

Figures (build, start, restart, stop) are printed (`-s`), never asserted.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker
import httpx
import pytest

from appliance.placeholders import placeholder_env
from appliance.store import MIGRATIONS
from appliance.tokens import load_or_create_instance_key
from tests.conftest import make_repo
from tests.e2e.agent_checks import wait_hook
from tests.e2e.conftest import ANTHROPIC_CANARY, OPENAI_CANARY, proxy_toml
from tests.support.appliance import Appliance, wait_for
from tests.support.appliance_image import PROGRAMS, RESPAWN, Deployment
from tests.support.fake_models import FakeModels

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "schema3"
PROMPT = "please run the command"


@dataclass
class World:
    dep: Deployment
    app: Appliance
    fake: FakeModels
    repo: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, appliance_image: str,
          agent_image: str) -> Iterator[World]:
    root = tmp_path_factory.mktemp("home-server")
    data, repos = root / "data", root / "repos"
    repos.mkdir()
    app = Appliance(data, agents=True, image=agent_image)
    (data / "fake").mkdir()
    with FakeModels(data / "fake") as fake:
        (data / "proxy.toml").write_text(proxy_toml(fake))
        shutil.copy(FIXTURE / "db.sqlite", data / "db.sqlite")  # made at schema version 3
        repo = make_repo(repos / "app")
        dep = Deployment(root, app=app, repos=repos, credentials={
            "ANTHROPIC_API_KEY": ANTHROPIC_CANARY, "OPENAI_API_KEY": OPENAI_CANARY})
        try:
            started = time.monotonic()
            dep.up()
            print(f"\nappliance up (compose up to the API answering): "
                  f"{time.monotonic() - started:.1f}s")
            yield World(dep, app, fake, repo)
        finally:
            dep.down()
            app.cleanup()


def signed_in_browser(w: World) -> httpx.Client:
    """A browser signed in by the one-time link `clauderon web` prints on the host."""
    out = w.app.cli("web", "--no-open", "--json").stdout
    url = json.loads(out)["urls"][0]
    assert url.startswith(f"http://localhost:{w.app.http_port}/signin#token=")
    browser = httpx.Client(base_url=w.app.base, headers={"Origin": w.app.base}, timeout=30)
    r = browser.post("/api/auth/link", json={"token": url.split("#token=", 1)[1]})
    assert r.status_code == 200, r.text
    browser.headers["X-Clauderon-Bind"] = r.json()["bind"]  # what the page keeps beside it
    assert browser.get("/api/auth/me").status_code == 200
    return browser


def test_the_previous_schema_was_migrated_and_kept(world: World) -> None:
    health = world.app.client().get("/api/health")
    assert health["database"]["schema_version"] == len(MIGRATIONS)
    listed = json.loads(world.app.cli("list", "--all", "--json").stdout)
    old = {s["name"]: s for s in listed if s["name"].startswith("old-")}
    assert set(old) == {"old-one", "old-two"}
    assert old["old-one"]["initial_prompt"] == "the first session, before the upgrade"
    for s in old.values():
        # Archived when made; their repository (/srv/src/app) is not on this machine, which
        # the reconciler finds when it checks their workspace, and says so.
        assert s["phase"] == "archived" or (
            s["phase"] == "failed" and "'/srv/src/app' does not exist" in s["status_reason"]), s
    # A token made by the old code still signs a script in, over TCP.
    token = (FIXTURE / "token.txt").read_text().strip()
    r = httpx.get(f"{world.app.base}/api/sessions",
                  headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and {"old-one", "old-two"} <= {
        s["name"] for s in r.json()["sessions"]}
    with sqlite3.connect(world.app.settings.db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_sign_in_sessions_from_the_web_and_the_host_the_agent_through_the_proxy(
        world: World) -> None:
    with closing(signed_in_browser(world)) as browser:
        _sessions_from_the_web_and_the_host(world, browser)


def _sessions_from_the_web_and_the_host(w: World, browser: httpx.Client) -> None:
    app = w.app
    r = browser.post("/api/sessions", json={"repo_path": str(w.repo), "name": "from-web",
                                            "prompt": PROMPT, "skip_permissions": True})
    assert r.status_code in (201, 202), r.text
    out = app.cli("create", "--repo", str(w.repo), "--name", "from-cli", "--prompt", PROMPT,
                  "--skip-permissions")
    assert "running" in out.stdout
    sessions = {name: app.wait_phase(name, "running", timeout=120)
                for name in ("from-web", "from-cli")}
    for name, s in sessions.items():
        wait_hook(app, s["id"], "Stop", timeout=120)
        # The tool ran in the worktree, which is in the data folder at its host path.
        assert Path(s["worktree_path"]).is_relative_to(app.home)
        assert (Path(s["worktree_path"]) / "tool-output.txt").read_text() == "tool-ran\n", name
        # A sibling on the host's engine, on the sessions' network alone.
        [container] = app.containers(s["id"])
        assert list(container.attrs["NetworkSettings"]["Networks"]) == [
            f"clauderon-{app.instance}"]

    calls = w.fake.model_requests()
    assert len(calls) >= 4  # a tool round trip per session
    assert {c.headers.get("x-api-key") for c in calls} == {ANTHROPIC_CANARY}
    # Each session's own placeholders (what its agent holds) never reach the model.
    key = load_or_create_instance_key(app.settings.instance_secret_path)
    placeholders = {v for s in sessions.values()
                    for v in placeholder_env(key, s["id"]).values()}
    assert placeholders
    assert all(not placeholders & set(seen.headers.values()) for seen in w.fake.seen)
    audit = app.settings.audit_path.read_text()
    assert "api.anthropic.com" in audit and ANTHROPIC_CANARY not in audit

    # Delete one from the web, one from the host; the branches stay in the repository.
    assert browser.delete(f"/api/sessions/{sessions['from-web']['id']}").status_code in (
        200, 202, 204)
    app.cli("delete", "--force", "from-cli")
    for name, s in sessions.items():
        wait_for(lambda s=s: not app.containers(s["id"]), timeout=60, what=f"{name} gone")
    listed = {s["name"] for s in json.loads(app.cli("list", "--all", "--json").stdout)}
    assert not listed & {"from-web", "from-cli"}
    branches = subprocess.run(["git", "-C", str(w.repo), "branch", "--list", "clauderon/*"],
                              capture_output=True, text=True, check=True, user=1000).stdout
    assert "clauderon/from-web" in branches and "clauderon/from-cli" in branches


PROBE = r"""
one() {
    printf '%s %s\n' "$1" "$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' \
        --max-time 3 "http://$1/api/health")"
}
for target in "$@"; do one "$target" & done
wait
"""


class NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def listening(address: str) -> Iterator[int]:
    """A plain HTTP server on ``address`` of this host (never 0.0.0.0): a host service."""
    server = ThreadingHTTPServer((address, 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def probe(container: str, *targets: str, user: str = "1000:1000") -> dict[str, str]:
    done = subprocess.run(["docker", "exec", "-u", user, container, "bash", "-c", PROBE,
                           "probe", *targets], capture_output=True, text=True, timeout=60,
                          check=True)
    return dict(line.split() for line in done.stdout.splitlines())


def check_lockdown(w: World, container: str) -> None:
    """The session, as its own uid, reaches the proxy and the hook endpoint on its gateway
    and nothing else of the host; the same probes succeed from the host or from a container
    on the engine's default bridge (positive controls)."""
    app = w.app
    with closing(docker.from_env()) as client:
        net = client.api.inspect_network(f"clauderon-{app.instance}")
    docker0 = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True,
                             text=True, check=True).stdout.split()[3].split("/")[0]
    gateway = net["IPAM"]["Config"][0]["Gateway"]
    # The firewall, written from inside the appliance container, is the host's.
    rules = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True,
                           check=True).stdout
    assert f"-i {net['Options']['com.docker.network.bridge.name']} -j CLAUDERON-" in rules
    # A just-started appliance: the proxy and the hook listener bind once the network is set.
    for port in (app.proxy_port, app.hook_port):
        wait_for(lambda port=port: accepts(gateway, port), timeout=60,
                 what=f"a listener on {gateway}:{port}")
    with listening(gateway) as on_gateway, listening(docker0) as on_docker0:
        seen = probe(container, f"{gateway}:{app.proxy_port}", f"{gateway}:{app.hook_port}",
                     f"{gateway}:{app.http_port}", f"{gateway}:{on_gateway}",
                     f"{docker0}:{on_docker0}")
        assert seen[f"{gateway}:{app.proxy_port}"] not in ("000", "200")  # the proxy answers
        assert seen[f"{gateway}:{app.hook_port}"] == "404"  # hooks only
        blocked = [f"{gateway}:{app.http_port}", f"{gateway}:{on_gateway}",
                   f"{docker0}:{on_docker0}"]
        assert [seen[t] for t in blocked] == ["000"] * 3, seen
        # Positive controls: the host reaches its own gateway listener, and an unconfined
        # container on the default bridge the docker0 one.
        assert httpx.get(f"http://{gateway}:{on_gateway}/").status_code == 404
        free = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "curl", app.settings.default_image,
             "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
             f"http://{docker0}:{on_docker0}/"], capture_output=True, text=True, timeout=60)
        assert free.stdout == "404", free


def test_supervisord_restarts_each_crashed_service(world: World) -> None:
    w = world
    wait_for(w.dep.all_running, timeout=60, what="every program RUNNING")
    for name in PROGRAMS:
        done = w.dep.exec("bash", "-c", RESPAWN, "respawn", name)
        old, new, spawned, serving = done.stdout.split()
        print(f"{name}: SIGKILL {old} -> new process {new} in {spawned} ms, "
              f"serving in {serving} ms")
        assert old != new and int(serving) < 30_000  # a hang guard: the figures are printed
        wait_for(w.dep.all_running, timeout=60, what=f"{name} RUNNING again")
    log = (w.app.settings.logs_dir / "supervisord.log").read_text()
    for name in PROGRAMS:
        assert re.search(rf"exited: {name} \(terminated by SIGKILL; not expected\)", log)
    # Back in service: the API answers on its socket, sessions can be listed.
    assert w.app.cli("list", "--all").returncode == 0


def test_stop_drains_and_restart_and_replacement_keep_every_session(world: World) -> None:
    w, app, dep = world, world.app, world.dep
    app.cli("create", "--repo", str(w.repo), "--name", "keeper", "--prompt", PROMPT,
            "--skip-permissions")
    s = app.wait_phase("keeper", "running", timeout=120)
    wait_hook(app, s["id"], "Stop", timeout=120)
    [container] = app.containers(s["id"])
    started_at = container.attrs["State"]["StartedAt"]
    check_lockdown(w, container.id)
    marker = Path(s["worktree_path"]) / "kept.txt"
    marker.write_text("work in progress\n")
    first = dep.container_id()

    # `docker stop` (compose: stop_grace_period) drains every service: exit 0, no SIGKILL.
    t0 = time.monotonic()
    dep.compose("stop", "appliance", timeout=120)
    print(f"\nstop drained in {time.monotonic() - t0:.1f}s")
    state = dep.inspect(first)["State"]
    assert (state["Running"], state["ExitCode"], state["OOMKilled"]) == (False, 0, False)
    log = (app.settings.logs_dir / "supervisord.log").read_text()
    last_stop = log[log.rindex("received SIGTERM"):]
    for name in PROGRAMS:
        assert re.search(rf"stopped: {name} \(exit status 0\)", last_stop), last_stop
    assert "SIGKILL" not in last_stop
    # The session's container never depended on the appliance's.
    assert app.containers(s["id"])[0].status == "running"

    def kept() -> None:
        session = app.wait_phase("keeper", "running", timeout=60)
        [again] = app.containers(s["id"])
        assert (again.id, again.attrs["State"]["StartedAt"]) == (container.id, started_at)
        assert session["backend_id"] == container.id
        assert marker.read_text() == "work in progress\n"

    t0 = time.monotonic()
    assert dep.up() == first  # restarted: the same container
    print(f"restart to the API answering: {time.monotonic() - t0:.1f}s")
    kept()

    t0 = time.monotonic()
    second = dep.up("--force-recreate")  # replaced: what an upgrade does
    print(f"replacement to the API answering: {time.monotonic() - t0:.1f}s")
    assert second != first
    kept()
    check_lockdown(w, container.id)  # the new appliance container installed the same lockdown
    # The replaced appliance still serves the session: hooks and the proxy answer it.
    before = len(w.fake.model_requests())
    app.client().post(f"/api/sessions/{s['id']}/message", {"text": "and once more"})
    wait_hook(app, s["id"], "Stop", count=2, timeout=120)
    assert len(w.fake.model_requests()) > before
    t0 = time.monotonic()
    wait_for(lambda: dep.health() == "healthy", timeout=150, interval=1,
             what="the health check to pass")
    print(f"healthy {time.monotonic() - t0:.0f}s after the replacement was serving")
    app.cli("delete", "--force", "keeper")
