"""Benchmark: ``create`` -> the agent's first model request reaching the upstream.

Run: ``.venv/bin/python bench/first_token.py [-n 5]``. One run starts the appliance (API,
reconciler, proxy) on a temporary home, a fake Messages API on loopback behind the proxy's
``[upstreams]`` override, and then, N times: creates a Claude session with a prompt through
the API, and times (a) the session reaching ``running`` (worktree, container, start, agent
boot) and (b) the first ``POST /v1/messages`` arriving at the fake upstream; then deletes
it. Beside it, N bare ``docker run --rm IMAGE true`` of the same image (create, start, wait,
remove), the floor any container-per-session design pays. Prints p50 (and min/max); never
asserts. Needs dockerd and the agent image (images/agent/build.sh).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/first_token.py`
    sys.path.insert(1, str(REPO))

import docker  # noqa: E402

from tests.conftest import make_repo  # noqa: E402
from tests.e2e.conftest import ANTHROPIC_CANARY, proxy_toml  # noqa: E402
from tests.support.appliance import Appliance, wait_for  # noqa: E402
from tests.support.engine import AGENT_IMAGE  # noqa: E402
from tests.support.fake_models import FakeModels  # noqa: E402


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


def ours(folder: Path, image: str, n: int) -> tuple[list[float], list[float]]:
    running, first = [], []
    with FakeModels(folder) as fake:
        home = folder / "home"
        home.mkdir()
        (home / "proxy.toml").write_text(proxy_toml(fake))
        app = Appliance(home, agents=True, image=image,
                        env={"ANTHROPIC_API_KEY": ANTHROPIC_CANARY})
        try:
            app.start("proxy")
            wait_for(app.settings.ca_cert_path.exists, what="the proxy CA")
            app.start("api", "reconciler")
            repo = make_repo(folder / "repo")
            for i in range(n):
                fake.reset()
                t0 = time.monotonic()
                s = app.client().post("/api/sessions", {
                    "repo_path": str(repo), "name": f"bench-{i}", "prompt": "hello",
                    "skip_permissions": True})["session"]
                app.wait_phase(s["id"], "running", timeout=120)
                running.append(time.monotonic() - t0)
                if not fake.first_model_request.wait(120):
                    raise RuntimeError("the agent never called the model")
                first.append(fake.model_requests()[0].at - t0)
                app.client().delete(f"/api/sessions/{s['id']}")
                wait_for(lambda sid=s["id"]: not app.client().get(
                    "/api/sessions", all="true")["sessions"], timeout=60, what="the delete")
        finally:
            app.cleanup()
    return running, first


def show(label: str, values: list[float]) -> str:
    return (f"{label:<44} p50 {statistics.median(values) * 1000:7.0f} ms   "
            f"min {min(values) * 1000:6.0f}   max {max(values) * 1000:6.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument("--image", default=AGENT_IMAGE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o711)  # git runs as the repository's owner: it must reach it
        bare = bare_runs(args.image, args.n)
        running, first = ours(Path(tmp), args.image, args.n)
    print(f"first token bench: {args.n} runs, image {args.image}")
    print(show("bare docker run --rm IMAGE true", bare))
    print(show("create -> session running (agent booted)", running))
    print(show("create -> first model request at upstream", first))
    print(f"ratio first request / bare docker run (p50): "
          f"{statistics.median(first) / statistics.median(bare):.1f}x")


if __name__ == "__main__":
    main()
