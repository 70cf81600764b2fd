"""What the API's routes are handed: settings, the store, the backends, the event hub.

Routes are plain functions on blueprints; :func:`current` gives them the one
:class:`ApiContext` the app was created with (Quart keeps it in ``app.extensions``). The
backends are typed by the protocol: the API never imports a concrete backend.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar, cast

import trio
from quart import current_app

from api.events import EventHub
from api.instruments import ApiMetrics
from api.ratelimit import HOOK_TRIM_EVERY, Every, WindowLimiter
from api.recent import Recent
from appliance.audit_index import AuditIndex
from appliance.backends.base import Backend
from appliance.config import Settings
from appliance.errors import Conflict, InvalidInput
from appliance.readers import WorkspaceReader, reader_for
from appliance.sessions import Phase, Session
from appliance.store import AsyncStore

log = logging.getLogger(__name__)

EXTENSION = "clauderon"
#: How long health's census of a full disk is reused (what an open web UI waits between asks).
CENSUS_SECONDS = 30.0
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiContext:
    settings: Settings
    store: AsyncStore
    backends: dict[str, Backend]
    hub: EventHub
    instance_key: bytes
    #: Where each session's lines are in the audit log: its views read through it, so no
    #: session's requests push another's out of sight.
    audit: AuditIndex
    #: Transcript reads at once: each is bounded; this bounds how many add up.
    readers: trio.CapacityLimiter = field(default_factory=lambda: trio.CapacityLimiter(2))
    metrics: ApiMetrics = field(default_factory=ApiMetrics.new)
    #: Hook events per session (an agent posting in a loop would fill the database).
    hook_limiter: WindowLimiter = field(default_factory=WindowLimiter.hooks)
    #: When a session's hook events past ``keep_hook_events`` are trimmed from the journal.
    hook_trims: Every = field(default_factory=lambda: Every(HOOK_TRIM_EVERY))
    #: Failed sign-in attempts per address and in all (api/signin_routes.py, ``_attempt``).
    signin_limiter: WindowLimiter = field(default_factory=WindowLimiter.sign_in)
    #: Who holds a full disk (health's census), measured at most every 30 s.
    disk_census: Recent[list[dict[str, Any]] | None] = field(
        default_factory=lambda: Recent(CENSUS_SECONDS))
    #: The diff under way per session. git's walk of a tree the agent wrote is bounded in
    #: time only (a ``.gitignore`` that is a FIFO, or patterns that backtrack, hold it until
    #: git's timeout), so diffs asked for at once (a list scrolled past, a refresh) go one
    #: at a time, inside the one hold they share: one agent can make the host walk its
    #: tree once at a time, never more.
    diffs: dict[str, trio.Lock] = field(default_factory=dict)
    #: The read under way per session (its transcript or a page of its timeline). Each holds
    #: one of :attr:`readers` for as long as the agent can make it last (a branch of a
    #: million commits keeps the timeline's git log walking until its deadline), so a
    #: session reads one at a time and never holds every reader the others share.
    reads: dict[str, trio.Lock] = field(default_factory=dict)

    def backend_for(self, session: Session) -> Backend:
        try:
            return self.backends[str(session.backend)]
        except KeyError:
            raise InvalidInput(f"{session.name} runs on the {session.backend} backend, which "
                               "is not configured here", field="backend") from None

    def reader_for(self, session: Session, *, absent: str) -> WorkspaceReader:
        """How ``session``'s workspace and home are read (on this host, or in its pod)."""
        return reader_for(self.settings, session, self.backends.get(str(session.backend)),
                          absent=absent)

    def held_still(self, session: Session) -> AbstractAsyncContextManager[None]:
        """``session``'s workload frozen while the host walks its tree by path (the diff's
        git): an agent swapping a folder for a symlink mid-walk would steer the read out.
        Whatever the session's phase: its container runs before a start is recorded (the
        agent's boot, its own startup files among it); one that does not run reads unheld,
        and one that starts under the read has it refused (``Freezer``). A session being
        made is not read: the container it records may be an old one, gone, while its new
        one boots the agent (a recreate), so there is nothing to hold that is sure to be it."""
        if session.phase is Phase.CREATING:
            raise Conflict(f"{session.name} is being made: its tree is not read until its "
                           "container runs (the agent could move it under the read); try "
                           "again once it is running, or read its files meanwhile")
        backend = self.backends.get(str(session.backend))
        if backend is None or session.backend_id is None:
            return nullcontext()  # no workload: nothing moves the tree
        return backend.frozen(session.backend_id)

    def diff_turn(self, session: Session) -> AbstractAsyncContextManager[None]:
        """``session``'s turn to be diffed, once any diff of it under way is done."""
        return _turn(self.diffs, session, "diff")

    @asynccontextmanager
    async def read_turn(self, session: Session) -> AsyncIterator[None]:
        """``session``'s turn to read its agent's writing (once any read of it under way is
        done), then one of the :attr:`readers` every session shares."""
        async with _turn(self.reads, session, "read"), self.readers:
            yield

    async def resolve(self, ref: str) -> Session:
        """A session by id or name (404 otherwise)."""
        return await self.store.run(self.store.sync.resolve, ref)

    async def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A write to the store (on its thread), then every event stream woken."""
        done = await self.store.run(fn, *args, **kwargs)
        self.hub.poke()
        return done


@asynccontextmanager
async def _turn(turns: dict[str, trio.Lock], session: Session, what: str
                ) -> AsyncIterator[None]:
    """``session``'s turn in ``turns`` (one at a time per session)."""
    turn = turns.setdefault(session.id, trio.Lock())
    if turn.locked():
        log.info("a %s of %s waits for the one under way", what, session.name,
                 extra={"session": session.id})
    try:
        async with turn:
            yield
    finally:
        if not turn.locked() and not turn.statistics().tasks_waiting:
            turns.pop(session.id, None)


def current() -> ApiContext:
    return cast(ApiContext, current_app.extensions[EXTENSION])
