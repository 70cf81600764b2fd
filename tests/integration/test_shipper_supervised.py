"""The real shipper and the real proxy under a real supervisord, from supervisord.conf.

The proxy writes an audit line for every request (here: requests without proxy
credentials, answered 407 on loopback, so nothing leaves this machine). The shipper
rotates ``audit.jsonl`` by asking supervisord to SIGHUP the proxy, is killed with SIGKILL
several times mid-stream (supervisord restarts it), ships to a real HTTP receiver on
loopback, and finally stops on SIGTERM with exit status 0. Afterwards every audit line
ever written is in the archive exactly once, and at the receiver at least once.
"""

from __future__ import annotations

import configparser
import gzip
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from appliance.audit import PROXY_RUN, parse_line
from tests.integration.test_shipper_files import Ingest, ingest
from tests.support.appliance import wait_for
from tests.support.engine import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KILLS = 3
__all__ = ["ingest"]  # the fixture: a real HTTP receiver on loopback


def trimmed_conf(target: Path) -> None:
    """supervisord.conf as shipped, with only the proxy and the shipper programs."""
    conf = configparser.RawConfigParser()
    conf.read(ROOT / "supervisord.conf")
    for section in conf.sections():
        if section.startswith("program:") and section not in ("program:proxy",
                                                                "program:shipper"):
            conf.remove_section(section)
    with target.open("w") as fh:
        conf.write(fh)


def archived(home: Path) -> list[str]:
    out: list[str] = []
    for path in sorted((home / "archive").glob("audit-*.jsonl.gz")):
        with gzip.open(path, "rt") as fh:
            out += fh.read().splitlines()
    return out


def grown(home: Path, lines: int) -> Callable[[], bool]:
    """A predicate: the archive holds ``lines`` more lines than it does now."""
    floor = len(archived(home)) + lines
    return lambda: len(archived(home)) >= floor


def written(home: Path) -> list[str]:
    """Every line the proxy wrote: the rotated files (oldest first), then the live one."""
    out: list[str] = []
    for path in sorted(home.glob("audit.jsonl.*")):
        opener: Any = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as fh:
            out += fh.read().splitlines()
    live = home / "audit.jsonl"
    return out + (live.read_text().splitlines() if live.exists() else [])


def rotations(home: Path) -> int:
    """How many times the shipper has said it rotated ``audit.jsonl``."""
    log = home / "logs" / "shipper.log"
    return log.read_text().count("rotated ") if log.exists() else 0


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError:
        return False
    return True


class Requests:
    """Sends requests without proxy credentials, one after another, until stopped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            while not self.stop.is_set():
                conn.request("GET", f"http://example.invalid/item/{self.sent}?token=secret")
                response = conn.getresponse()
                response.read()
                assert response.status == 407
                self.sent += 1
                if response.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        finally:
            conn.close()


def test_shipper_under_supervisord_survives_kills_and_rotations(
        tmp_path: Path, ingest: tuple[Ingest, str]) -> None:
    receiver, url = ingest
    receiver.fail_first = 0  # it acknowledges every body
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)  # as `clauderon daemon` does before supervisord
    proxy_port = free_port()
    (home / "config.toml").write_text(
        f"[proxy]\nport = {proxy_port}\n"
        '[docker]\nnetwork = "none"\n'  # no sessions: the proxy on loopback only
        "[shipper]\nrotate_bytes = 100000\nkeep_rotated = 1000\npoll_seconds = 0.05\n"
        f'batch_lines = 15\nretry_max_seconds = 0.2\nhttp_url = "{url}"\n')
    conf = tmp_path / "supervisord.conf"
    trimmed_conf(conf)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CLAUDERON_HOME": str(home),
           "CLAUDERON_BIN": str(BIN)}
    log = (tmp_path / "supervisord.out").open("wb")
    daemon = subprocess.Popen([str(BIN / "supervisord"), "-c", str(conf)], env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    def call(method: str, *args: object) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{home / 'supervisor.sock'}")
        with xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport) as rpc:
            return getattr(rpc.supervisor, method)(*args)

    def state(name: str) -> str:
        assert daemon.poll() is None, (tmp_path / "supervisord.out").read_text()
        try:
            return str(call("getProcessInfo", name)["statename"])
        except (OSError, xmlrpc.client.Error):
            return "UNREACHABLE"

    requests = Requests(proxy_port)
    try:
        wait_for(lambda: state("proxy") == "RUNNING" and state("shipper") == "RUNNING",
                 timeout=60, what="proxy and shipper RUNNING")
        wait_for(lambda: port_open(proxy_port), timeout=30, what="the proxy port")
        requests.thread.start()
        for _ in range(KILLS):
            wait_for(grown(home, 40), timeout=60, what="the shipper to make progress")
            wait_for(lambda: state("shipper") == "RUNNING", timeout=60, what="shipper up")
            call("signalProcess", "shipper", "KILL")
            wait_for(lambda: state("shipper") != "RUNNING", timeout=30, what="shipper killed")
        wait_for(grown(home, 40), timeout=60, what="progress after the last kill")
        # Requests go on until the shipper has rotated twice: how many lines the kills
        # above took is up to the machine's speed, and fewer than rotate_bytes rotate none.
        wait_for(lambda: rotations(home) >= 2, timeout=120, what="two rotations")
        requests.stop.set()
        requests.thread.join(timeout=30)
        total = requests.sent
        # Every request's line and the proxy's own line as it started.
        wait_for(lambda: len(archived(home)) >= total + 1, timeout=60,
                 what="everything shipped")
        wait_for(lambda: not list(home.glob("audit.jsonl.*[0-9]Z")), timeout=30,
                 what="the last rotated file finished and compressed")

        assert call("stopProcess", "shipper") is True
        info = call("getProcessInfo", "shipper")
        assert (info["statename"], info["exitstatus"]) == ("STOPPED", 0)
    finally:
        requests.stop.set()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        finally:
            if daemon.poll() is None:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait()
            log.close()

    lines = written(home)
    every = [parse_line(line) for line in lines]
    # One line a request, and the proxy's own line as it started (its run: ``audit.started``).
    records = [r for r in every if r.session != PROXY_RUN]
    assert [r.method for r in every if r.session == PROXY_RUN] == ["START"]
    assert len(records) == total
    assert all(r.status == 407 and "secret" not in r.path for r in records)
    assert archived(home) == lines  # exactly once, in order, despite three SIGKILLs
    received = [parse_line(line).id for line in receiver.lines()]
    assert sorted(set(received)) == sorted(r.id for r in every)  # at least once
    assert len(list(home.glob("audit.jsonl.*.gz"))) >= 2  # real rotations, real SIGHUPs
    assert rotations(home) >= 2 and "draining" in (home / "logs" / "shipper.log").read_text()
    supervisor_log = (home / "logs" / "supervisord.log").read_text()
    assert supervisor_log.count("exited: shipper (terminated by SIGKILL") == KILLS  # ours
    assert "stopped: shipper (exit status 0)" in supervisor_log
    assert "stopped: proxy (exit status 0)" in supervisor_log
