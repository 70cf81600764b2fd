"""Benchmark: session create -> running, against the bare floor, in one run.

Ours: POST /api/sessions (over the Unix socket) until the session is ``running`` (the real
API and reconciler processes, the real engine). The floor: what any tool must do at least,
a private repository that borrows the user's objects (``git clone --shared``) + ``docker run
-d`` of the same image. Interleaved, N rounds each;
prints p50/p90 of both and the ratio (target: ratio <= 1.25, p50 <= 1 s). Never asserts.

Usage: .venv/bin/python bench/session_create.py [-n 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import AGENT_UID as OWNER  # noqa: E402
from tests.conftest import make_repo  # noqa: E402
from tests.support.appliance import Appliance  # noqa: E402
from tests.support.engine import BASE_IMAGE, ensure_engine  # noqa: E402


def ours(app: Appliance, repo: Path, name: str) -> float:
    client = app.client()
    start = time.perf_counter()
    sid = client.post("/api/sessions", {"repo_path": str(repo), "name": name})["session"]["id"]
    while client.get(f"/api/sessions/{sid}")["session"]["phase"] != "running":
        time.sleep(0.005)
    return time.perf_counter() - start


def floor(repo: Path, workdir: Path, name: str) -> float:
    start = time.perf_counter()
    # As the repository's owner, as the appliance runs git.
    workdir.mkdir(exist_ok=True)
    os.chown(workdir, OWNER, OWNER)
    subprocess.run(["git", "clone", "--shared", "--quiet", str(repo), str(workdir / name)],
                   check=True, user=OWNER, group=OWNER, extra_groups=[],
                   env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"})
    subprocess.run(["docker", "run", "-d", "-it", "--name", f"floor-{name}",
                    "--label", "clauderon.bench=floor", "-v", f"{workdir / name}:/workspace",
                    BASE_IMAGE, "bash"], check=True, capture_output=True)
    return time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=15)
    args = parser.parse_args()
    engine = ensure_engine()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        work.chmod(0o711)  # git runs as the repository's owner: it must reach it
        repo = make_repo(work / "repo")
        app = Appliance(work / "home", image=BASE_IMAGE)
        try:
            app.start("api", "reconciler")
            ours(app, repo, "warmup")
            a: list[float] = []
            b: list[float] = []
            for i in range(args.n):
                a.append(ours(app, repo, f"bench-{i}"))
                b.append(floor(repo, work / "floor", f"f{i}"))
        finally:
            app.cleanup()
            for c in engine.containers.list(all=True, filters={"label": "clauderon.bench=floor"}):
                c.remove(force=True)
    p50a, p50b = statistics.median(a), statistics.median(b)
    print(f"session_create  n={args.n}")
    for label, values in (("ours  (API -> running)", a), ("floor (clone --shared + run)", b)):
        print(f"  {label:30s} p50 {statistics.median(values) * 1000:7.1f} ms   "
              f"p90 {pct(values, .9) * 1000:7.1f} ms")
    print(f"  ratio ours/floor (p50)         {p50a / p50b:.2f}   "
          "(target <= 1.25; p50 target <= 1000 ms)")


if __name__ == "__main__":
    main()
