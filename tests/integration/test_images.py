"""The container images against the real Docker engine.

Covers images/bootstrap-base.sh (the locally made `debian:bookworm-slim`) and
images/agent/ (the default agent image and its input-hash rebuild check). The test run
starts dockerd through images/ensure-docker.sh; the module fixture makes both images when
they are missing or stale (the agent build takes about a minute), then every test reads
the real images.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
BUILD = IMAGES / "agent" / "build.sh"
BASE = "debian:bookworm-slim"
AGENT = "clauderon-agent:latest"
# Hang guards for subprocesses, not timed assertions.
QUICK = 120
BUILDING = 900


def run(
    *args: str | Path, timeout: int = QUICK, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def docker_run(image: str, script: str) -> subprocess.CompletedProcess[str]:
    return run("docker", "run", "--rm", image, "bash", "-c", script)


def inspect(image: str) -> dict[str, object]:
    done = run("docker", "image", "inspect", image)
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert isinstance(records, list)
    record = records[0]
    assert isinstance(record, dict)
    return record


@pytest.fixture(scope="module", autouse=True)
def images() -> Iterator[None]:
    base = run(IMAGES / "bootstrap-base.sh", timeout=BUILDING)
    assert base.returncode == 0, base.stderr[-4000:]
    agent = run(BUILD, timeout=BUILDING)
    assert agent.returncode == 0, (agent.stdout + agent.stderr)[-4000:]
    yield


def test_base_image_exists_and_runs_bash() -> None:
    record = inspect(BASE)
    config = record["Config"]
    assert isinstance(config, dict)
    assert config["Cmd"] == ["bash"]
    assert "LANG=C.UTF-8" in config["Env"]

    done = docker_run(BASE, "echo ok")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


def test_base_image_uses_the_host_mirror_and_stays_slim() -> None:
    done = docker_run(
        BASE,
        "cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null; "
        "echo lists: $(ls /var/lib/apt/lists | grep -c Packages); "
        "echo translations: $(ls /usr/share/locale | grep -vc locale.alias); "
        "echo manuals: $(find /usr/share/man -type f | wc -l)",
    )
    assert done.returncode == 0, done.stderr
    host_sources = Path("/etc/apt/sources.list.d/debian.sources")
    assert host_sources.read_text() in done.stdout
    assert done.stdout.splitlines()[-3:] == ["lists: 0", "translations: 0", "manuals: 0"]


def test_agent_image_has_the_tools() -> None:
    done = docker_run(
        AGENT,
        "set -e; for tool in claude codex git curl tmux bash; do command -v $tool; done; "
        "claude --version; codex --version; git --version; curl --version | head -n 1; "
        "tmux -V",
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for tool in ("claude", "codex", "git", "curl", "tmux", "bash"):
        assert f"/{tool}\n" in out
    assert "(Claude Code)" in out
    assert "codex-cli " in out
    assert "git version " in out
    assert "tmux " in out


def test_agent_image_runs_as_a_non_root_user_in_a_writable_workspace() -> None:
    config = inspect(AGENT)["Config"]
    assert isinstance(config, dict)
    assert config["User"] not in ("", "root", "0")
    assert config["WorkingDir"] == "/workspace"

    done = docker_run(AGENT, "id -u; id -un; pwd; echo $HOME; touch /workspace/probe && echo w")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1000", "agent", "/workspace", "/home/agent", "w"]


def test_agent_image_trusts_the_host_extra_cas() -> None:
    host = sorted(p.name for p in Path("/usr/local/share/ca-certificates").glob("*.crt"))
    done = docker_run(AGENT, "ls /usr/local/share/ca-certificates")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [f"host-{name}" for name in host]
    # The host certificates only ever travel through a temporary context.
    assert sorted(p.name for p in (IMAGES / "agent" / "extra-ca").iterdir()) == ["README.md"]


def test_build_is_a_no_op_when_inputs_are_unchanged() -> None:
    before = inspect(AGENT)["Id"]
    done = run(BUILD)
    assert done.returncode == 0, done.stderr
    assert f"{AGENT} is up to date" in done.stdout
    assert "Step " not in done.stdout
    assert inspect(AGENT)["Id"] == before

    check = run(BUILD, "--check")
    assert check.returncode == 0, check.stderr
    assert f"{AGENT} is up to date" in check.stdout


def test_check_reports_a_rebuild_when_the_extra_cas_change(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    ca_dir.mkdir()
    trustme.CA().cert_pem.write_to_path(str(ca_dir / "corporate.crt"))
    env = {**os.environ, "CLAUDERON_EXTRA_CA_DIR": str(ca_dir)}

    done = run(BUILD, "--check", env=env)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"{AGENT} needs a rebuild" in done.stdout


def test_cli_image_build_uses_the_same_script() -> None:
    import sys

    clauderon = str(Path(sys.executable).parent / "clauderon")
    done = run(clauderon, "image", "build")
    assert done.returncode == 0, done.stderr
    assert f"{AGENT} is up to date" in done.stdout + done.stderr
    check = run(clauderon, "image", "build", "--check")
    assert check.returncode == 0
