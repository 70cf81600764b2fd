"""The appliance image itself: what it holds, that no secret of the build reaches a layer,
and that a wrong deployment stops at start with every problem named and nothing changed.

The image is built by images/appliance/build.sh (the session fixture in conftest; layers
reused). Running deployments are in test_appliance_deploy.py.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.appliance_image import IMAGE, ROOT, build_image, image_label, snapshot

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

HOST = ["--network", "host", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW"]
SOCKET = ["-v", "/var/run/docker.sock:/var/run/docker.sock"]


def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_the_image_is_the_appliance_under_an_init(appliance_image: str) -> None:
    [attrs] = json.loads(run("docker", "image", "inspect", appliance_image).stdout)
    config = attrs["Config"]
    assert config["Entrypoint"] == ["/usr/bin/tini", "--"]
    assert config["Cmd"] == ["clauderon-preflight", "clauderon", "daemon"]
    assert config["Healthcheck"]["Test"][0] == "CMD-SHELL"
    assert "clauderon status" in config["Healthcheck"]["Test"][1]
    assert not config.get("Volumes")  # a forgotten data mount must not be hidden
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["CLAUDERON_HOME"] == "/var/lib/clauderon"
    assert env["CLAUDERON_BIND_ADDR"] == "127.0.0.1"
    assert attrs["Config"]["Labels"]["org.opencontainers.image.version"] in IMAGE
    inside = run("docker", "run", "--rm", "--entrypoint", "bash", appliance_image, "-c",
                 "set -e; for t in clauderon clauderon-api clauderon-proxy clauderon-reconciler "
                 "clauderon-shipper clauderon-preflight supervisord git tmux docker iptables "
                 "ip6tables tini curl; do command -v $t >/dev/null || echo missing $t; done; "
                 "python3 --version; docker --version; "
                 "test ! -e /usr/sbin/dockerd || echo engine present; "
                 "python3 -c 'import sys; print(sys.prefix)'; "
                 "/opt/clauderon/bin/python -c \"import importlib.resources as r; "
                 "print(r.files('api').joinpath('static/index.html').is_file())\"")
    assert inside.returncode == 0, inside.stderr
    assert "missing" not in inside.stdout and "engine present" not in inside.stdout
    assert "Python 3.11" in inside.stdout and "Docker version" in inside.stdout
    assert inside.stdout.strip().endswith("True")  # the web UI is in the package


def layer_hits(image: str, needle: bytes) -> list[str]:
    """Every place ``needle`` appears in ``docker save image``: file names and contents of
    every layer, the image config (history, environment, labels) and the manifest."""
    hits: list[str] = []
    with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE) as saved:
        assert saved.stdout is not None
        with tarfile.open(fileobj=saved.stdout, mode="r|") as outer:
            for member in outer:
                if member.isfile():
                    hits += _member_hits(outer, member, needle)
        # The reader stops at the archive's end marker; the padding after it is still to
        # come, and a pipe closed on it ends `docker save` with SIGPIPE.
        while saved.stdout.read(1 << 16):
            pass
    assert saved.wait(timeout=300) == 0
    return hits


def _member_hits(outer: tarfile.TarFile, member: tarfile.TarInfo, needle: bytes) -> list[str]:
    data = outer.extractfile(member)
    assert data is not None
    if not member.name.endswith("layer.tar"):
        return [member.name] if needle in data.read() else []
    hits = []
    with tarfile.open(fileobj=data, mode="r|") as layer:
        for entry in layer:
            if needle in entry.name.encode() or needle in (entry.linkname or "").encode():
                hits.append(f"{member.name}:{entry.name} (name)")
            body = layer.extractfile(entry) if entry.isfile() else None
            if body is not None and needle in body.read():
                hits.append(f"{member.name}:{entry.name}")
    return hits


@pytest.fixture
def planted_in_checkout() -> Iterator[str]:
    """A canary in an untracked file inside a folder the image is built from."""
    canary = f"canary-{secrets.token_hex(16)}"
    path = ROOT / "appliance" / f".canary-{canary}.env"
    path.write_text(f"ANTHROPIC_API_KEY={canary}\n")
    try:
        yield canary
    finally:
        path.unlink()


def test_no_secret_of_the_build_environment_reaches_a_layer(
        appliance_image: str, planted_in_checkout: str) -> None:
    canary = planted_in_checkout
    before = image_label(appliance_image)
    env = {**os.environ, "ANTHROPIC_API_KEY": canary, "GITHUB_TOKEN": canary,
           "CLAUDERON_SHIPPER_TOKEN": canary, "OP_SERVICE_ACCOUNT_TOKEN": canary,
           "BUILD_SECRET": canary}
    # A real `docker build` with the canary everywhere in its environment and the checkout.
    build_image(env, "--force")
    # Its inputs (the whole context and the base) are those of a build without it ...
    assert image_label(appliance_image) == before
    # ... and no layer, no history entry, no label or variable holds it.
    assert layer_hits(appliance_image, canary.encode()) == []

    # Positive control: the same scan finds a canary one layer deep.
    control = f"clauderon-canary-control:{canary[-8:]}"
    dockerfile = f"FROM {appliance_image}\nRUN echo {canary} > /etc/planted\n"
    made = subprocess.run(["docker", "build", "-q", "-t", control, "-"], input=dockerfile,
                          capture_output=True, text=True, timeout=300, check=False)
    try:
        assert made.returncode == 0, made.stderr
        hits = layer_hits(control, canary.encode())
        assert any(h.endswith("etc/planted") for h in hits), hits
    finally:
        run("docker", "image", "rm", "-f", control)


# --- bad deployments: a clear error at start, nothing lost ----------------------------


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    data, repos = tmp_path / "data", tmp_path / "repos"
    data.mkdir()
    repos.mkdir()
    (data / "config.toml").write_text("[server]\nport = 0\n")
    (data / "db.sqlite").write_bytes(b"kept as it is")
    (data / "worktrees").mkdir()
    (data / "worktrees" / "work.txt").write_text("an agent's work\n")
    return data, repos


def start(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    """The appliance image run once, as a deployment would; it must stop at preflight."""
    name = f"clauderon-preflight-{secrets.token_hex(4)}"
    done = run("docker", "run", "--rm", "--name", name, "-e", f"CLAUDERON_HOME={data}", *args,
               IMAGE, timeout=60)
    assert done.returncode == 78, (done.returncode, done.stderr)
    assert "nothing was started or changed" in done.stderr
    return done


def test_a_missing_socket_is_named_with_the_mount_to_add(
        appliance_image: str, folders: tuple[Path, Path]) -> None:
    data, _ = folders
    before = snapshot(data)
    done = start(*HOST, "-v", f"{data}:{data}", data=data)
    assert "no Docker engine socket at /var/run/docker.sock" in done.stderr
    assert "-v /var/run/docker.sock:/var/run/docker.sock" in done.stderr
    assert snapshot(data) == before


def test_a_data_folder_of_another_user_is_refused_untouched(
        appliance_image: str, folders: tuple[Path, Path]) -> None:
    data, _ = folders
    for path in (data, *data.rglob("*")):
        os.chown(path, 1000, 1000)
    os.chmod(data, 0o700)
    before = snapshot(data)
    done = start(*HOST, *SOCKET, "-v", f"{data}:{data}", data=data)
    assert f"the data folder {data} belongs to uid 1000" in done.stderr
    assert f"chown -R root:root {data}" in done.stderr
    assert snapshot(data) == before  # modes, owners and contents, to the byte


def test_repositories_at_another_path_are_refused_with_the_same_path_fix(
        appliance_image: str, folders: tuple[Path, Path]) -> None:
    data, repos = folders
    before = snapshot(data)
    done = start(*HOST, *SOCKET, "-v", f"{data}:{data}", "-v", f"{repos}:/src",
                 "-e", "CLAUDERON_REPOS=/src", data=data)
    assert f"the repositories folder /src is the host's {repos}" in done.stderr
    assert f"- {repos}:{repos}" in done.stderr and f"CLAUDERON_REPOS={repos}" in done.stderr
    assert snapshot(data) == before


def test_every_problem_of_a_plain_docker_run_is_listed_at_once(
        appliance_image: str, folders: tuple[Path, Path]) -> None:
    data, repos = folders
    done = start(*SOCKET, "-v", f"{data}:/data", "-e", "CLAUDERON_HOME=/data",
                 "-v", f"{repos}:/src", data=data)
    said = done.stderr
    assert "CAP_NET_ADMIN" in said and "network_mode: host" in said
    assert f"is the host's {data}" in said and f"{repos} is mounted at /src" in said
    assert "4 problem(s)" in said


def test_the_preflight_reads_its_container_from_the_engine(
        appliance_image: str, folders: tuple[Path, Path]) -> None:
    """Positive control of the checks above: the same folders, mounted right, pass."""
    data, repos = folders
    done = run("docker", "run", "--rm", *HOST, *SOCKET, "-v", f"{data}:{data}",
               "-v", f"{repos}:{repos}", "-e", f"CLAUDERON_HOME={data}",
               "-e", f"CLAUDERON_REPOS={repos}", IMAGE, "clauderon-preflight")
    assert done.returncode == 0, done.stderr
    assert "clauderon-preflight: ok (iptables-" in done.stderr


def test_build_script_says_up_to_date_and_checks(appliance_image: str) -> None:
    out = build_image(None, "--check")
    assert "is up to date" in out.stdout
    out = subprocess.run([str(Path(sys.executable).parent / "clauderon"), "image", "build",
                          "--appliance", "--check"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0 and "is up to date" in out.stdout, out.stderr
