"""Operations on a running appliance, started as people start it (`clauderon daemon`: the four
services under supervisord): Prometheus metrics scraped over HTTP, the services' logs, a
backup taken live and restored into a fresh home.

The session's side is played in a real container of the agent image as uid 1000: a hook
event and a model call through the proxy to the fake model API on loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import AGENT_UID
from tests.e2e.conftest import ANTHROPIC_CANARY, proxy_toml
from tests.support.agent_app import create
from tests.support.appliance import BIN, Appliance, wait_for
from tests.support.fake_models import FakeModels

ROOT = Path(__file__).resolve().parents[2]
CTL = [str(BIN / "supervisorctl"), "-c", str(ROOT / "supervisord.conf")]
SERVICES = ("api", "proxy", "reconciler", "shipper")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def daemon(tmp_path: Path, agent_image: str, fake: FakeModels) -> Iterator[Appliance]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "proxy.toml").write_text(proxy_toml(fake))
    app = Appliance(home, image=agent_image, env={"ANTHROPIC_API_KEY": ANTHROPIC_CANARY})
    log = open(tmp_path / "daemon.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([str(BIN / "clauderon"), "daemon"], env=app.env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def all_running() -> bool:
            out = subprocess.run([*CTL, "status"], env=app.env, capture_output=True, text=True)
            lines = [line for line in out.stdout.splitlines() if line.strip()]
            return len(lines) == len(SERVICES) and all("RUNNING" in x for x in lines)

        wait_for(all_running, timeout=60, what="every program RUNNING")
        wait_for(app._api_up, timeout=30, what="the API")
        yield app
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        app.cleanup()


def scrape(http: httpx.Client) -> Samples:
    r = http.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")  # the exposition
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_metrics_logs_backup_and_restore_of_a_running_appliance(
        daemon: Appliance, repo: Path, tmp_path: Path) -> None:
    app = daemon
    s = create(app, repo, "scraped")
    # More CPUs than the machine has: the engine refuses the container, the session fails.
    app.cli("create", "--repo", str(repo), "--name", "greedy", "--cpu", "500", "--prompt", "p",
            check=False)
    app.wait_phase("greedy", "failed")
    app.hook("scraped", "PreToolUse")
    app.hook("scraped", "PreToolUse")
    app.hook("scraped", "Stop")
    [container] = app.containers(s["id"])
    code, out = container.exec_run(
        ["curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code}", "-X",
         "POST", "-H", "content-type: application/json", "-d", '{"model":"x"}',
         "https://api.anthropic.com/v1/messages"], user=f"{AGENT_UID}:{AGENT_UID}")
    assert (code, out) == (0, b"200")

    # --- /metrics: behind sign-in, like every route over TCP ------------------------
    anonymous = httpx.get(f"{app.base}/metrics", timeout=10)
    assert anonymous.status_code == 401
    assert "clauderon_" not in anonymous.text

    reader = app.http(scope="read-only")  # a read-only token is enough to scrape

    def complete() -> Samples | None:
        got = scrape(reader)
        wanted = [
            value(got, "clauderon_proxy_requests_total", host="api.anthropic.com",
                  decision="injected") == 1,
            value(got, "clauderon_session_failures_total") == 1,
            (value(got, "clauderon_reconcile_passes_total") or 0) >= 1,
        ]
        return got if all(wanted) else None

    samples = wait_for(complete, timeout=60, what="every service's metrics")
    print("\nscraped:", len(samples), "samples")
    assert value(samples, "clauderon_sessions", phase="running") == 1
    assert value(samples, "clauderon_sessions", phase="failed") == 1
    assert value(samples, "clauderon_sessions", phase="archived") == 0
    assert value(samples, "clauderon_running_sessions", state="waiting_input") == 1
    assert value(samples, "clauderon_session_creates_total", agent="claude",
                 backend="docker") == 2
    assert (value(samples, "clauderon_session_start_failures_total") or 0) >= 1
    assert value(samples, "clauderon_hook_events_total", event="PreToolUse") == 2
    assert value(samples, "clauderon_hook_events_total", event="Stop") == 1
    host = {"host": "api.anthropic.com"}
    assert (value(samples, "clauderon_proxy_bytes_total", direction="sent", **host)
            or 0) >= len('{"model":"x"}')
    assert (value(samples, "clauderon_proxy_bytes_total", direction="received", **host)
            or 0) > 0
    assert value(samples, "clauderon_proxy_request_duration_seconds_count", **host) == 1
    assert value(samples, "clauderon_proxy_request_duration_seconds_bucket", le="+Inf",
                 **host) == 1
    assert (value(samples, "clauderon_reconcile_pass_duration_seconds_count") or 0) >= 1
    for service in ("proxy", "reconciler", "shipper"):
        assert (value(samples, "clauderon_metrics_published_time_seconds", service=service)
                or 0) > 0, service

    # --- logs: supervisord's files of the four services ------------------------------
    every = app.cli("logs", "-n", "3").stdout
    for service in SERVICES:
        assert f"==> {service} (" in every
    assert app.cli("logs", "api", "-n", "5").stdout.strip()
    sup = app.cli("logs", "supervisord", "-n", "200").stdout
    assert "success: api entered RUNNING state" in sup

    # --- backup, live; restore refuses while it runs; restore into a fresh home ---------
    target = tmp_path / "backups" / "clauderon.sqlite"
    target.parent.mkdir()
    made = app.cli("backup", str(target)).stdout
    assert f"backed up to {target}: 2 session(s)" in made
    refused = app.cli("restore", str(target), check=False)
    assert refused.returncode == 4
    assert "the appliance is running" in refused.stderr and "Stop it first" in refused.stderr
    assert "Traceback" not in refused.stderr
    listed = app.cli("list", "--all").stdout  # nothing was touched
    assert "scraped" in listed and "greedy" in listed

    fresh = Appliance(tmp_path / "fresh", image=app.settings.default_image)
    try:
        restored = fresh.cli("restore", str(target)).stdout
        assert "restored into" in restored and "2 session(s)" in restored
        fresh.start("api")
        names = fresh.cli("list", "--all").stdout
        assert "scraped" in names and "greedy" in names
        again = fresh.cli("restore", str(target), check=False)
        assert again.returncode == 4 and "the appliance is running" in again.stderr
    finally:
        fresh.cleanup()
