"""The benchmarks keep running: each one, at its smallest, prints its figures.

They are not timed here (a test never asserts a duration); this only guards them against
rot, since nothing else runs them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> str:
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_session_create_bench_runs(engine: docker.DockerClient) -> None:
    out = bench("bench/session_create.py", "-n", "1")
    assert "ratio ours/floor (p50)" in out and "floor (clone --shared + run)" in out


def test_session_list_bench_runs(engine: docker.DockerClient) -> None:
    out = bench("bench/session_list.py", "-n", "3", "--sessions", "20")
    assert "sessions=20" in out and out.count(" ms  p99 ") == 4
    assert out.count("ms/request") == 4


def test_first_token_bench_runs(engine: docker.DockerClient) -> None:
    out = bench("bench/first_token.py", "-n", "1")
    assert "warm: create -> first model request" in out and "agent CLI boot" in out
    assert "the agent's own start alone (warm)" in out


def test_appliance_restart_bench_runs(engine: docker.DockerClient) -> None:
    out = bench("bench/appliance_restart.py", "-n", "1")
    assert "api serving" in out and "floor (sleep) new process" in out


def test_live_status_bench_runs(engine: docker.DockerClient) -> None:
    out = bench("bench/live_status.py", "-n", "2", "--sessions", "1")
    assert "hook POST -> event on /ws/events" in out and "ratio event / POST" in out


def test_console_echo_bench_runs(engine: docker.DockerClient) -> None:
    out = bench("bench/console_echo.py", "-n", "3", "--rounds", "1")
    assert "/ws/console (WebSocket, TCP)" in out and "ratio ours / docker exec" in out
    assert "WebSocket echo, same server stack" in out


def test_fifty_sessions_bench_runs(engine: docker.DockerClient) -> None:
    out = bench("bench/fifty_sessions.py", "--sessions", "1", "--idle", "1", "--passes", "1")
    assert "four services" in out and "reconcile pass over 1 sessions" in out
    assert "idle CPU over 1 s" in out


def test_proxy_bench_runs_with_its_memory_waves() -> None:
    out = bench("bench/proxy.py", "--quick", "--no-mitm", "--streams", "20", "--waves", "3")
    assert "== requests/s" in out and "== 1 MiB bodies" in out and "== SSE" in out
    # The probed proxy answered every wave's report (a probe that broke ended the run).
    assert "memory verdict:" in out and "what the proxy keeps:" in out
    assert "session_cache" in out
