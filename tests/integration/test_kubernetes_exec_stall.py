"""An exec whose API server stalls ends at its deadline, and lets its socket go.

The attack: the exec's websocket is where a pod's output (or a stalled API server's
silence) reaches the appliance, on a worker thread whose blocking reads no cancel reaches.
Real: ``kubernetes_exec`` (the hook install's, the workspace read's, the sync's and the
health probe's exec; the terminal), the official client, websocket-client and TLS, against
a fake API server's exec (``tests.fakes.kube_stall``) that speaks the real upgrade and
``v4.channel.k8s.io`` frames and then stalls. Nothing is timed: each stall lasts as long as
the test does; the bound below only turns the bug's hang into a failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from kubernetes import client

from appliance.backends import kubernetes_client, kubernetes_exec
from tests.fakes.kube_stall import StallingExec
from tests.support.appliance import wait_for

#: Only so the bug fails instead of hanging: far above every limit the tests set.
HANG = 20


@pytest.fixture
def stall(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StallingExec]:
    server = StallingExec(tmp_path, request.param)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def short_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubernetes_client, "REQUEST_TIMEOUT", (5.0, 0.5))
    monkeypatch.setattr(kubernetes_exec, "OUTPUT_LIMIT", 1024 * 1024)


def configuration(server: StallingExec) -> client.Configuration:
    cfg = client.Configuration(host=f"https://127.0.0.1:{server.port}",
                               api_key={"authorization": "Bearer t"})
    cfg.ssl_ca_cert = str(server.ca_path)
    return cfg


async def fails(call: Callable[[], Any]) -> str:
    """What ``call`` (on a worker thread) failed with; fails the test if it did not end."""
    with trio.move_on_after(HANG):
        try:
            await trio.to_thread.run_sync(call, abandon_on_cancel=True)
        except Exception as exc:
            return str(exc)
        raise AssertionError("the exec ended as if the stalled server had answered")
    raise AssertionError("the exec waited on a stalled API server past every deadline")


def run(server: StallingExec, stdin: bytes | None = None, timeout: float = 0.5) -> Any:
    return lambda: kubernetes_exec.run_exec(configuration(server), "sessions", "pod",
                                            ["cat"], stdin=stdin, timeout=timeout)


@pytest.mark.parametrize(("stall", "stdin", "timeout", "said"), [
    ("upgrade", None, 0.5, "timed out"),
    ("silent", None, 0.5, "did not finish in the pod within"),
    ("trickle", None, 0.5, "did not finish in the pod within"),
    ("flood", None, HANG * 10, "wrote more than"),
    ("flood3", None, HANG * 10, "wrote more than"),
    ("flood0", None, HANG * 10, "wrote more than"),
    ("flood4", None, HANG * 10, "wrote more than"),
    ("deaf", b"z" * (16 * 1024 * 1024), HANG * 10, "timed out"),
], indirect=["stall"])
async def test_a_stalled_exec_ends_and_lets_its_socket_go(
        stall: StallingExec, stdin: bytes | None, timeout: float, said: str) -> None:
    message = await fails(run(stall, stdin, timeout))
    assert said in message, message
    stall.hear.set()  # a client that let go has its end read; one that did not, never
    wait_for(stall.closed.is_set, what="the exec's socket to be let go")


@asynccontextmanager
async def bounded(stall: StallingExec) -> AsyncIterator[None]:
    """No cancel reaches the terminal's worker thread: past HANG, the server lets go."""
    async with trio.open_nursery() as nursery:
        async def bound() -> None:
            await trio.sleep(HANG)
            stall.close()
        nursery.start_soon(bound)
        yield
        nursery.cancel_scope.cancel()


async def terminal(stall: StallingExec) -> kubernetes_exec.KubeTerminal:
    return await kubernetes_exec.KubeTerminal.open(configuration(stall), "sessions", "pod",
                                                   ["tmux"], trio.CapacityLimiter(1))


@pytest.mark.parametrize("stall", ["upgrade"], indirect=True)
async def test_a_terminal_whose_upgrade_is_never_answered_fails(stall: StallingExec) -> None:
    failed = ""
    async with bounded(stall):
        try:
            await terminal(stall)
        except Exception as exc:
            failed = str(exc)
    assert "timed out" in failed, f"the terminal waited on the upgrade past HANG: {failed}"
    wait_for(stall.closed.is_set, what="the terminal's socket to be let go")


@pytest.mark.parametrize("stall", ["flood"], indirect=True)
async def test_a_terminal_flooded_hands_on_what_came_a_frame_at_a_time(
        stall: StallingExec) -> None:
    async with bounded(stall):
        term = await terminal(stall)
        try:
            got = await term.receive()
        finally:
            await term.aclose()
    assert 0 < len(got) <= 32768, f"one receive held {len(got)} bytes of a flood"
    stall.stop.set()
    wait_for(stall.closed.is_set, what="the terminal's socket to be let go")


@pytest.mark.parametrize("stall", ["trickle"], indirect=True)
async def test_a_viewer_leaving_a_terminal_held_mid_frame_lets_it_go(
        stall: StallingExec) -> None:
    async with bounded(stall):
        term = await terminal(stall)
        async def viewer() -> None:
            with contextlib.suppress(Exception):
                await term.receive()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(viewer)
            await trio.to_thread.run_sync(stall.trickling.wait)
            nursery.cancel_scope.cancel()
        await term.aclose()
        left = not stall.stop.is_set()
    assert left, "the viewer's cancel waited on a frame sent a byte at a time past HANG"
    wait_for(stall.closed.is_set, what="the terminal's socket to be let go")
