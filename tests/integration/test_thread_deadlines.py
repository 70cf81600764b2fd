"""A deadline over a slow engine holds: ``/api/health``'s ping limit and the disk census's
limit on measuring the containers' layers answer at their deadline instead of waiting
for the Docker SDK's own 60 s timeout (an agent whose layer holds very many files makes
``containers(size=True)`` that slow, and ``/api/disk`` is read on every page).

Real: the API app and its route, ``DockerBackend``, the Docker SDK and its connection to
the real engine, trio's threads and the backend's limiters. Held: the engine's answer to
the one call under test, by wrapping that SDK method so its worker thread waits on a
``threading.Event`` the test sets afterwards (then makes the real call), so no thread is
left behind. Nothing is timed: each test asserts the answer came while the call was still
held; a bound only turns a hang (the bug) into a failure.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import docker.api.client
import pytest
import trio
from quart_trio import QuartTrio

from api import health as health_routes
from api.app import create_app
from api.context import ApiContext
from api.events import EventHub
from appliance.audit_index import AuditIndex
from appliance.backends.docker import DockerBackend
from appliance.config import Settings
from appliance.store import AsyncStore, Store
from tests.unit import test_hook_race

store = test_hook_race.store  # the fixture: a real store
#: Only so the bug fails instead of hanging: far above the deadline under test.
HANG = health_routes.PING_SECONDS * 6


class Held:
    """A blocking SDK call held on its worker thread until :meth:`release`."""

    def __init__(self) -> None:
        self.running = trio.Event()
        self.calls = 0
        self._release = threading.Event()
        self._token = trio.lowlevel.current_trio_token()

    @property
    def released(self) -> bool:
        return self._release.is_set()

    def release(self) -> None:
        self._release.set()

    def wrap(self, real: Callable[..., Any], when: Callable[..., bool]) -> Callable[..., Any]:
        def held(*args: Any, **kwargs: Any) -> Any:
            if when(*args, **kwargs):
                self.calls += 1
                trio.from_thread.run_sync(self.running.set, trio_token=self._token)
                self._release.wait()
            return real(*args, **kwargs)
        return held


def api(tmp_path: Path, store: Store, backend: DockerBackend) -> QuartTrio:
    settings = Settings(home=tmp_path / "home")
    astore = AsyncStore(store)
    return create_app(ApiContext(
        settings=settings, store=astore, backends={"docker": backend},
        hub=EventHub(astore), instance_key=b"k" * 32, audit=AuditIndex(settings.audit_path)))


async def test_health_answers_at_its_ping_deadline_while_the_engine_is_slow(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    held = Held()
    monkeypatch.setattr(docker.DockerClient, "ping",
                        held.wrap(docker.DockerClient.ping, lambda *_: True))
    backend = DockerBackend(url=None, instance=f"t-{uuid.uuid4().hex[:8]}")
    client = api(tmp_path, store, backend).test_client()
    got: dict[str, Any] = {}
    answered = trio.Event()

    async def ask() -> None:
        answer = await client.get("/api/health")
        got.update(code=answer.status_code, body=await answer.get_json(),
                   held=not held.released)
        answered.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await held.running.wait()
        with trio.move_on_after(HANG):
            await answered.wait()
        held.release()
    assert got["held"], "/api/health waited for the engine's ping past its deadline"
    assert got["code"] == 503 and got["body"]["status"] == "degraded", got


async def test_a_layer_measure_gives_up_at_its_deadline_and_the_next_waits_for_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the census does on a full disk (``api.health._layers``): the measure under a
    deadline; a second census while the first measure still runs does not start another
    (the measure's own limiter) and gives up at its own deadline too."""
    held = Held()
    real = docker.api.client.APIClient.containers
    monkeypatch.setattr(docker.api.client.APIClient, "containers",
                        held.wrap(real, lambda *_, **kw: bool(kw.get("size"))))
    backend = DockerBackend(url=None, instance=f"t-{uuid.uuid4().hex[:8]}")
    outcomes: list[bool] = []

    async def census(scope: trio.CancelScope, done: trio.Event) -> None:
        with scope:
            await backend.disk_use()
        outcomes.append(scope.cancelled_caught and not held.released)
        done.set()

    first, second = trio.CancelScope(), trio.CancelScope()
    first_done, second_done = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(census, first, first_done)
        await held.running.wait()
        first.deadline = trio.current_time()  # the census's limit passes
        with trio.move_on_after(HANG):
            await first_done.wait()
        if not first_done.is_set():
            held.release()
            pytest.fail("the census waited for the engine's measure past its deadline")
        nursery.start_soon(census, second, second_done)
        await trio.testing.wait_all_tasks_blocked()
        assert held.calls == 1, "a second measure ran beside the one given up on"
        second.deadline = trio.current_time()
        await second_done.wait()
        held.release()
    assert outcomes == [True, True]
    assert await backend.disk_use() == {}  # the engine answers once it is let: none of ours
    assert held.calls == 2
