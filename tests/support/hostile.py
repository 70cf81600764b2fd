"""What the containment tests share: the agent's shell in its real container (uid 1000), and
the swap race -- a swapper the agent runs as fast as it can while the API reads on the host.

:func:`race` holds the race's positive control: the swapper really ran many rounds while at
least ``READS`` reads went, over at least ``SWAP_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.appliance import wait_for

AGENT = "1000:1000"
SWAP_SECONDS = 10
READS = 1000


def agent(container: Any, script: str) -> str:
    """Run ``script`` in the session's container as the agent's uid; it must succeed."""
    result = container.exec_run(["sh", "-c", "exec 2>&1\n" + script], user=AGENT)
    out: str = result.output.decode(errors="replace")
    assert result.exit_code == 0, out
    return out


def agent_argv(container: Any, argv: list[str]) -> None:
    result = container.exec_run(argv, user=AGENT)
    assert result.exit_code == 0, result.output.decode(errors="replace")


def race(container: Any, argv: list[str], flags: Path, read: Callable[[int], None]) -> int:
    """Run the swapper ``argv`` as the agent (it makes ``.swapping`` in ``flags``, the host's
    view of its folder, and stops at ``.stop``) while ``read(n)`` runs for n = 0, 1, ...:
    at least READS times, over at least SWAP_SECONDS. The swapper's round count."""
    swapped: list[Any] = []
    swapper = threading.Thread(
        target=lambda: swapped.append(container.exec_run(argv, user=AGENT)), daemon=True)
    swapper.start()
    wait_for((flags / ".swapping").exists, timeout=30, what="the swapper")
    started = time.monotonic()
    count = 0
    try:
        while count < READS or time.monotonic() - started < SWAP_SECONDS:
            read(count)
            count += 1
    finally:
        (flags / ".stop").touch()
        swapper.join(60)
    assert not swapper.is_alive() and swapped and swapped[0].exit_code == 0, swapped
    loops = int(swapped[0].output.decode().strip())
    assert loops >= 100, loops  # the swap really raced the reads
    assert count >= READS
    return loops
