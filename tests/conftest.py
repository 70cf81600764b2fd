"""Fixtures shared by every tier: git repositories, the Docker engine, the appliance."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import httpx
import pytest
from hypothesis import settings

from tests.support.appliance import Appliance, running
from tests.support.engine import AGENT_IMAGE, ensure_agent_image, ensure_engine
from tests.support.fake_github import FakeGitHub
from tests.support.fake_models import FakeModels

AGENT_UID = 1000

# A property test's examples are never timed (Hypothesis' default deadline fails an example
# that takes over 200 ms, which a loaded machine makes happen) and leave no database behind.
settings.register_profile("clauderon", deadline=None, database=None)
settings.load_profile("clauderon")


def pytest_configure(config: pytest.Config) -> None:
    """A run started in the background by a shell (``cmd &``, ``nohup``) has SIGINT ignored,
    and every process it starts inherits that: the CLIs the tests stop with Ctrl-C would
    never hear it. A person's terminal never does this; give SIGINT its handler back, which
    children get as the default."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def make_repo(path: Path, *, owner: int = AGENT_UID, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    for name, text in (files or {"README.md": "hello\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-q", "-m", "initial"], check=True, env=env)
    if os.geteuid() == 0 and owner != 0:
        subprocess.run(["chown", "-R", f"{owner}:{owner}", str(path)], check=True)
    return path


def user_git(repo: Path, *args: str) -> str:
    """The user's own git in their repository, as the user."""
    env = {"PATH": os.environ["PATH"], "HOME": str(repo.parent), "GIT_AUTHOR_NAME": "User",
           "GIT_AUTHOR_EMAIL": "u@x", "GIT_COMMITTER_NAME": "User",
           "GIT_COMMITTER_EMAIL": "u@x"}
    proc = subprocess.run(["git", *args], cwd=repo, env=env, check=False, capture_output=True,
                          text=True, user=AGENT_UID, group=AGENT_UID, extra_groups=[])
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def make_traversable(folder: Path) -> None:
    """Let a repository's owner pass through ``folder`` and the folders above it."""
    if os.geteuid() != 0:
        return
    for each in (folder, *folder.parents):
        if each == Path(tempfile.gettempdir()) or each == each.parent:
            break
        mode = each.stat().st_mode & 0o777
        if mode & 0o001 == 0:
            os.chmod(each, mode | 0o011)


@pytest.fixture(scope="session", autouse=True)
def traversable_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The same for folders made by ``tmp_path_factory.mktemp`` (module fixtures)."""
    made = tmp_path_factory.mktemp

    def mktemp(basename: str, numbered: bool = True) -> Path:
        folder = made(basename, numbered)
        make_traversable(folder)
        return folder

    tmp_path_factory.mktemp = mktemp  # type: ignore[method-assign]
    yield
    tmp_path_factory.mktemp = made  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def traversable_tmp(tmp_path: Path) -> None:
    """Let a repository's owner reach the test's folder, as on a real machine.

    The appliance runs git as each repository's owner (uid 1000 here), never as root, so
    the folders above the repositories and CLAUDERON_HOME must be traversable by that user;
    pytest makes its temporary folders private (0700) to root.
    """
    make_traversable(tmp_path)


@pytest.fixture
def repo_factory(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1000))

    def make(name: str | None = None, **kwargs: object) -> Path:
        return make_repo(tmp_path / (name or f"repo{next(counter)}"), **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def repo(repo_factory: Callable[..., Path]) -> Path:
    return repo_factory("app", files={"README.md": "hello\n", "src/app.py": "print('hi')\n"})


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    return ensure_engine()


@pytest.fixture(scope="session")
def agent_image(engine: docker.DockerClient) -> str:
    ensure_agent_image()
    return AGENT_IMAGE


@pytest.fixture
def appliance(tmp_path: Path, engine: docker.DockerClient) -> Iterator[Appliance]:
    with running(tmp_path / "home", "api", "reconciler") as app:
        yield app


@pytest.fixture
def app(tmp_path: Path, agent_image: str) -> Iterator[Appliance]:
    """API and reconciler whose sessions run the agent image (git and curl inside)."""
    with running(tmp_path / "home", "api", "reconciler", image=agent_image) as a:
        yield a


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeModels]:
    """The fake model APIs on loopback."""
    with FakeModels(tmp_path) as models:
        yield models


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A filesystem of its own (a 320 MiB tmpfs), small enough to fill in a moment."""
    with _tmpfs(tmp_path / "disk", "size=320m") as disk:
        yield disk


@pytest.fixture
def few_files_disk(tmp_path: Path) -> Iterator[Path]:
    """A filesystem of its own with room for 20,000 files (a tmpfs of 320 MiB): its files
    run out long before its bytes."""
    with _tmpfs(tmp_path / "disk", "size=320m,nr_inodes=20000") as disk:
        yield disk


@contextmanager
def _tmpfs(disk: Path, options: str) -> Iterator[Path]:
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"{options},mode=0755", "tmpfs", str(disk)],
                   check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeGitHub]:
    """A fake GitHub on loopback (real ``git http-backend``, the REST calls we make)."""
    with FakeGitHub(tmp_path) as fake:
        yield fake


@pytest.fixture
def http(appliance: Appliance) -> httpx.Client:
    """The API over TCP, as a script (a bearer token; the web UI's own checks are elsewhere).
    Every read is bounded: a hung read fails the test instead of hanging it."""
    return appliance.http(timeout=15)


#: Test files that push host git to the memory and time bounds they check (and one that
#: stops the Docker engine: marked ``alone``, run after the rest). A run on several workers
#: (``tests/run``) gives them all to one worker, one after another, so two of them never
#: load the machine at once; the other files go to the workers one at a time.
HEAVY_FILES = (
    "tests/integration/proxy/test_proxy_remote_sync.py",
    "tests/integration/test_diff_bounds.py",
    "tests/integration/test_expensive_reads.py",
    "tests/integration/test_git_object_store_reads.py",
    "tests/integration/test_sync_packs.py",
    "tests/integration/test_timeline_forged_objects.py",
    "tests/unit/test_workspaces.py",
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """With ``--dist loadfile``: files to workers in the order collected (``tests/run``
    passes ``--no-loadscope-reorder``), :data:`HEAVY_FILES` as one unit of work."""
    from xdist.scheduler import LoadScopeScheduling

    if config.getoption("dist") != "loadfile":
        return None

    class Files(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "heavy" if path in HEAVY_FILES else path

    return Files(config, log)
