"""A host git that runs past its time, with the processes it started (real git)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import hostgit
from appliance.errors import GitError
from tests.conftest import AGENT_UID, make_repo
from tests.support.appliance import wait_for

OWNER = hostgit.Owner(uid=AGENT_UID, gid=AGENT_UID)


def alive(needle: str) -> list[str]:
    """The processes (not yet exited) whose command line names ``needle``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if needle in line and state != "Z":
            found.append(f"{pid} {line}")
    return found


@pytest.fixture
def stuck(tmp_path: Path) -> Iterator[Path]:
    """A repository whose ``upload-pack`` (a process a fetch starts) waits on a FIFO for as
    long as nobody writes it; unblocked at the end, so nothing outlives the test."""
    source = make_repo(tmp_path / "stuck", files={"README": "x\n"})
    fifo = source / ".git" / "objects" / "info" / "alternates"
    os.mkfifo(fifo)
    yield source
    os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))


def test_a_timeout_ends_what_git_started_too(stuck: Path, tmp_path: Path) -> None:
    into = make_repo(tmp_path / "into", files={"README": "y\n"})
    with pytest.raises(GitError, match="took over"):
        hostgit.run(["fetch", "-q", str(stuck), "HEAD:x"], owner=OWNER, cwd=into, timeout=1)
    left: list[str] = []

    def ended() -> bool:
        left[:] = alive(str(stuck))
        return not left

    try:
        wait_for(ended, what="the processes the fetch started to end")
    except AssertionError:
        pytest.fail(f"left running after the timeout: {left}")
