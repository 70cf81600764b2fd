"""A hold (``docker pause``) never lands while a command is starting in the container
(``appliance/backends/docker_freeze.py``).

The engine checks that a container is not paused, then has runc start the exec's process:
``runc init`` joins the container's cgroup and finishes setting the process up. A pause in
between freezes ``runc init`` half-way. runc waits for it for ever, and the engine holds
the exec's locks meanwhile: ``docker unpause`` (the hold's own end), ``docker inspect`` and
``docker rm -f`` all hang, and the container stays paused until someone thaws its cgroup by
hand. Holds that come back to back (diffs, file reads, syncs) beside the commands the
appliance runs (a message, a checkup) met that window within a few hundred holds.

Here, on the real engine, holds run back to back through the backend while three tasks run
commands in the same container. A thread watches the container's cgroup for the wedge
itself (frozen, with the same ``runc`` process inside it, for :data:`WEDGE_SECONDS`) and
thaws it by hand when it finds one, so the engine stays usable; the test asserts it never
had to. A hold may freeze an exec's process in its last steps as ``runc init`` (runc has
let go of it and the engine knows its pid: it goes on at the unpause, and nothing waits on
it), so a frozen ``runc init`` alone is not a wedge: one that outlasts every hold is.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import docker
import pytest
import trio

from appliance.backends.docker import DockerBackend
from appliance.errors import ClauderonError
from tests.support.cgroup import Cgroup
from tests.support.engine import BASE_IMAGE

pytestmark = pytest.mark.docker

HOLDS = 200
COMMANDS_AT_ONCE = 3
#: A safety net only, never asserted on its own: a frozen container that made no progress
#: for this long is thawed so a wedge the watch missed cannot hang the run.
STALL_SECONDS = 60.0
#: How long the cgroup stays frozen with the same runc process inside before it is taken
#: for a wedge: a hold lasts a few engine calls; a wedge lasts for ever, so this bounds only
#: how long a failing run takes to say so.
WEDGE_SECONDS = 20.0


@contextmanager
def wedge_watch(cgroup: Cgroup, progress: list[float]) -> Iterator[list[str]]:
    """What had to be thawed by hand while the block ran."""
    thawed: list[str] = []
    done = threading.Event()

    def watch() -> None:
        seen: tuple[list[str], float] = ([], 0.0)  # runc frozen inside, and since when
        while not done.wait(0.02):
            try:
                frozen = cgroup.frozen()
                caught = cgroup.runc_inside() if frozen else []
            except OSError:
                continue  # the container is going
            now = time.monotonic()
            if not caught or caught != seen[0]:
                seen = caught, now
            wedged = caught and now - seen[1] > WEDGE_SECONDS
            stalled = frozen and now - progress[0] > STALL_SECONDS
            if wedged or stalled:
                thawed.append(", ".join(caught) or "a frozen container made no progress")
                cgroup.thaw()
                done.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield thawed
    finally:
        done.set()
        watcher.join()


@pytest.fixture
def container(engine: docker.DockerClient) -> Iterator[str]:
    assert os.geteuid() == 0, "reading and thawing a container's cgroup needs root: run as root"
    made = engine.containers.create(BASE_IMAGE, ["sleep", "infinity"], entrypoint=[],
                                    network_mode="none",
                                    name=f"clauderon-freeze-race-{os.getpid()}")
    try:
        made.start()
        yield str(made.id)
    finally:
        made.remove(force=True)


async def test_holds_back_to_back_never_wedge_a_starting_command(
        engine: docker.DockerClient, container: str) -> None:
    pid = int(engine.api.inspect_container(container)["State"]["Pid"])
    cgroup = Cgroup(pid)
    backend = DockerBackend(url=None, instance="freeze-race")
    progress = [time.monotonic()]
    failures: list[str] = []
    holds = commands = 0

    with wedge_watch(cgroup, progress) as thawed:
        async with trio.open_nursery() as nursery:
            async def hold() -> None:
                nonlocal holds
                for _ in range(HOLDS):
                    if thawed:
                        break
                    try:
                        async with backend.frozen(container):
                            holds += 1
                    except ClauderonError as exc:
                        failures.append(f"hold: {exc}")
                        break
                    progress[0] = time.monotonic()
                nursery.cancel_scope.cancel()

            async def command() -> None:
                nonlocal commands
                while True:
                    try:
                        result = await backend.exec(container, ["true"])
                    except ClauderonError as exc:
                        failures.append(f"command: {exc}")
                        return
                    assert result.exit_code == 0, result
                    commands += 1
                    progress[0] = time.monotonic()

            nursery.start_soon(hold)
            for _ in range(COMMANDS_AT_ONCE):
                nursery.start_soon(command)

    assert thawed == [], (f"wedged after {holds} holds and {commands} commands; "
                          f"thawed by hand: {thawed}")
    assert failures == []
    assert holds == HOLDS and commands > 0
    state = engine.api.inspect_container(container)["State"]
    assert state["Running"] and not state["Paused"]
    assert (await backend.exec(container, ["true"])).exit_code == 0
