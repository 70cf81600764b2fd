"""What a read's hold (``appliance/backends/docker_freeze.py``) does when the engine will not
pause the container, on the real engine, with the agent choosing when its processes run.

- The agent's container ends on its own (its main process, uid 1000, exits) while reads go
  on: a pause then meets the engine's "not running" in whichever words the news of the end
  has reached (dockerd's 409, the shim's 500 "cannot pause a stopped container", runc's
  "container not running"). Each read answers: held, or without a hold since nothing runs
  (or refused as moved, to be asked again); none fails as the engine's error.
- The agent keeps forking and spends its CPU share: the cgroup freezer gives up ("unable to
  freeze") and the engine leaves the container running. The pause is asked again; a read
  is made only while the container's cgroup is frozen (read from the host), or refused
  with what to do.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

import docker
import pytest

from appliance.backends import docker_freeze
from appliance.backends.docker import DockerBackend
from appliance.errors import ClauderonError, Conflict
from tests.support.cgroup import Cgroup
from tests.support.engine import BASE_IMAGE

pytestmark = pytest.mark.docker

LIVES = 20
#: The agent's main process: runs a little, then ends on its own.
ENDS = "i=0; while [ $i -lt 30 ]; do sleep 0.01; i=$((i+1)); done"
#: The agent's fork storm: loops starting processes without end.
STORM = "for i in $(seq 16); do (while :; do /bin/true; done) & done; wait"
#: The most reads made to see the freezer give up.
READS = 100
#: The storm's CPU limit: its share of each second, spent in its first hundredth. The tasks
#: then wait for the next second, unable to run into the freezer, longer than runc asks the
#: freezer (about a quarter of a second), so most pauses meet "unable to freeze" whatever
#: the machine (a storm alone does so by chance, on a busy one).
SPENT = {"cpu_period": 1_000_000, "cpu_quota": 10_000}
MOVED = "the container moved during the read"


@pytest.fixture
def agent(engine: docker.DockerClient) -> Iterator[Callable[..., str]]:
    """Starts agent containers (uid 1000, no network) running a shell script; removed after."""
    made: list[str] = []

    def start(script: str, **limits: int) -> str:
        container = engine.containers.run(
            BASE_IMAGE, ["sh", "-c", script], entrypoint=[], user="1000:1000", detach=True,
            network_mode="none", pids_limit=200, **(limits or {"nano_cpus": 1_000_000_000}),
            name=f"clauderon-freeze-refusal-{os.getpid()}-{len(made)}")
        made.append(str(container.id))
        return str(container.id)

    try:
        yield start
    finally:
        for backend_id in made:
            engine.api.remove_container(backend_id, force=True)


async def test_reads_answer_while_the_agent_container_ends_on_its_own(
        engine: docker.DockerClient, agent: Callable[..., str]) -> None:
    backend = DockerBackend(url=None, instance="freeze-refusals")
    held = unheld = moved = 0
    failures: list[str] = []
    for _ in range(LIVES):
        container = agent(ENDS)
        pid = int(engine.api.inspect_container(container)["State"]["Pid"])
        cgroup = Cgroup(pid) if pid else None  # 0: it ended already
        after_end = 0
        while after_end < 2:  # reads go on until, and a little after, it ended
            running = engine.api.inspect_container(container)["State"]["Running"]
            after_end += not running
            try:
                async with backend.frozen(container):
                    state = engine.api.inspect_container(container)["State"]
                    held += bool(state["Paused"])
                    unheld += not state["Paused"]
                    # Never unheld while it runs: a stopped container moves nothing. Its
                    # processes are gone before the engine's record says so (the runtime
                    # says "not running" first): the host's view of its cgroup tells.
                    assert state["Paused"] or not state["Running"] or not (
                        cgroup and cgroup.tasks()), state
            except Conflict as exc:  # ended under the hold: refused, to be asked again
                assert MOVED in exc.message, exc.message
                moved += 1
            except ClauderonError as exc:
                failures.append(str(exc))
    assert failures == [], f"{len(failures)} reads failed: {failures[:3]}"
    assert held and unheld, (held, unheld, moved)


async def test_a_forking_agent_never_has_its_tree_read_unheld(
        engine: docker.DockerClient, agent: Callable[..., str],
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    assert os.geteuid() == 0, "reading a container's cgroup needs root: run as root"
    container = agent(STORM, **SPENT)
    cgroup = Cgroup(int(engine.api.inspect_container(container)["State"]["Pid"]))
    backend = DockerBackend(url=None, instance="freeze-refusals")
    caplog.set_level(logging.WARNING, logger=docker_freeze.__name__)

    def retried() -> int:
        return sum("could not freeze" in r.getMessage() for r in caplog.records)

    async def reads(until: Callable[[int, list[str]], bool]) -> tuple[int, list[str]]:
        """Reads, until ``until(held, refused)`` (at most :data:`READS`)."""
        held, refused = 0, []
        for _ in range(READS):
            try:
                async with backend.frozen(container):
                    assert cgroup.frozen(), "the tree was read while the agent ran"
                    held += 1
            except Conflict as exc:
                refused.append(exc.message)
                # Refused as moved: safe too (on a machine this busy the engine's late
                # record of the last hold's unpause can land in the next one's window).
                assert exc.message == docker_freeze.UNFROZEN_REFUSAL or MOVED in exc.message
            if until(held, refused):
                break
        return held, refused

    # Until a pause was asked again, and a read was held.
    held, _ = await reads(lambda held, _: bool(retried()) and held > 0)
    assert retried(), f"the fork storm never made the freezer give up in {READS} reads"
    assert held, f"no read was held in {READS} ({retried()} pauses asked again)"
    # Asked once only, a freezer that gives up refuses the read, saying what to do.
    monkeypatch.setattr(docker_freeze, "FREEZE_TRIES", 1)
    _, refused = await reads(lambda _, refused: docker_freeze.UNFROZEN_REFUSAL in refused)
    assert docker_freeze.UNFROZEN_REFUSAL in refused, f"the freezer never gave up in {READS} reads"
    assert "try again in a moment" in docker_freeze.UNFROZEN_REFUSAL
    state = engine.api.inspect_container(container)["State"]
    assert state["Running"] and not state["Paused"] and not cgroup.frozen()


async def test_a_pause_the_engine_only_records_is_no_hold_for_a_read(
        engine: docker.DockerClient, agent: Callable[..., str]) -> None:
    """The engine's record says paused while the container's processes run: what its late
    record of an older pause leaves after a newer unpause (on a machine the agent keeps
    busy), played here by thawing the cgroup by hand under a pause. A pause is then refused
    as "already paused"; the read was made, taken for held, while the agent ran."""
    assert os.geteuid() == 0, "reading a container's cgroup needs root: run as root"
    container = agent("while :; do sleep 0.01; done")
    cgroup = Cgroup(int(engine.api.inspect_container(container)["State"]["Pid"]))
    backend = DockerBackend(url=None, instance="freeze-refusals")
    engine.api.pause(container)
    cgroup.thaw()
    assert engine.api.inspect_container(container)["State"]["Paused"]
    assert not cgroup.frozen()
    with pytest.raises(Conflict) as refused:
        async with backend.frozen(container):
            assert cgroup.frozen(), "the tree was read while the agent ran"
    assert refused.value.message == docker_freeze.PAUSED_REFUSAL
    # Not ours to undo: the engine's record is as it was.
    assert engine.api.inspect_container(container)["State"]["Paused"]
