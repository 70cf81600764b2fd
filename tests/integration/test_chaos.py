"""Chaos: the whole appliance under supervisord, its services SIGKILLed at random moments
and the Docker engine restarted once, while sessions are created and deleted 100 times.

Bounded in count (:data:`CYCLES` create/delete cycles, a kill every
:data:`KILL_EVERY` seconds or so) and in time (every wait has a limit). Meanwhile a client
follows ``/ws/events`` (resuming from its last id whenever the API dies) and another sends
requests through the proxy, each of which the proxy audits. After the storm, once the
appliance has converged:

* 0 containers and 0 workspace folders of deleted sessions are left;
* the sessions that stay are in the phase they are meant to be in (or failed, saying why);
* the events the follower saw are exactly the journal's, strictly increasing, none lost;
* every audit line the proxy wrote is in the shipper's archive exactly once.

The figures are printed. This test restarts the machine's Docker engine: it runs alone.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import xmlrpc.client
from collections import Counter
from pathlib import Path
from typing import Any

import docker
import pytest
from supervisor.xmlrpc import SupervisorTransport
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage

from appliance.audit import parse_line
from appliance.backends.docker_network import SessionNetwork
from appliance.config import load_settings
from appliance.errors import ClauderonError
from appliance.host import instance_id
from cli.client import ApiClient
from tests.conftest import make_repo
from tests.integration.test_shipper_supervised import archived, written
from tests.support.appliance import wait_for
from tests.support.engine import BASE_IMAGE, ROOT, free_port

BIN = Path(sys.executable).parent
# It stops and starts dockerd: every other test of the run would lose its containers.
pytestmark = pytest.mark.alone

CYCLES = 100
KILL_EVERY = 1.5
SERVICES = ("api", "reconciler", "proxy", "shipper")
STEADY = ("steady-a", "steady-b")


class Supervised:
    """The appliance as ``clauderon daemon`` runs it: supervisord with supervisord.conf."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.home.mkdir()
        (self.home / "logs").mkdir()
        self.http_port, self.proxy_port, self.hook_port = free_port(), free_port(), free_port()
        (self.home / "config.toml").write_text(
            f"[server]\nport = {self.http_port}\nhook_port = {self.hook_port}\n"
            f"[proxy]\nport = {self.proxy_port}\n"
            "[reconciler]\nresync_seconds = 0.5\nbackoff_seconds = 0.5\n"
            "backoff_max_seconds = 2.0\nmax_attempts = 20\n"
            f'[docker]\nimage = "{BASE_IMAGE}"\n[agents]\nstart = false\n'
            "[limits]\nmax_sessions = 15\nmax_concurrent_creates = 3\n"
            "[shipper]\nrotate_bytes = 200000\nkeep_rotated = 1000\npoll_seconds = 0.05\n")
        env = {"PATH": os.environ["PATH"], "HOME": str(root), "CLAUDERON_HOME": str(self.home),
               "CLAUDERON_BIN": str(BIN)}
        self.env = env
        self.log = (root / "supervisord.out").open("wb")
        self.daemon = subprocess.Popen(
            [str(BIN / "supervisord"), "-c", str(ROOT / "supervisord.conf")], env=env,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.settings = load_settings({"CLAUDERON_HOME": str(self.home)})

    def call(self, method: str, *args: object) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.home / 'supervisor.sock'}")
        with xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport) as rpc:
            return getattr(rpc.supervisor, method)(*args)

    def state(self, name: str) -> str:
        try:
            return str(self.call("getProcessInfo", name)["statename"])
        except (OSError, xmlrpc.client.Error):
            return "UNREACHABLE"

    def client(self) -> ApiClient:
        return ApiClient(self.settings.socket_path, timeout=30)

    def stop(self) -> None:
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(timeout=90)
        finally:
            if self.daemon.poll() is None:
                os.killpg(self.daemon.pid, signal.SIGKILL)
                self.daemon.wait()
            self.log.close()


