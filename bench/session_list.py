"""Benchmark: GET /api/sessions with 1,000 sessions in the store.

Fills a real store with 1,000 sessions, runs the real API process, and times N requests
over the Unix socket (the CLI's path) and over HTTP on loopback (the web UI's path), next
to the floor of a request to GET /api/health's cheapest sibling, /api/recent-repos, on
each path. Prints p50/p99 (target p50 <= 10 ms) and the API process's CPU time per
request (what a request costs it, whatever the machine's load does to the wall clock).
Never asserts.

Usage: .venv/bin/python bench/session_list.py [-n 200] [--sessions 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.intake import new_session, parse_create  # noqa: E402
from appliance.sessions import Phase  # noqa: E402
from appliance.store import Store  # noqa: E402
from tests.support.appliance import Appliance  # noqa: E402


def fill(app: Appliance, count: int) -> None:
    store = Store.open(app.settings.db_path)
    req = parse_create({"repo_path": "/srv/repo", "prompt": "benchmark " * 20})
    for i in range(count):
        s = new_session(req, name=f"s{i:05d}", repo_root=Path("/srv/repo"), subdirectory="",
                        base_ref="main", worktrees_dir=app.settings.worktrees_dir,
                        default_image="img", default_cpu=None, default_memory=None,
                        instance_key=b"k" * 32)
        store.insert_session(replace(s, phase=Phase.RUNNING))
    store.close()


def cpu_seconds(pid: int) -> float:
    """User + system time of a process so far: what a request costs the API, whatever the
    machine's load does to the wall clock."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(get: object, n: int, pid: int) -> tuple[list[float], float]:
    """Wall times of ``n`` requests, and the API's CPU time per request."""
    out = []
    cpu = cpu_seconds(pid)
    for _ in range(n):
        start = time.perf_counter()
        r = get()  # type: ignore[operator]
        r.raise_for_status()
        out.append(time.perf_counter() - start)
    return out, (cpu_seconds(pid) - cpu) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = Appliance(Path(tmp) / "home")
        app.settings.ensure_layout()
        fill(app, args.sessions)
        try:
            app.start("api")
            uds = httpx.Client(transport=httpx.HTTPTransport(uds=str(app.settings.socket_path)),
                               base_url="http://clauderon")
            tcp = app.http()  # signed in with a bearer token, as a script is
            assert len(uds.get("/api/sessions").json()["sessions"]) == args.sessions
            assert len(tcp.get("/api/sessions").json()["sessions"]) == args.sessions
            pid = app.procs["api"].pid
            rows = {
                "unix socket  /api/sessions": timed(lambda: uds.get("/api/sessions"), args.n, pid),
                "http         /api/sessions": timed(lambda: tcp.get("/api/sessions"), args.n, pid),
                "unix socket  /api/recent-repos (floor)":
                    timed(lambda: uds.get("/api/recent-repos"), args.n, pid),
                "http         /api/recent-repos (floor)":
                    timed(lambda: tcp.get("/api/recent-repos"), args.n, pid),
            }
            uds.close()
            tcp.close()
        finally:
            app.cleanup()
    print(f"session_list  sessions={args.sessions} n={args.n}")
    for label, (values, cpu) in rows.items():
        p99 = sorted(values)[int(0.99 * (len(values) - 1))]
        print(f"  {label:40s} p50 {statistics.median(values) * 1000:6.2f} ms  "
              f"p99 {p99 * 1000:6.2f} ms   API CPU {cpu * 1000:5.2f} ms/request")
    print("  target: /api/sessions p50 <= 10 ms")


if __name__ == "__main__":
    main()
