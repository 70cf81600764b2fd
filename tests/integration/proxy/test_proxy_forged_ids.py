"""A flood of session ids no session has, through the real proxy, reads no session rows.

Any client can name any session's id in its proxy credentials, a new one per request, and a
refusal costs the client one connection. Each such id was read from
the database on the proxy's few worker threads, so an agent's flood queued every other
session's lookup behind it. Here forged requests from many connections at once, beside a
neighbour's real ones; the statements the store ran are counted as SQLite traces them.
"""

from __future__ import annotations

import base64

import trio
from conftest import Proxy, client

from appliance.sessions import new_session_id
from proxy.directory import StoreDirectory

CONNECTIONS = 32
EACH = 20


async def _forge(port: int, refused: list[bytes]) -> None:
    """Requests naming a new session id each, one connection each (a refusal of a CONNECT
    closes its connection)."""
    for _ in range(EACH):
        await _forge_one(port, refused)


async def _forge_one(port: int, refused: list[bytes]) -> None:
    """One request naming a new session id, on a connection of its own."""
    who = base64.b64encode(f"{new_session_id()}:guess".encode())
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(
            b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n"
            b"Proxy-Authorization: Basic " + who + b"\r\n\r\n")
        answer = b""
        while chunk := await stream.receive_some(65536):
            answer += chunk
        refused.append(answer.split(b"\r\n")[0])


async def test_forged_session_ids_cost_the_database_no_read_each(proxy: Proxy) -> None:
    victim = proxy.add_session("victim")
    ran: list[str] = []
    with trio.fail_after(120):
        async with client(proxy, victim) as mine:
            assert (await mine.get("https://api.openai.com/v1/models")).status_code == 200
            proxy.store._conn.set_trace_callback(ran.append)
            refused: list[bytes] = []
            answered: list[int] = []
            async with trio.open_nursery() as flood:
                for _ in range(CONNECTIONS):
                    flood.start_soon(_forge, proxy.port, refused)
                for _ in range(10):
                    answered.append((await mine.get("https://api.openai.com/v1/models"))
                                    .status_code)
            proxy.store._conn.set_trace_callback(None)
    assert answered == [200] * 10
    assert len(refused) == CONNECTIONS * EACH
    assert {line.split(b" ")[1] for line in refused} == {b"407"}
    reads = [s for s in ran if "FROM sessions" in s]
    assert len(reads) < CONNECTIONS * EACH // 10, (len(reads), reads[:3])


async def test_forged_session_ids_cost_no_read_of_every_session_while_the_store_is_written(
        proxy: Proxy) -> None:
    """The database changes all the time at many sessions (each agent's hooks are journaled,
    its usage and alerts written): an id no session has, named after each write, read every
    session's row again, some thousand per forged request. A session made during the flood
    is still answered at its first request."""
    # As the service keeps it (the fixture's reads every session at each request).
    proxy.state.directory = StoreDirectory(proxy.store)
    victim = proxy.add_session("victim")
    ran: list[str] = []
    refused: list[bytes] = []
    with trio.fail_after(120):
        async with client(proxy, victim) as mine:
            assert (await mine.get("https://api.openai.com/v1/models")).status_code == 200
        proxy.store._conn.set_trace_callback(ran.append)
        for n in range(EACH):
            # The appliance journals a hook of some agent's: the database changed.
            proxy.store.append_event(victim[0], "hook", {"n": n})
            await _forge_one(proxy.port, refused)
        proxy.store._conn.set_trace_callback(None)
        late = proxy.add_session("late")
        proxy.store.append_event(victim[0], "hook", {"n": "late"})
        await _forge_one(proxy.port, refused)
        async with client(proxy, late) as theirs:
            first = (await theirs.get("https://api.openai.com/v1/models")).status_code
        async with client(proxy, victim) as mine:
            again = (await mine.get("https://api.openai.com/v1/models")).status_code
    assert (first, again) == (200, 200)
    assert {line.split(b" ")[1] for line in refused} == {b"407"}
    every = [s for s in ran if "proxy_token_hash" in s and "FROM sessions" in s]
    assert len(every) < EACH // 4, (len(every), every[:1])
