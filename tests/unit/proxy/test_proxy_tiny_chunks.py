"""A body the agent sends in one-byte chunks: one h11 event per byte. Reading it ahead
(``upload.read_prefix``) must not keep an object per chunk (about a hundred bytes of Python
for each byte sent: an 8 MiB GitHub write read ahead would hold a gigabyte), and neither
reading it ahead nor relaying it may hold the proxy's one loop for all a read brought in
(256 KiB of tiny chunks is tens of thousands of events)."""

from __future__ import annotations

import h11
import trio
import trio.testing

from proxy.relay import relay_body
from proxy.sides import HttpSide
from proxy.upload import read_prefix

HEAD = (b"POST /repos/o/r/git/refs HTTP/1.1\r\nhost: api.github.com\r\n"
        b"transfer-encoding: chunked\r\n\r\n")
CHUNKS = 64 * 1024  # one-byte chunks: 384 KiB on the wire


def _wire() -> bytes:
    return HEAD + b"1\r\na\r\n" * CHUNKS + b"0\r\n\r\n"


async def _server_side(nursery: trio.Nursery) -> HttpSide:
    ours, theirs = trio.testing.memory_stream_pair()
    side = HttpSide(ours, h11.SERVER)
    wire = _wire()

    async def feed() -> None:
        await theirs.send_all(wire)  # all of it buffered before the proxy reads

    nursery.start_soon(feed)
    assert isinstance(await side.next_event(10), h11.Request)
    return side


async def _count_turns(turns: list[int], done: trio.Event) -> None:
    while not done.is_set():
        turns[0] += 1
        await trio.lowlevel.checkpoint()


async def test_a_body_of_tiny_chunks_is_read_ahead_as_one_piece() -> None:
    async with trio.open_nursery() as nursery:
        side = await _server_side(nursery)
        prefix = await read_prefix(side, 8 * 1024 * 1024, 10)
    data = [e for e in prefix if isinstance(e, h11.Data)]
    assert b"".join(e.data for e in data) == b"a" * CHUNKS
    assert len(data) == 1  # not one event (and ~100 bytes of objects) per byte
    assert isinstance(prefix[-1], h11.EndOfMessage)


async def test_reading_ahead_tiny_chunks_lets_other_sessions_run() -> None:
    turns, done = [0], trio.Event()
    async with trio.open_nursery() as nursery:
        side = await _server_side(nursery)
        nursery.start_soon(_count_turns, turns, done)
        await trio.lowlevel.checkpoint()
        before = turns[0]
        await read_prefix(side, 8 * 1024 * 1024, 10)
        done.set()
    # 64 Ki events: the loop was handed back many times, not once per read.
    assert turns[0] - before >= 16


async def test_relaying_tiny_chunks_lets_other_sessions_run() -> None:
    turns, done = [0], trio.Event()
    async with trio.open_nursery() as nursery:
        side = await _server_side(nursery)
        up_ours, up_theirs = trio.testing.memory_stream_pair()
        upstream = HttpSide(up_ours, h11.CLIENT)
        upstream.h11.send(h11.Request(method="POST", target="/", headers=[
            ("host", "example.com"), ("transfer-encoding", "chunked")]))

        async def drain() -> None:
            while await up_theirs.receive_some(1 << 20):
                pass

        nursery.start_soon(drain)
        nursery.start_soon(_count_turns, turns, done)
        await trio.lowlevel.checkpoint()
        before = turns[0]
        moved = await relay_body(side, upstream, 10, from_client=True)
        done.set()
        await up_ours.aclose()
    assert moved == CHUNKS
    assert turns[0] - before >= 16
