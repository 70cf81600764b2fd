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
coming). Nor does a hold begin while a command of ours is *starting* there
(:meth:`Freezer.starting`): the engine checks that the container is not paused, then runc
starts the command's process, which joins the container's cgroup half set up; a pause in
between freezes it there, runc waits for it for ever, and the engine, holding the command's
locks, hangs ``docker unpause``, ``inspect`` and ``rm -f`` until the cgroup is thawed by hand.
So a hold waits for the commands starting to be running, and the commands asked for
meanwhile wait for the hold. A pause a crash left behind is undone by the
reconciler: the engine reports a paused container as not running, and ``start`` unpauses
it (:func:`unpause_if_paused`).

A hold can be undone under the read by what is not ours (a person's stop, which unpauses to
stop, ``docker unpause`` or ``restart`` by anyone, a remake): the agent ran mid-walk, and
what git read is not the still tree. So at the read's end the hold is checked, while it is
still on: the engine's events for the container since the pause (an unpause, a start, an
end) and its state now (still paused, started when it was). A hold that did not stand
the whole time refuses the read (:func:`moved`); asking again reads under a new one. What
of ours would undo a hold (a stop, an archive) waits for it to end first, bounded
(:meth:`Freezer.outwait`): the reads are the API's, the stops the reconciler's, so the
engine's word (paused) is what it waits on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import docker
import docker.errors
import trio

from appliance.backends.docker_pause import ALREADY, NOT_PAUSED, UNFROZEN, refusal
from appliance.errors import Conflict

log = logging.getLogger(__name__)
Call = Callable[[str, Callable[[docker.DockerClient], Any]], Awaitable[Any]]

#: How long a stop waits for a read's hold to end before it undoes it (the read is then
#: refused): one bounded git walk (``hostgit.GIT_TIMEOUT``) and a margin; a pause nobody
#: lets go of (a person's ``docker pause``) is as long as a stop waits.
HOLD_WAIT_SECONDS = 150.0
HOLD_POLL_SECONDS = 0.1


#: The engine writes down a pause (or an unpause) twice: when it makes it, and again when
#: the runtime's event about it arrives, a moment later. A pause and an unpause of one
#: container closer together than that have the late event undo the newer one in the
#: engine's record: it then says paused of a running container (a pause is refused as
#: "already paused": a read would walk a tree that moves) or running of a frozen one (the
#: unpause is refused and the container stays frozen; a command started there freezes half
#: set up). So one container's pauses and unpauses are spaced by this, and a refusal that
#: contradicts what we did last is asked again, a few times, this far apart.
SETTLE_SECONDS = 0.05
SETTLE_TRIES = 10

#: The cgroup freezer gives up (``unable to freeze``) when the container's processes keep
#: forking (an agent can do that at will), when one is stuck in the kernel, or on a busy
#: machine; the engine then leaves the container running. A pause is asked again this
#: many times, this far apart; then the read is refused, since it is never made without
#: the hold (what the hold keeps it from is above).
FREEZE_TRIES = 5
FREEZE_RETRY_SECONDS = 0.2
UNFROZEN_REFUSAL = (
    "could not hold the session's container still to read its tree: the engine could not "
    "freeze its processes, asked a few times, so the tree was not read. Its processes "
    "keep starting new ones, one is stuck, or the machine is busy: try again in a moment; "
    "if it keeps failing, stop what runs wild in the session or restart the session")


#: The engine's record says paused, asked again and again, yet no pause of ours made it
#: so: a person's ``docker pause``, another process's hold, one a crash left (the
#: reconciler undoes those), or the engine's late record of an older pause, which says
#: paused of a container whose processes run. Which it is cannot be told from here, so the
#: read is refused rather than taken for held.
PAUSED_REFUSAL = (
    "could not hold the session's container still to read its tree: the engine says it is "
    "paused already, by something other than this read, and its processes may be running "
    "all the same, so the tree was not read. Try again in a moment; if it keeps failing, "
    "unpause the container (docker unpause) or restart the session")


def _toggle(backend_id: str, *, pause: bool) -> Callable[[docker.DockerClient], str]:
    """A pause (or an unpause): what it did, ``paused`` (``unpaused``); or what the engine
    refused it for (:func:`~appliance.backends.docker_pause.refusal`)."""
    done = "paused" if pause else "unpaused"

    def toggle(c: docker.DockerClient) -> str:
        try:
            (c.api.pause if pause else c.api.unpause)(backend_id)
        except docker.errors.APIError as exc:
            said = refusal(exc.status_code, str(exc.explanation or exc), pause=pause)
            if not said:
                raise
            return said
        return done
    return toggle


