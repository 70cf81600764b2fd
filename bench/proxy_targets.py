"""The proxies under test for ``bench/proxy.py``: mitmproxy's ``mitmdump``, and ours.

Each starter returns a :class:`~proxy_client.Target` once the proxy listens and its CA
certificate exists, and registers the process for shutdown. ``mitmdump`` is found through
``$MITMDUMP``, then ``PATH``, then a virtualenv at ``.venv/mitmproxy-venv`` (mitmproxy
11.0.2 pins h11/h2 versions older than the ones this project runs on, so it lives in a
virtualenv of its own). Ours is started as ``python -m proxy`` with a temporary
``CLAUDERON_HOME``: a ``proxy.toml`` points the bench host at the loopback upstream, and a
session row (made with ``appliance.store``) gives the client proxy credentials.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/proxy.py`: the appliance is beside us
    sys.path.insert(1, str(REPO))

from proxy_client import Target  # noqa: E402
from proxy_upstream import BENCH_HOST, Upstream, free_port, wait_for_port  # noqa: E402

from appliance.config import Settings  # noqa: E402
from appliance.sessions import Session, new_session_id  # noqa: E402
from appliance.store import Store  # noqa: E402
from appliance.tokens import hash_token  # noqa: E402

#: Environment variables that could carry a real credential into the proxy under test.
_CREDENTIAL_VARS = (
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "CODEX_API_KEY",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "NPM_TOKEN",
    "DOCKER_TOKEN",
    "SENTRY_AUTH_TOKEN",
    "PAGERDUTY_TOKEN",
    "PAGERDUTY_API_KEY",
    "GRAFANA_API_KEY",
    "CODEX_ACCESS_TOKEN",
    "CODEX_REFRESH_TOKEN",
    "CODEX_ID_TOKEN",
    "CODEX_ACCOUNT_ID",
    "CODEX_AUTH_JSON_PATH",
)


class Processes:
    """Every proxy process started by the bench; all stopped on exit."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        self._procs.append(proc)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for_file(path: Path, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            err = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{path.name} never appeared; process said: {err}")
        time.sleep(0.05)


def _spawn(args: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    # Output goes to a file: a pipe nobody reads would fill up and stall the proxy.
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, **kwargs)


def find_mitmdump() -> str | None:
    for candidate in (
        os.environ.get("MITMDUMP"),
        shutil.which("mitmdump"),
        str(REPO / ".venv" / "mitmproxy-venv" / "bin" / "mitmdump"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def start_mitmdump(
    workdir: Path, upstream: Upstream, procs: Processes, *, stream: bool = False
) -> Target:
    exe = find_mitmdump()
    if exe is None:
        raise RuntimeError("mitmdump not found: run `sh bench/setup.sh` (or set MITMDUMP)")
    name = "mitmdump-stream" if stream else "mitmdump"
    confdir = workdir / name
    confdir.mkdir()
    port = free_port()
    args = [
        exe,
        "-q",
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "--set",
        f"confdir={confdir}",
        "--set",
        f"ssl_verify_upstream_trusted_ca={upstream.ca_pem}",
    ]
    if stream:
        args += ["--set", "stream_large_bodies=1"]
    log = workdir / f"{name}.log"
    proc = _spawn(args, log)
    procs.add(proc)
    wait_for_port(port, 30, proc)
    _wait_for_file(confdir / "mitmproxy-ca-cert.pem", 10, proc, log)
    return Target(
        name=name,
        connect_port=port,
        trust=confdir / "mitmproxy-ca-cert.pem",
        # mitmdump cannot know our fake host: it is asked for the loopback upstream itself,
        # with the bench host as SNI (so it mints and verifies the same names as ours).
        tunnel=f"127.0.0.1:{upstream.port}",
        pid=proc.pid,
    )


def _create_session(home: Path) -> tuple[str, str]:
    """A session row with a known proxy token, through the store's own API."""
    settings = Settings(home=home)
    settings.ensure_layout()
    token = os.urandom(16).hex()
    now = datetime.now(UTC)
    session_id = new_session_id()
    store = Store.open(settings.db_path)
    try:
        store.insert_session(
            Session(
                id=session_id,
                name="bench",
                repo_path=str(home),
                worktree_path=str(home / "worktrees" / "bench"),
                branch="clauderon/bench",
                base_ref="HEAD",
                image="none",
                proxy_token_hash=hash_token(token),
                created_at=now,
                updated_at=now,
            )
        )
    finally:
        store.close()
    return str(session_id), token


def start_ours(
    workdir: Path, upstream: Upstream, procs: Processes, *, probe: Path | None = None,
    trace_frames: int = 1, snapshots: bool = False, trim: bool = False, name: str = "ours",
) -> Target:
    """Ours as ``python -m proxy``; with ``probe``, under ``proxy_probe`` reporting there."""
    if not (REPO / "proxy" / "__main__.py").exists() or not (REPO / "proxy" / "server.py").exists():
        raise RuntimeError("proxy/server.py or proxy/__main__.py does not exist yet")
    home = workdir / name
    session_id, token = _create_session(home)
    port = free_port()
    # Loopback only: no sessions' network (no Docker network or firewall to set up).
    (home / "config.toml").write_text(
        f'[proxy]\nport = {port}\n[docker]\nnetwork = "none"\n'
    )
    (home / "proxy.toml").write_text(
        f'extra_ca_bundle = "{upstream.ca_pem}"\n'
        # The bench's one session opens tunnels as fast as it measures them: no pace.
        "tunnels_per_hour = 1000000000\n"
        "[upstreams]\n"
        f'"{BENCH_HOST}" = "https://127.0.0.1:{upstream.port}"\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in _CREDENTIAL_VARS}
    env.update(
        CLAUDERON_HOME=str(home),
        CLAUDERON_PROXY_PORT=str(port),
        HOME=str(workdir),
        PYTHONPATH=str(REPO),
        # A stand-in key, so the proxy's Anthropic rule injects (the realistic path).
        ANTHROPIC_API_KEY="sk-ant-api03-bench-" + "0" * 80,
    )
    command = [sys.executable, "-m", "proxy"]
    if probe is not None:
        env.update(CLAUDERON_PROBE_DIR=str(probe), CLAUDERON_PROBE_FRAMES=str(trace_frames),
                   CLAUDERON_PROBE_SNAPSHOTS="1" if snapshots else "0",
                   CLAUDERON_PROBE_TRIM="1" if trim else "0")
        command = [sys.executable, str(REPO / "bench" / "proxy_probe.py")]
    log = workdir / f"{name}.log"
    proc = _spawn(command, log, cwd=REPO, env=env)
    procs.add(proc)
    try:
        wait_for_port(port, 30, proc)
    except RuntimeError as exc:  # say why: the log goes with the temporary folder
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{exc}; its log ends:\n{tail}") from None
    _wait_for_file(home / "proxy-ca.pem", 10, proc, log)
    return Target(
        name=name,
        connect_port=port,
        trust=home / "proxy-ca.pem",
        tunnel=f"{BENCH_HOST}:443",
        proxy_auth=(session_id, token),
        pid=proc.pid,
        probe=probe,
        log=log,
    )
