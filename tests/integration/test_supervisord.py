"""The whole appliance under supervisord, started the way people start it (`clauderon daemon`).

Every program in supervisord.conf must start, serve, and stop gracefully on SIGTERM within
its stop timeout: supervisord must never have to kill one.
"""

from __future__ import annotations

import configparser
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import docker
import httpx

from tests.support.appliance import Appliance, wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def programs() -> list[str]:
    conf = configparser.RawConfigParser()
    conf.read(ROOT / "supervisord.conf")
    return [s.split(":", 1)[1] for s in conf.sections() if s.startswith("program:")]


def beside(home: Path) -> list[int]:
    """The processes `clauderon daemon` left beside supervisord for ``home``: forked from it,
    so they carry its command line and environment."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if any(arg.endswith(b"clauderon") for arg in cmdline[:2]) and b"daemon" in cmdline \
                and f"CLAUDERON_HOME={home}".encode() in environ:
            found.append(int(proc.name))
    return found


def test_every_program_runs_a_real_console_script() -> None:
    conf = configparser.RawConfigParser()
    conf.read(ROOT / "supervisord.conf")
    for name in programs():
        command = conf.get(f"program:{name}", "command")
        script = command.split("/")[-1].split()[0]
        assert (BIN / script).exists(), f"{name}: {script} is not installed"
        assert conf.getint(f"program:{name}", "stopwaitsecs") >= 10


def test_daemon_runs_the_appliance_and_stops_gracefully(
    tmp_path: Path, repo: Path, engine: docker.DockerClient
) -> None:
    app = Appliance(tmp_path / "home")
    log = open(tmp_path / "daemon.log", "wb")  # noqa: SIM115
    env = {k: v for k, v in app.env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    daemon = subprocess.Popen([str(BIN / "clauderon"), "daemon", "--sign-in"], env=env,
                              stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ctl = [str(BIN / "supervisorctl"), "-c", str(ROOT / "supervisord.conf")]

        def all_running() -> bool:
            out = subprocess.run([*ctl, "status"], env=app.env, capture_output=True, text=True)
            lines = [line for line in out.stdout.splitlines() if line.strip()]
            return len(lines) == len(programs()) and all("RUNNING" in x for x in lines)

        wait_for(all_running, timeout=60, what="every program RUNNING")
        wait_for(app._api_up, timeout=30, what="the API")
        # The one-time link `--sign-in` prints once the API answers signs a browser in.
        printed = re.compile(rf"http://localhost:{app.http_port}/signin#token=(\S+)")
        token = wait_for(lambda: printed.search((tmp_path / "daemon.log").read_text()),
                         timeout=60, what="the sign-in link").group(1)
        r = httpx.post(f"{app.base}/api/auth/link", json={"token": token},
                       headers={"Origin": app.base})
        assert r.status_code == 200 and "set-cookie" in r.headers, r.text
        out = app.cli("create", "--repo", str(repo), "--name", "supervised", "--prompt", "p")
        assert "running" in out.stdout
        assert oct(os.stat(app.settings.socket_path).st_mode & 0o777) == "0o600"

        # The watcher that wakes supervisord (appliance.nudge) runs beside it (the sign-in
        # link's printer has ended once its link is out).
        wait_for(lambda: len(beside(app.home)) == 1, timeout=30, what="the watcher alone")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
        wait_for(lambda: not beside(app.home), timeout=30, what="the watcher to end with it")
        text = (app.home / "logs" / "supervisord.log").read_text()
        for name in programs():
            assert re.search(rf"stopped: {name} \(exit status 0\)", text), text
        assert "SIGKILL" not in text
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        log.close()
        app.cleanup()
