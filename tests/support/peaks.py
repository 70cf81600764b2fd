"""The most memory the host's git processes took while a block ran: what tests of host git
reading an agent's tree or objects assert on."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _watch(stop: threading.Event, seen: list[int]) -> None:
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            try:
                if not pid.isdigit() or Path(f"/proc/{pid}/comm").read_text().strip() != "git":
                    continue
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        seen.append(int(line.split()[1]) * 1024)
            except OSError:
                continue
        stop.wait(0.02)


@contextmanager
def git_peak() -> Iterator[list[int]]:
    """A list whose ``max`` is, after the block, the largest peak resident size (bytes) of
    any git process seen on the host during it (sampled every 20 ms)."""
    stop, seen = threading.Event(), [0]
    watcher = threading.Thread(target=_watch, args=(stop, seen))
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join()
