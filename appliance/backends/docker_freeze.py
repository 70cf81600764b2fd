"""Holding a session container still while the host reads its tree by path.

The session's diff runs host git over the agent's worktree (``appliance/changes.py``). git
walks a tree by path: it finds a folder, then opens what is under it by name, so an agent
that swaps the folder for a symlink between the two steps has git read, and put in the
diff, files outside the worktree (the appliance's secrets, another tree). The files API
walks by descriptor and is not exposed (``appliance/safefs.py``); git cannot be made to. So
the container's processes are frozen (the cgroup freezer, ``docker pause``) for as long as
the host reads: what git walks is then still, and a still tree is walked right.

Concurrent reads of one container share one pause (counted); the pause is undone when the
last one ends, even when it is cancelled. The engine refuses to run anything new in a paused
container, so what runs a command in one (a message, a checkup, a terminal) waits for the
hold to end (:meth:`Freezer.thawed`, and :func:`paused_refusal` for a hold it could not see
coming). A pause a crash left behind is undone by the
reconciler: the engine reports a paused container as not running, and ``start`` unpauses
it (:func:`unpause_if_paused`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import docker
import docker.errors
import trio

Call = Callable[[str, Callable[[docker.DockerClient], Any]], Awaitable[Any]]


def _pause(backend_id: str) -> Callable[[docker.DockerClient], bool]:
    def pause(c: docker.DockerClient) -> bool:
        try:
            c.api.pause(backend_id)
        except docker.errors.APIError as exc:
            if exc.status_code == 409 and "already paused" in str(exc.explanation):
                return True  # left behind by a crash: ours now, undone at the end
            if exc.status_code in (404, 409):
                return False  # gone or not running: no process can move anything
            raise
        return True
    return pause


def _unpause(backend_id: str) -> Callable[[docker.DockerClient], None]:
    def unpause(c: docker.DockerClient) -> None:
        try:
            c.api.unpause(backend_id)
        except docker.errors.APIError as exc:
            if exc.status_code not in (404, 409):  # gone, or not paused any more
                raise
    return unpause


def paused_refusal(exc: docker.errors.APIError) -> bool:
    """Whether the engine refused an exec because the container is paused."""
    return exc.status_code == 409 and "is paused" in str(exc.explanation)


class Freezer:
    """Counted pauses of containers, for one backend."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._lock = trio.Lock()
        self._holders: dict[str, int] = {}  # backend id -> reads holding it paused
        self._paused: set[str] = set()
        self._released: dict[str, trio.Event] = {}  # set when the last hold of it ends

    async def thawed(self, backend_id: str) -> None:
        """Until no read of this backend holds the container still."""
        while self._holders.get(backend_id):
            await self._released[backend_id].wait()

    @asynccontextmanager
    async def frozen(self, backend_id: str) -> AsyncIterator[None]:
        async with self._lock:
            first = not self._holders.get(backend_id)
            if first and await self._call("pause container", _pause(backend_id)):
                self._paused.add(backend_id)
            if not self._holders.get(backend_id):
                self._released[backend_id] = trio.Event()
            self._holders[backend_id] = self._holders.get(backend_id, 0) + 1
        try:
            yield
        finally:
            with trio.CancelScope(shield=True):
                async with self._lock:
                    self._holders[backend_id] -= 1
                    if not self._holders[backend_id]:
                        del self._holders[backend_id]
                        try:
                            if backend_id in self._paused:
                                self._paused.discard(backend_id)
                                await self._call("unpause container", _unpause(backend_id))
                        finally:
                            self._released.pop(backend_id).set()


async def unpause_if_paused(call: Call, backend_id: str, attrs: dict[str, Any]) -> bool:
    """Unpause a container a crash left paused; whether it was (it runs again then)."""
    if not (attrs.get("State") or {}).get("Paused"):
        return False
    await call("unpause container", _unpause(backend_id))
    return True
