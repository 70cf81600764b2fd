"""The backend's engine client when the engine goes away (``appliance/backends/docker_client.py``).

Through a relay in front of the real engine's socket: the engine is lost while the client
holds idle connections and a call is in flight on another thread. The call that meets the
loss fails as "not reachable"; the call in flight ends with its answer; the dropped client
is closed once that call ends, its pooled sockets with it (they stayed open until the
garbage collector next came by, a set more at each loss); and the engine back, the next
call connects anew.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import trio

from appliance.backends.docker import DockerBackend
from appliance.errors import BackendUnavailable
from tests.support.engine_relay import Relay, sockets

pytestmark = pytest.mark.docker

NOBODY = "clauderon-no-such-container"


async def test_a_lost_engine_s_client_is_closed_once_its_last_call_ends(
        engine: object, tmp_path: Path) -> None:
    relay = Relay(tmp_path / "engine.sock")
    backend = DockerBackend(url=f"unix://{relay.path}", instance=f"t-{uuid.uuid4().hex[:8]}")
    before = sockets()  # the relay listening, no client yet
    with relay.running():
        assert await backend.inspect(NOBODY) is None  # the client made, one connection
        # Three calls at once: the client keeps three connections, idle once they end.
        relay.gate = 3
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(backend.inspect, NOBODY)
        relay.gate = 1
        async with trio.open_nursery() as nursery:
            relay.answers.clear()  # a call in flight, its answer held
            nursery.start_soon(backend.inspect, NOBODY)
            await trio.to_thread.run_sync(relay.asked.wait)
            relay.down(but=relay.asking)
            with pytest.raises(BackendUnavailable):
                await backend.inspect(NOBODY)
            relay.answers.set()  # the call in flight ends, with its answer
        # Sockets made since, but the relay's: by inode, since others of this process (an
        # earlier test's) may be closed meanwhile.
        kept = sockets() - before - relay.own()
        assert not kept, f"the lost engine's client keeps {len(kept)} sockets open"
        relay.up()
        assert await backend.inspect(NOBODY) is None  # connected anew
