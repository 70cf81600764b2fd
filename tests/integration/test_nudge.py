"""The watcher beside supervisord (``appliance.nudge``), against a real supervisord: a
service killed comes back, the watcher follows the new process too, and it ends when
supervisord does (nothing left behind). How soon the service comes back is a figure for
``bench/appliance_restart.py``, not an assertion here."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from appliance import nudge
from tests.support.appliance import wait_for

BIN = Path(sys.executable).parent

CONF = """
[supervisord]
nodaemon=true
logfile={home}/supervisord.log
pidfile={home}/supervisord.pid
[unix_http_server]
file={home}/supervisor.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:sleeper]
command=/bin/sleep 100000
autorestart=true
startsecs=0
"""


def sleeper(home: Path) -> int | None:
    pids = nudge.running_pids(home / "supervisor.sock")
    return next(iter(pids)) if len(pids) == 1 else None


def test_the_watcher_follows_each_new_process_and_ends_with_supervisord(tmp_path: Path) -> None:
    (tmp_path / "s.conf").write_text(CONF.format(home=tmp_path))
    sv = subprocess.Popen([str(BIN / "supervisord"), "-c", str(tmp_path / "s.conf")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result: list[int] = []
    watcher = threading.Thread(
        target=lambda: result.append(nudge.watch(sv.pid, tmp_path / "supervisor.sock")),
        daemon=True)
    try:
        first = wait_for(lambda: sleeper(tmp_path), timeout=30, what="the program")
        watcher.start()
        pids = [first]
        for _ in range(3):  # each new process is watched in its turn
            subprocess.run(["kill", "-KILL", str(pids[-1])], check=True)
            pids.append(wait_for(lambda: (p := sleeper(tmp_path)) not in pids and p,
                                 timeout=30, what="a new process"))
        spawned = (tmp_path / "supervisord.log").read_text().count("spawned: 'sleeper'")
        assert spawned == 4 and len(set(pids)) == 4
    finally:
        sv.terminate()
        sv.wait(timeout=30)
    watcher.join(timeout=30)
    assert not watcher.is_alive() and result == [0]
    assert nudge.running_pids(tmp_path / "supervisor.sock") == set()
