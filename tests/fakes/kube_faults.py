"""The fake API server's faults, switched on by files a test writes in its state folder."""

from __future__ import annotations

from pathlib import Path

import trio


def refused(state: Path, verb: str, resource: str) -> bool:
    """A cluster whose control plane fails a call, as a real one does when etcd is slow:
    ``STATE_DIR/refuse-delete`` names, a line each, the resources whose deletes answer 500
    until a test removes the file."""
    told = state / f"refuse-{verb}"
    return told.exists() and resource in told.read_text().split()


async def stall_if_told(state: Path, verb: str, resource: str) -> None:
    """A control plane that accepts a call and never answers it: ``STATE_DIR/stall-list``
    names the resources whose lists hang; ``STATE_DIR/stalled-list`` gets a line for each
    call held so (so a test knows its call is the one held)."""
    told = state / f"stall-{verb}"
    if told.exists() and resource in told.read_text().split():
        with (state / f"stalled-{verb}").open("a") as f:
            f.write(f"{resource}\n")
        await trio.sleep_forever()
