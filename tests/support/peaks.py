"""The most memory the host's git processes (and the helpers they start) took while a block
ran: what tests of host git reading an agent's tree or objects assert on."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _is_git(comm: str) -> bool:
    """git, or a helper it starts under a name of its own (``git-remote-https`` reads a
    remote's listing of refs whole)."""
    name = comm.strip()
    return name == "git" or name.startswith("git-")


def _watch(stop: threading.Event, seen: list[int], uid: int | None) -> None:
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            try:
                if not pid.isdigit() or not _is_git(Path(f"/proc/{pid}/comm").read_text()):
                    continue
                status = Path(f"/proc/{pid}/status").read_text().splitlines()
                if uid is not None and not any(line.split()[:2] == ["Uid:", str(uid)]
                                               for line in status):
                    continue
                for line in status:
                    if line.startswith("VmHWM:"):
                        seen.append(int(line.split()[1]) * 1024)
            except OSError:
                continue
        stop.wait(0.02)


@contextmanager
def git_peak(uid: int | None = None) -> Iterator[list[int]]:
    """A list whose ``max`` is, after the block, the largest peak resident size (bytes) of
    any git process seen on the host during it (sampled every 20 ms); with ``uid``, of
    those running as that user only (the host's git runs as the repository's owner, a git
    server on loopback as someone else)."""
    stop, seen = threading.Event(), [0]
    watcher = threading.Thread(target=_watch, args=(stop, seen, uid))
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join()
