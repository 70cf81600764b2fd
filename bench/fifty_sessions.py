"""Benchmark: what the appliance costs with fifty running sessions.

Run: ``.venv/bin/python bench/fifty_sessions.py [--sessions 50] [--idle 30]``. Starts the
whole appliance the way people do (``clauderon daemon``: supervisord and its four services)
on a temporary home with the default reconciler timings, creates N plain sessions (real
containers of the base image) through the API and waits for all to run, lets it settle,
then measures:

- the resident memory (RSS) of each of the four services and their sum (target <= 250 MiB),
  beside supervisord's own, and the same right after start with no session (the floor);
- the CPU the idle appliance burns over ``--idle`` seconds (user + system time of
  supervisord and every service, from /proc), as a share of one core;
- one reconcile pass over the N sessions (the reconciler's own ``run_pass``, built the way
  its service builds it, timed in this process) beside its floor: the one engine call that
  lists the same containers;
- ``GET /api/sessions`` p50/p99 with the N sessions, over the Unix socket and over HTTP
  (``bench/session_list.py`` measures it at 1,000 sessions).

Never asserts. Leaves nothing: supervisord is stopped (its services drain), the appliance's
cleanup removes the containers and the network labelled with its own instance id, and the
temporary folder goes.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/fifty_sessions.py`
    sys.path.insert(1, str(REPO))

import docker  # noqa: E402
import httpx  # noqa: E402
import trio  # noqa: E402

from tests.conftest import make_repo  # noqa: E402
from tests.support.appliance import Appliance, wait_for  # noqa: E402

BIN = Path(sys.executable).parent
SERVICES = ("api", "proxy", "reconciler", "shipper")
TICK = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[round(q * (len(values) - 1))]


class Daemon:
    """``clauderon daemon`` in its own process group, and supervisorctl beside it."""

    def __init__(self, app: Appliance, log: Path) -> None:
        self.app = app
        self._log = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([str(BIN / "clauderon"), "daemon"], env=app.env,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.ctl = [str(BIN / "supervisorctl"), "-c", str(REPO / "supervisord.conf")]

    def pids(self) -> dict[str, int]:
        """Each service's pid, once all four run (``name RUNNING pid N, uptime …``)."""
        out = subprocess.run([*self.ctl, "status"], check=False, env=self.app.env,
                             capture_output=True, text=True, timeout=30).stdout
        got = {}
        for line in out.splitlines():
            words = line.replace(",", " ").split()
            if len(words) >= 4 and words[0] in SERVICES and words[1] == "RUNNING":
                got[words[0]] = int(words[3])
        return got if len(got) == len(SERVICES) else {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def memory(daemon: Daemon) -> dict[str, float]:
    pids = daemon.pids()
    out = {name: rss_mib(pid) for name, pid in pids.items()}
    out["supervisord"] = rss_mib(daemon.proc.pid)
    return out


def idle_cpu(daemon: Daemon, seconds: float) -> dict[str, float]:
    pids = {**daemon.pids(), "supervisord": daemon.proc.pid}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    start = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    return {name: (cpu_seconds(pid) - before[name]) / elapsed * 100
            for name, pid in pids.items()}


def reconcile_passes(app: Appliance, n: int) -> tuple[list[float], list[float], int]:
    """Time ``n`` passes of a reconciler built as the service builds it, beside the engine
    call that lists the same containers. Returns (passes, floors, actions the timed passes
    planned)."""
    from appliance.reconcile.__main__ import build  # noqa: PLC0415 (import order)

    reconciler = build(app.env)
    engine = docker.from_env()
    label = {"label": [f"clauderon.instance={app.instance}"]}
    passes: list[float] = []
    floors: list[float] = []
    actions = 0

    async def run() -> None:
        nonlocal actions
        async with trio.open_nursery() as nursery:
            # A first pass of a new reconciler checks every branch once (a sync each): the
            # service did that at its start; the passes timed are the steady ones after it.
            await reconciler.run_pass(nursery)
            await reconciler.drain(60)
            for _ in range(n):
                t0 = time.perf_counter()
                actions += len(await reconciler.run_pass(nursery))
                passes.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await trio.to_thread.run_sync(lambda: engine.api.containers(filters=label))
                floors.append(time.perf_counter() - t0)
                await reconciler.drain(30)

    try:
        trio.run(run)
    finally:
        engine.close()
        reconciler.store.sync.close()
    return passes, floors, actions


def list_times(app: Appliance, n: int) -> dict[str, list[float]]:
    uds = httpx.Client(transport=httpx.HTTPTransport(uds=str(app.settings.socket_path)),
                       base_url="http://clauderon")
    tcp = app.http()
    out: dict[str, list[float]] = {"unix socket": [], "http": []}
    try:
        for label, client in (("unix socket", uds), ("http", tcp)):
            client.get("/api/sessions").raise_for_status()
            for _ in range(n):
                t0 = time.perf_counter()
                client.get("/api/sessions").raise_for_status()
                out[label].append(time.perf_counter() - t0)
    finally:
        uds.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU")
    parser.add_argument("--passes", type=int, default=10)
    args = parser.parse_args()
    # A SIGTERM (``timeout``) unwinds like Ctrl-C: the cleanup below runs, nothing is left.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fifty-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # git runs as the repository's owner: it must reach it
        app = Appliance(root / "home")
        # The defaults people run with, not the tests' quick reconciler timings.
        config = app.home / "config.toml"
        text = config.read_text()
        config.write_text(text[:text.index("[reconciler]")] + text[text.index("[docker]"):]
                          + f"[limits]\nmax_sessions = {args.sessions + 5}\n"
                          f"max_concurrent_creates = {args.sessions}\n")
        daemon = Daemon(app, root / "daemon.log")
        try:
            wait_for(lambda: bool(daemon.pids()), timeout=60, what="the four services")
            wait_for(app._api_up, timeout=60, what="the API")
            time.sleep(5)
            report["rss_empty"] = memory(daemon)
            repo = make_repo(root / "repo")
            t0 = time.monotonic()
            # Names of this run only: container names are the engine's, not the instance's,
            # and a run cut short elsewhere may have left its ``clauderon-s00`` behind.
            run = secrets.token_hex(2)
            ids = [app.client().post("/api/sessions", {"repo_path": str(repo),
                                                       "name": f"s{i:02d}-{run}"}
                                     )["session"]["id"]
                   for i in range(args.sessions)]
            for sid in ids:
                app.wait_phase(sid, "running", timeout=240)
            report["create_all"] = time.monotonic() - t0
            time.sleep(10)  # let it settle: no create in flight, caches warm
            report["rss"] = memory(daemon)
            report["cpu"] = idle_cpu(daemon, args.idle)
            report["list"] = list_times(app, 200)
            report["passes"] = reconcile_passes(app, args.passes)
        finally:
            daemon.stop()
            app.cleanup()
    show(args, report)


def show(args: argparse.Namespace, report: dict[str, Any]) -> None:
    n = args.sessions
    print(f"fifty sessions: {n} running plain sessions under supervisord "
          f"(created in {report['create_all']:.1f} s)")
    empty, full = report["rss_empty"], report["rss"]
    print(f"  {'RSS MiB':<14}{'0 sessions':>12}{f'{n} sessions':>14}")
    for name in (*SERVICES, "supervisord"):
        print(f"  {name:<14}{empty.get(name, 0):12.1f}{full.get(name, 0):14.1f}")
    total_empty = sum(empty.get(s, 0) for s in SERVICES)
    total = sum(full.get(s, 0) for s in SERVICES)
    print(f"  {'four services':<14}{total_empty:12.1f}{total:14.1f}   target <= 250 MiB")
    cpu = report["cpu"]
    print(f"  idle CPU over {args.idle:.0f} s, % of one core: " + "  ".join(
        f"{name} {cpu.get(name, 0):.2f}" for name in (*SERVICES, "supervisord"))
        + f"   all {sum(cpu.values()):.2f}")
    for label, values in report["list"].items():
        print(f"  GET /api/sessions ({label}, {n} sessions) p50 "
              f"{statistics.median(values) * 1e3:6.2f} ms  p99 "
              f"{percentile(values, 0.99) * 1e3:6.2f} ms")
    passes, floors, actions = report["passes"]
    print(f"  reconcile pass over {n} sessions  p50 {statistics.median(passes) * 1e3:7.2f} ms"
          f"  max {max(passes) * 1e3:7.2f} ms   (actions planned: {actions})")
    print(f"  floor: engine lists the containers p50 {statistics.median(floors) * 1e3:7.2f} ms"
          f"   ratio {statistics.median(passes) / statistics.median(floors):.1f}x")


if __name__ == "__main__":
    main()
