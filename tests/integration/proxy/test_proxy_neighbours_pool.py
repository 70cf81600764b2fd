"""One session's kept upstream connections never push out another session's.

The pool keeps finished upstream connections for reuse, every session's under one bound
(``upstream.MAX_IDLE``). An agent that finished more requests at once than that bound left
its own connections in the pool, and each past the bound closed the connection idle the
longest: its neighbour's, which then paid a new TCP and TLS handshake to its service for
every request while the flood went on. The bound is made small here so a few parallel
requests through the real proxy, from real TLS clients, reach it.
"""

from __future__ import annotations

import pytest
import trio
from conftest import Proxy, client
from proxy_fakes import FakeUpstream

from proxy import upstream

FLOOD = 12


async def test_a_flood_of_kept_connections_closes_none_of_a_neighbours(
        proxy: Proxy, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream, "MAX_IDLE", FLOOD - 2)
    victim, attacker = proxy.add_session("victim"), proxy.add_session("attacker")
    with trio.fail_after(60):
        async with client(proxy, victim) as mine:
            first = await mine.get("https://api.openai.com/v1/models")
            assert first.status_code == 200
            kept = fake.connections
            # The attacker holds FLOOD requests open at once, then lets them all end:
            # FLOOD upstream connections come back to the pool together.
            async with client(proxy, attacker) as theirs:
                seen = len(fake.seen)

                async def one() -> None:
                    async with theirs.stream("GET", "https://api.openai.com/trickle") as r:
                        assert r.status_code == 200
                        await r.aread()

                async with trio.open_nursery() as flood:
                    for _ in range(FLOOD):
                        flood.start_soon(one)
                    while len(fake.seen) < seen + FLOOD:
                        await trio.sleep(0.01)
                    fake.trickle_ack.set()
                flooded = fake.connections
                assert flooded - kept == FLOOD
                # The victim's next requests go on its kept connection: no new one is opened.
                for _ in range(5):
                    again = await mine.get("https://api.openai.com/v1/models")
                    assert again.status_code == 200
                assert fake.connections == flooded, "the victim's kept connection was closed"