def retrying(what: str, fn: Any, *args: Any, already: int | None = None) -> Any:
    """Call the API, riding out the moments a service is down (bounded). A call whose answer
    was lost (the API killed after it acted, before it answered) may have taken effect: on
    its retry, the status ``already`` (404 for a delete, 409 for a create) means it did."""
    deadline = time.monotonic() + 120
    lost = False
    while True:
        try:
            return fn(*args)
        except ClauderonError as exc:
            if lost and exc.http_status == already:
                return None
            if time.monotonic() > deadline or (exc.http_status < 500 and exc.http_status != 429):
                raise AssertionError(f"{what}: {exc.message}") from exc
            lost = lost or exc.http_status >= 500
            time.sleep(0.2)


class Follower(threading.Thread):
    """Follows /ws/events over the Unix socket, resuming after its last id on any break."""

    def __init__(self, socket_path: Path) -> None:
        super().__init__(daemon=True)
        self.socket_path = socket_path
        self.ids: list[int] = []
        self.reconnects = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            with contextlib.suppress(OSError):
                self._session()
            self.reconnects += 1
            time.sleep(0.1)

    def _session(self) -> None:
        import socket

        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(1.0)
        try:
            sock.connect(str(self.socket_path))
            ws = WSConnection(ConnectionType.CLIENT)
            after = self.ids[-1] if self.ids else 0
            sock.sendall(ws.send(Request(host="clauderon", target=f"/ws/events?after={after}")))
            buffer = ""
            while not self.halt.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, CloseConnection):
                        return
                    if isinstance(event, AcceptConnection):
                        continue
                    if isinstance(event, Message) and isinstance(event, TextMessage):
                        buffer += event.data
                        if event.message_finished:
                            msg = json.loads(buffer)
                            buffer = ""
                            if msg["type"] == "event":
                                self.ids.append(int(msg["event"]["id"]))
        finally:
            sock.close()


class Traffic(threading.Thread):
    """Requests through the proxy without credentials: each is audited (407)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.answered = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", f"http://example.invalid/chaos/{self.answered}")
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status == 407:
                    self.answered += 1
            except OSError:
                time.sleep(0.05)  # the proxy is down: it comes back


class Killer(threading.Thread):
    def __init__(self, app: Supervised, seed: int) -> None:
        super().__init__(daemon=True)
        self.app = app
        self.random = random.Random(seed)
        self.kills: Counter[str] = Counter()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.random.uniform(0.5, 2 * KILL_EVERY)):
            name = self.random.choice(SERVICES)
            try:
                if self.app.state(name) == "RUNNING":
                    self.app.call("signalProcess", name, "KILL")
                    self.kills[name] += 1
            except (OSError, xmlrpc.client.Error):
                pass


def restart_engine() -> float:
    """Stop dockerd and start it again (as the project's own script does): seconds down."""
    started = time.monotonic()
    subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=False)
    wait_for(lambda: subprocess.run(["pgrep", "-x", "dockerd"]).returncode != 0, timeout=60,
             what="dockerd to stop")
    subprocess.run(["bash", str(ROOT / "images/ensure-docker.sh")], check=True,
                   capture_output=True, timeout=120)
    return time.monotonic() - started


