"""``tls.TlsStream``: reads and writes that skip the scheduler lose nothing and starve no one.

A real TLS pair (the proxy's CA and a leaf from it) over a real socket pair.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trio

from proxy.certs import CertStore, load_or_create_ca
from proxy.tls import YIELD_EVERY, TlsStream


async def _pair(tmp_path: Path) -> tuple[TlsStream, TlsStream]:
    store = CertStore(load_or_create_ca(tmp_path / "c.pem", tmp_path / "k.pem"))
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "c.pem"))
    left, right = trio.socket.socketpair()
    server = TlsStream(trio.SocketStream(left), store.context_for("bench.example"),
                       server_side=True)
    client = TlsStream(trio.SocketStream(right), client_ctx, server_hostname="bench.example")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.do_handshake)
            nursery.start_soon(client.do_handshake)
    return server, client


async def _ready(stream: TlsStream) -> None:
    """Until the stream's socket has bytes waiting: the next read will not wait."""
    with trio.fail_after(10):
        await trio.lowlevel.wait_readable(stream.transport.socket)


async def test_a_cancelled_read_loses_no_bytes_however_many_reads_found_data(
    tmp_path: Path,
) -> None:
    server, client = await _pair(tmp_path)
    sent, got = b"", b""
    # Enough reads that find data at once that one of them yields (and can be cancelled),
    # each read cancelled before it starts: it returns what it read, or nothing at all.
    for i in range(3 * YIELD_EVERY):
        message = f"message {i};".encode()
        await server.send_all(message)
        sent += message
        await _ready(client)
        with trio.CancelScope() as scope:
            scope.cancel()
            got += await client.receive_some()
    with trio.fail_after(10):
        while len(got) < len(sent):
            got += await client.receive_some()
    assert got == sent
    await server.aclose()
    await client.aclose()


class _Steps(trio.abc.Instrument):
    """Counts the scheduler steps of one task: a new step means the task yielded."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1


async def test_reads_that_never_wait_still_let_other_tasks_run(tmp_path: Path) -> None:
    # Counted as the reading task's own scheduler steps, not as another task's progress:
    # trio runs a batch of ready tasks in either order, so a ticker may run only after the
    # read has returned even though the read did yield.
    server, client = await _pair(tmp_path)
    steps = _Steps(trio.lowlevel.current_task())
    yielded = 0
    trio.lowlevel.add_instrument(steps)
    try:
        for i in range(2 * YIELD_EVERY):
            await server.send_all(f"{i};".encode())
            await _ready(client)  # the socket has bytes: the read below need not wait
            start = steps.steps
            assert await client.receive_some() == f"{i};".encode()
            yielded += steps.steps - start
    finally:
        trio.lowlevel.remove_instrument(steps)
        await server.aclose()
        await client.aclose()
    # Some read yielded though none had to wait; about one in YIELD_EVERY does, not each.
    assert 1 <= yielded <= 3