def paused_refusal(exc: docker.errors.APIError) -> bool:
    """Whether the engine refused an exec because the container is paused."""
    return exc.status_code == 409 and "is paused" in str(exc.explanation)


#: The engine's events that tell a container's processes ran (or a new one began) under a
#: hold: each names what was done to it, as the refusal says it.
MOVES = {"unpause": "unpaused", "start": "started", "restart": "restarted",
         "die": "ended", "kill": "killed", "stop": "stopped", "destroy": "removed",
         "oom": "killed for its memory"}


def moved(actions: list[str], *, paused: bool, started: str | None,
          now: dict[str, Any] | None) -> str:
    """Why a hold did not stand the whole read (empty: it did). ``actions``: the engine's
    events for the container since the pause; ``paused``: whether the hold paused it (not:
    it was gone or not running then); ``started``: its ``StartedAt`` then; ``now``: its
    ``State`` at the read's end (None: gone)."""
    done = sorted({MOVES[a] for a in actions if a in MOVES})
    if paused:
        if now is None:
            done.append("removed")
        elif not now.get("Paused"):
            done.append("unpaused")
        elif now.get("StartedAt") != started:
            done.append("restarted")
    elif now is not None and now.get("Running") and not now.get("Paused"):
        done.append("started")
    if not done:
        return ""
    return (f"the container moved during the read (it was {', '.join(dict.fromkeys(done))} "
            "while its tree was read, so the agent could change what was read); try again")


def _standing(backend_id: str, since: float, *, paused: bool, started: str | None
              ) -> Callable[[docker.DockerClient], str]:
    """:func:`moved` for ``backend_id``'s hold since ``since`` (the host's clock, the
    engine's own on this host)."""
    def stood(c: docker.DockerClient) -> str:
        # The engine takes fractions of a second (the stubs say whole ones): a hold's own
        # window, not the last hold's unpause a moment before it.
        window: dict[str, Any] = {"since": since, "until": time.time()}
        actions = [str(e.get("Action") or e.get("status") or "") for e in c.api.events(
            **window, decode=True, filters={"type": "container", "container": backend_id})]
        try:
            now: dict[str, Any] | None = c.api.inspect_container(backend_id)["State"]
        except docker.errors.NotFound:
            now = None
        return moved(actions, paused=paused, started=started, now=now)
    return stood


def _paused(backend_id: str) -> Callable[[docker.DockerClient], bool]:
    """Whether the engine says the container is paused (gone: not)."""
    def paused(c: docker.DockerClient) -> bool:
        try:
            return bool(c.api.inspect_container(backend_id)["State"]["Paused"])
        except docker.errors.NotFound:
            return False
    return paused


