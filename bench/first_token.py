"""Benchmark: ``create`` -> the agent's first model request reaching the upstream, and where
that time goes.

Run: ``.venv/bin/python bench/first_token.py [-n 5]``. One run starts the appliance (API,
reconciler, proxy) on a temporary home, a fake Messages API on loopback behind the proxy's
``[upstreams]`` override, and then, N times: creates a Claude session with a prompt through
the API, and times (a) the session reaching ``running`` and (b) the first ``POST
/v1/messages`` arriving at the fake upstream; then deletes it. It does so twice: with the
warm start (the default: boot files written into the created container, the agent started
by the container's own entry) and with it off (``[agents] warm = false``: the boot through
``docker exec`` after the start), alternating. Beside them, N bare ``docker run --rm IMAGE
true`` of the same image (create, start, wait, remove), the floor any container-per-session
design pays.

The breakdown: the reconciler writes when each create step began (``timing`` event, host
monotonic clock) and the fake upstream notes when each request arrived (same clock), so
each step's share is read from one real run; the last row, the container's start to the
model request, is the agent's own start (a floor for any design that starts the agent once
its session exists, a pool of started containers included). Prints p50 (and min/max);
never asserts.
Needs dockerd and the agent image (images/agent/build.sh).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/first_token.py`
    sys.path.insert(1, str(REPO))

import docker  # noqa: E402

from tests.conftest import make_repo  # noqa: E402
from tests.e2e.conftest import ANTHROPIC_CANARY, proxy_toml  # noqa: E402
from tests.support.appliance import Appliance, wait_for  # noqa: E402
from tests.support.engine import AGENT_IMAGE  # noqa: E402
from tests.support.fake_models import FakeModels  # noqa: E402

#: (row, from, to): the reconciler's marks, and the upstream's ``first request`` / ``model``.
STEPS = (
    ("accepted -> reconciler picks it up", "t0", "begin"),
    ("worktree / repository preparation", "worktree", "container"),
    ("container create (+ boot files, warm)", "container", "start"),
    ("container start", "start", "started"),
    ("daemon: image tools check", "started", "settings"),
    ("daemon: hook and settings install (exec)", "settings", "tmux"),
    ("daemon: tmux start (warm: + tools check, exec)", "tmux", "booted"),
    ("agent CLI boot (started -> 1st upstream req)", "started", "first request"),
    ("first model request (1st req -> /v1/messages)", "first request", "model"),
    ("the agent's own start (started -> /v1/messages)", "started", "model"),
)
#: The row no container pool could take off the path (the agent starts with its session).
AGENT_ROW = STEPS[-1][0]
MODES = ("warm", "cold")


def bare_runs(image: str, n: int) -> list[float]:
    client = docker.from_env()
    out = []
    try:
        for _ in range(n):
            t0 = time.monotonic()
            client.containers.run(image, ["true"], remove=True)
            out.append(time.monotonic() - t0)
    finally:
        client.close()
    return out


class Run:
    def __init__(self) -> None:
        self.running: list[float] = []
        self.first: list[float] = []
        self.steps: dict[str, list[float]] = defaultdict(list)


def timings(app: Appliance, sid: str) -> dict[str, float]:
    events = app.client().get(f"/api/sessions/{sid}/events")["events"]
    timing = next(e for e in events if e["kind"] == "timing")
    return {step: float(at) for step, at in timing["payload"]["marks"]}


def one(app: Appliance, fake: FakeModels, repo: Path, name: str, run: Run) -> None:
    fake.reset()
    t0 = time.monotonic()
    s = app.client().post("/api/sessions", {
        "repo_path": str(repo), "name": name, "prompt": "hello",
        "skip_permissions": True})["session"]
    app.wait_phase(s["id"], "running", timeout=120)
    run.running.append(time.monotonic() - t0)
    if not fake.first_model_request.wait(120):
        raise RuntimeError("the agent never called the model")
    marks: dict[str, Any] = {"t0": t0, **timings(app, s["id"]),
                             "first request": fake.seen[0].at,
                             "model": fake.model_requests()[0].at}
    run.first.append(marks["model"] - t0)
    for row, start, end in STEPS:
        if start in marks and end in marks:
            run.steps[row].append(marks[end] - marks[start])
    app.client().delete(f"/api/sessions/{s['id']}")
    wait_for(lambda: not app.client().get("/api/sessions", all="true")["sessions"],
             timeout=60, what="the delete")


def ours(folder: Path, image: str, n: int) -> dict[str, Run]:
    runs = {mode: Run() for mode in MODES}
    with FakeModels(folder) as fake:
        apps: dict[str, Appliance] = {}
        try:
            for mode in MODES:
                home = folder / f"home-{mode}"
                home.mkdir()
                (home / "proxy.toml").write_text(proxy_toml(fake))
                app = apps[mode] = Appliance(
                    home, agents=True, image=image,
                    config=f"warm = {str(mode == 'warm').lower()}\n",
                    env={"ANTHROPIC_API_KEY": ANTHROPIC_CANARY})
                app.start("proxy")
                wait_for(app.settings.ca_cert_path.exists, what="the proxy CA")
                app.start("api", "reconciler")
            repo = make_repo(folder / "repo")
            for i in range(n):
                for mode in MODES:  # alternating: the machine's noise falls on both
                    one(apps[mode], fake, repo, f"bench-{mode}-{i}", runs[mode])
        finally:
            for app in apps.values():
                app.cleanup()
    return runs


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.0f}" if values else "      -"


def show(label: str, values: list[float]) -> str:
    return (f"{label:<48} p50 {statistics.median(values) * 1000:7.0f} ms   "
            f"min {min(values) * 1000:6.0f}   max {max(values) * 1000:6.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument("--image", default=AGENT_IMAGE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o711)  # git runs as the repository's owner: it must reach it
        bare = bare_runs(args.image, args.n)
        runs = ours(Path(tmp), args.image, args.n)
        bare += bare_runs(args.image, args.n)  # before and after: the same noise
    warm, cold = runs["warm"], runs["cold"]
    print(f"first token bench: {args.n} runs of each, image {args.image}")
    print(show("bare docker run --rm IMAGE true", bare))
    for mode, run in runs.items():
        print(show(f"{mode}: create -> session running", run.running))
        print(show(f"{mode}: create -> first model request", run.first))
    print("\nbreakdown (p50 ms; steps after 'container start' overlap on the warm start)")
    print(f"{'step':<48} {'warm':>7} {'cold':>7}")
    for row, _, _ in STEPS:
        print(f"{row:<48} {ms(warm.steps[row])} {ms(cold.steps[row])}")
    floor = statistics.median(bare)
    print(f"\nratio first request / bare docker run (p50): warm "
          f"{statistics.median(warm.first) / floor:.1f}x, cold "
          f"{statistics.median(cold.first) / floor:.1f}x")
    if warm.steps[AGENT_ROW]:
        print(f"the agent's own start alone (warm) is "
              f"{statistics.median(warm.steps[AGENT_ROW]) / floor:.1f}x the bare run: the floor "
              "of any design that starts the agent once its session exists")


if __name__ == "__main__":
    main()
