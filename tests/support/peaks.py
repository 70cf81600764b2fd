"""The most memory the host's git processes (and the helpers they start) took while a block
ran: what tests of host git reading an agent's tree or objects assert on. Only processes
this test started (its descendants: the services it runs and their git) count, never the
git of a test running beside it."""

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


def _parent(pid: int) -> int:
    """The parent of ``pid`` (``/proc/PID/stat``'s fourth field, after the name in
    parentheses, which may hold spaces and parentheses itself)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def descends(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` is ``ancestor`` or one of its descendants."""
    while pid > 1:
        if pid == ancestor:
            return True
        pid = _parent(pid)
    return pid == ancestor


def _watch(stop: threading.Event, seen: list[int], uid: int | None) -> None:
    me = os.getpid()
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            try:
                if not pid.isdigit() or not _is_git(Path(f"/proc/{pid}/comm").read_text()):
                    continue
                if not descends(int(pid), me):
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
    any git process this test started (a descendant) seen during it (sampled every 20 ms);
    with ``uid``, of those running as that user only (the host's git runs as the
    repository's owner, a git server on loopback as someone else)."""
    stop, seen = threading.Event(), [0]
    watcher = threading.Thread(target=_watch, args=(stop, seen, uid))
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join()