class Freezer:
    """Counted pauses of containers, for one backend, and the commands starting in them."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._lock = trio.Lock()
        self._holders: dict[str, int] = {}  # backend id -> reads holding it paused
        self._paused: set[str] = set()
        self._released: dict[str, trio.Event] = {}  # set when the last hold of it ends
        self._starting: dict[str, int] = {}  # backend id -> commands starting in it
        self._started: dict[str, trio.Event] = {}  # set when the last of those runs
        self._last: dict[str, float] = {}  # backend id -> when its last pause/unpause ended
        #: backend id -> when its hold began and the StartedAt it had then (None: not paused)
        self._since: dict[str, tuple[float, str | None]] = {}

    async def thawed(self, backend_id: str) -> None:
        """Until no read of this backend holds the container still."""
        while self._holders.get(backend_id):
            await self._released[backend_id].wait()

    async def outwait(self, backend_id: str, what: str) -> None:
        """Until no read holds the container still (this backend's, then one the engine
        says is on: another process's), at most :data:`HOLD_WAIT_SECONDS`; ``what`` (a stop)
        undoes a hold, so it waits for the read to end rather than have it refused."""
        with trio.move_on_after(HOLD_WAIT_SECONDS):
            await self.thawed(backend_id)
            said = False
            while await self._call("inspect container", _paused(backend_id)):
                if not said:
                    log.info("the %s of container %s waits for the read that holds it "
                             "still", what, backend_id[:12])
                    said = True
                await trio.sleep(HOLD_POLL_SECONDS)

    @asynccontextmanager
    async def starting(self, backend_id: str) -> AsyncIterator[Callable[[], None]]:
        """A command starting in the container: once no hold is on, and no hold begins until
        the block ends or it calls what it is given (its process runs: the engine reported
        its pid or its end)."""
        await self.thawed(backend_id)
        # No checkpoint between the check and the count: a hold that begins from here on
        # waits for this start (``frozen``).
        self._starting[backend_id] = self._starting.get(backend_id, 0) + 1
        if self._starting[backend_id] == 1:
            self._started[backend_id] = trio.Event()
        ended = False

        def end() -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            self._starting[backend_id] -= 1
            if not self._starting[backend_id]:
                del self._starting[backend_id]
                self._started.pop(backend_id).set()

        try:
            yield end
        finally:
            end()

    @asynccontextmanager
    async def frozen(self, backend_id: str) -> AsyncIterator[None]:
        async with self._lock:
            first = not self._holders.get(backend_id)
            if first:
                self._released[backend_id] = trio.Event()
            # Counted before the pause: commands asked for from now on wait for the hold.
            self._holders[backend_id] = self._holders.get(backend_id, 0) + 1
            held = False
            try:
                while first and self._starting.get(backend_id):
                    await self._started[backend_id].wait()
                if first:
                    since = time.time()
                    if await self._pause(backend_id):
                        self._paused.add(backend_id)
                    self._since[backend_id] = since, await self._started_at(backend_id)
                held = True
            finally:
                if not held:  # cancelled, or the pause failed: nothing to hold
                    with trio.CancelScope(shield=True):
                        await self._let_go(backend_id)
        try:
            yield
            await self._stood(backend_id)
        finally:
            with trio.CancelScope(shield=True):
                async with self._lock:
                    await self._let_go(backend_id)

    async def _started_at(self, backend_id: str) -> str | None:
        """When the container held paused started (None: the hold did not pause it)."""
        if backend_id not in self._paused:
            return None

        def started(c: docker.DockerClient) -> str | None:
            try:
                return str(c.api.inspect_container(backend_id)["State"]["StartedAt"])
            except docker.errors.NotFound:
                return None
        at: str | None = await self._call("inspect container", started)
        return at

    async def _stood(self, backend_id: str) -> None:
        """Refuse the read if the hold on ``backend_id`` did not stand the whole time."""
        since, started = self._since[backend_id]
        why = await self._call("check the hold", _standing(
            backend_id, since, paused=backend_id in self._paused, started=started))
        if why:
            raise Conflict(why)

    async def _let_go(self, backend_id: str) -> None:
        """One hold fewer; the last one unpauses (the lock is held)."""
        self._holders[backend_id] -= 1
        if self._holders[backend_id]:
            return
        del self._holders[backend_id]
        self._since.pop(backend_id, None)
        try:
            if backend_id in self._paused:
                self._paused.discard(backend_id)
                await self._unpause(backend_id)
        finally:
            self._released.pop(backend_id).set()

    async def _settled(self, backend_id: str, what: str,
                       fn: Callable[[docker.DockerClient], str]) -> str:
        """``fn`` (a pause or unpause) once the last one's late record is in (the lock is
        held)."""
        last = self._last.get(backend_id)
        if last is not None:
            await trio.sleep_until(last + SETTLE_SECONDS)
        try:
            answer: str = await self._call(what, fn)
        finally:
            now = trio.current_time()
            # Only the spacing still owed is kept: no entry outlives its container's hold.
            self._last = {k: t for k, t in self._last.items() if now - t < SETTLE_SECONDS}
            self._last[backend_id] = now
        return answer

    async def _pause(self, backend_id: str) -> bool:
        """Whether the container is paused now (False: gone, or not running); a freezer
        that gives up is asked again, a few times, then the read is refused, as it is when
        the engine keeps saying paused already (:data:`PAUSED_REFUSAL`)."""
        refused = {ALREADY: 0, UNFROZEN: 0}
        while True:
            answer = await self._settled(backend_id, "pause container",
                                         _toggle(backend_id, pause=True))
            if answer not in refused:
                return answer == "paused"
            refused[answer] += 1
            if refused[ALREADY] == SETTLE_TRIES:
                raise Conflict(PAUSED_REFUSAL)
            if refused[UNFROZEN] == FREEZE_TRIES:
                raise Conflict(UNFROZEN_REFUSAL)
            if answer == UNFROZEN:
                log.warning("the engine could not freeze container %s to read its tree "
                            "(%d of %d tries); trying again", backend_id[:12],
                            refused[UNFROZEN], FREEZE_TRIES)
                await trio.sleep(FREEZE_RETRY_SECONDS)

    async def _unpause(self, backend_id: str) -> None:
        for _ in range(SETTLE_TRIES):
            answer = await self._settled(backend_id, "unpause container",
                                         _toggle(backend_id, pause=False))
            if answer != NOT_PAUSED:
                return
        # Not paused by the engine's record after all: someone unpaused it meanwhile.


async def unpause_if_paused(call: Call, backend_id: str, attrs: dict[str, Any]) -> bool:
    """Unpause a container a crash left paused; whether it was (it runs again then)."""
    if not (attrs.get("State") or {}).get("Paused"):
        return False
    await call("unpause container", _toggle(backend_id, pause=False))
    return True
