"""An exec or a terminal whose pod sends what none should holds little, and ends saying what.

The attack: the pod (or the API server path it can make misbehave) controls the frames that
reach the appliance's exec: on channels no one reads, one frame announced 2 GiB long, one
of 500 MiB sent without pause, a message in fragments without end, or a terminal's stdout
without end (the client kept a copy of all of it). Real: ``kubernetes_exec``, the official
client, websocket-client and TLS against ``tests.fakes.kube_stall``'s real upgrade and
``v4.channel.k8s.io`` frames. Memory is tracemalloc's peak over the exec: the client's
buffers are all in this process (the fake server's one chunk, reused, besides).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from kubernetes import client

from appliance.errors import BackendError
from tests.fakes.kube_stall import StallingExec
from tests.integration import test_kubernetes_exec_stall as stalls
from tests.integration.test_kubernetes_exec_stall import HANG, bounded, fails, run, terminal
from tests.support.appliance import wait_for

stall, short_limits = stalls.stall, stalls.short_limits  # the same fixtures

#: The most held at once: a message in fragments at its 4 MiB limit, twice while the next
#: fragment is joined to it (the client joins by copying), and some (the output limit is
#: 1 MiB here). The holes held 500 MiB and more.
BOUND = 9 * 1024 * 1024


@contextmanager
def peak() -> Iterator[list[int]]:
    """A list whose one item is, after the block, the most Python held at once during it
    (the client's modules, imported on its first call, already are: no exec holds them)."""
    client.CoreV1Api(client.ApiClient(client.Configuration()))
    tracemalloc.start()
    held = [0]
    try:
        yield held
    finally:
        held[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


@pytest.mark.parametrize(("stall", "said"), [
    ("flood7", "wrote more than"),
    ("huge", "sent a frame of 2147483648 bytes"),
    ("fast", "sent a frame of 524288000 bytes"),
    ("fragments", "a message in fragments of more than"),
], indirect=["stall"])
async def test_an_exec_sent_what_none_should_holds_little_and_says_so(
        stall: StallingExec, said: str) -> None:
    with peak() as held:
        message = await fails(run(stall, None, HANG * 10))
    assert said in message, message
    assert held[0] < BOUND, f"the exec held {held[0]} bytes at once"
    wait_for(stall.closed.is_set, what="the exec's socket to be let go")


@pytest.mark.parametrize(("stall", "said"), [
    ("flood2", "channels a terminal does not read"),
    ("flood3", "channels a terminal does not read"),
    ("flood7", "channels a terminal does not read"),
    ("huge", "sent a frame of 2147483648 bytes"),
    ("fragments", "a message in fragments of more than"),
], indirect=["stall"])
async def test_a_terminal_sent_what_none_should_holds_little_and_says_so(
        stall: StallingExec, said: str) -> None:
    failed = "nothing: the terminal waited on it past HANG"
    with peak() as held:
        async with bounded(stall):
            term = await terminal(stall)
            try:
                await term.receive()
            except BackendError as exc:
                failed = str(exc)
            finally:
                await term.aclose()
    assert said in failed, failed
    assert held[0] < BOUND, f"the terminal held {held[0]} bytes at once"
    stall.stop.set()
    wait_for(stall.closed.is_set, what="the terminal's socket to be let go")


@pytest.mark.parametrize("stall", ["flood"], indirect=True)
async def test_a_terminal_keeps_none_of_what_it_handed_on(stall: StallingExec) -> None:
    with peak() as held:
        async with bounded(stall):
            term = await terminal(stall)
            try:
                got = 0
                while got < 2 * BOUND:
                    got += len(await term.receive())
            finally:
                await term.aclose()
    assert held[0] < BOUND, f"the terminal held {held[0]} bytes of the {got} it handed on"
    stall.stop.set()
    wait_for(stall.closed.is_set, what="the terminal's socket to be let go")


@pytest.mark.parametrize("stall", ["deaf"], indirect=True)
async def test_a_viewer_typing_to_a_deaf_terminal_is_told(stall: StallingExec) -> None:
    failed = "nothing: the send waited on the deaf server past HANG"
    async with bounded(stall):
        term = await terminal(stall)
        try:
            await term.send(b"z" * BOUND)
        except Exception as exc:
            failed = str(exc)
        finally:
            await term.aclose()
    assert "timed out" in failed, failed
    stall.hear.set()
    wait_for(stall.closed.is_set, what="the terminal's socket to be let go")


@pytest.mark.parametrize("stall", ["silent"], indirect=True)
async def test_a_terminal_whose_server_hung_up_ends_and_lets_go(stall: StallingExec) -> None:
    async with bounded(stall):
        term = await terminal(stall)
        stall.close()
        try:
            got = await term.receive()
        finally:
            await term.aclose()
    assert got == b"", f"a terminal hung up on handed on {got!r}"