def test_chaos(tmp_path: Path, engine: docker.DockerClient,
               capsys: pytest.CaptureFixture[str]) -> None:
    app = Supervised(tmp_path)
    follower = Follower(app.settings.socket_path)
    traffic = Traffic(app.proxy_port)
    killer = Killer(app, seed=int(os.environ.get("CLAUDERON_CHAOS_SEED", "7")))
    repo = make_repo(tmp_path / "repo")
    started = time.monotonic()
    client = app.client()
    try:
        wait_for(lambda: all(app.state(s) == "RUNNING" for s in SERVICES), timeout=60,
                 what="every service RUNNING")
        follower.start()
        traffic.start()
        for name in STEADY:
            retrying("create", client.post, "/api/sessions",
                     {"repo_path": str(repo), "name": name}, already=409)
        killer.start()
        engine_down = 0.0
        for i in range(CYCLES):
            if i == CYCLES // 2:
                engine_down = restart_engine()
            name = f"c{i}"
            retrying("create", client.post, "/api/sessions",
                     {"repo_path": str(repo), "name": name}, already=409)
            retrying("delete", client.delete, f"/api/sessions/{name}", already=404)
        killer.halt.set()
        killer.join(timeout=30)
        storm = time.monotonic() - started
        # Convergence: the services are up, the deleted sessions are gone.
        wait_for(lambda: all(app.state(s) == "RUNNING" for s in SERVICES), timeout=60,
                 what="every service back")

        def settled() -> bool:
            rows = retrying("list", lambda: client.get("/api/sessions", all="true"))["sessions"]
            return sorted(s["name"] for s in rows) == sorted(STEADY) and all(
                s["phase"] in (s["desired"], "failed") for s in rows)

        wait_for(settled, timeout=180, interval=0.5, what="the appliance to converge")
        rows = client.get("/api/sessions", all="true")["sessions"]
        for s in rows:
            assert s["phase"] == s["desired"] or (s["phase"] == "failed" and s["status_reason"])
        instance = instance_id(app.settings)
        containers = engine.containers.list(
            all=True, filters={"label": f"clauderon.instance={instance}"})
        leftovers = {c.labels.get("clauderon.name") for c in containers} - set(STEADY)
        assert leftovers == set(), leftovers
        folders = {p.name for p in app.settings.worktrees_dir.iterdir()}
        assert folders == set(STEADY), folders
        # Events: what the follower saw is the journal, in order, none lost or repeated.
        traffic.halt.set()
        traffic.join(timeout=30)
        with sqlite3.connect(app.settings.db_path) as db:
            journal = [row[0] for row in db.execute("SELECT id FROM events ORDER BY id")]
        wait_for(lambda: follower.ids and follower.ids[-1] >= journal[-1], timeout=60,
                 what="the follower to catch up")
        follower.halt.set()
        seen = follower.ids
        assert seen == sorted(set(seen)), "event ids must strictly increase, none repeated"
        assert seen == journal
        # Audit: every line the proxy wrote is archived exactly once.
        wait_for(lambda: len(archived(app.home)) >= len(written(app.home)), timeout=120,
                 what="the shipper to archive everything")
        lines = written(app.home)
        ids = [parse_line(line).id for line in lines]
        archived_ids = [parse_line(line).id for line in archived(app.home)]
        assert sorted(archived_ids) == sorted(ids)
        assert len(set(archived_ids)) == len(archived_ids)
        with capsys.disabled():  # the figures, in every run's output
            print(f"\nchaos: {CYCLES} create/delete cycles + {len(STEADY)} steady sessions in "
                  f"{storm:.0f}s; SIGKILLs {dict(killer.kills)} "
                  f"({sum(killer.kills.values())} in all); engine restarted once "
                  f"({engine_down:.1f}s down); events {len(journal)} in the journal, all "
                  f"{len(seen)} seen in order across {follower.reconnects} reconnects; audit "
                  f"lines {len(ids)} written ({traffic.answered} answered), archived once each; "
                  f"leftover containers 0, leftover workspaces 0")
    finally:
        client.close()  # its pooled sockets, some to a killed API: closed, not left to gc
        killer.halt.set()
        traffic.halt.set()
        follower.halt.set()
        app.stop()
        for c in engine.containers.list(
                all=True, filters={"label": f"clauderon.instance={instance_id(app.settings)}"}):
            c.remove(force=True)
        network = SessionNetwork.for_settings(app.settings)
        if network is not None:
            network.remove()
