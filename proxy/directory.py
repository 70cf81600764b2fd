"""Who is asking: sessions as the proxy sees them, read live from the store.

Each container's proxy URL carries ``session_id:token``; the server asks a
:class:`SessionDirectory` for the session and checks the token against the stored digest
(:func:`authenticate`, pure). The access and egress modes are read on every request, so a
mode change applies to the session's next request; :class:`StoreDirectory` keeps answers
for at most :data:`CACHE_SECONDS` to spare the database a query per request.

One identity is not a session: the appliance's own (:data:`appliance.tokens.APPLIANCE_ID`,
:func:`appliance_identity`), under which it makes a session's title with a model call and,
on a person's behalf, pushes a session's branch and reads and merges its pull request. It is
read-only (a model API takes its POST; every other write is refused) except for what
:mod:`proxy.gitguard`'s owner rules allow it on a remote: pushing session branches and
opening, merging and cleaning up their pull requests. It has no egress list, budget or
placeholders of its own to leak.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import trio

from appliance import proxystore
from appliance.store import Store
from appliance.tokens import APPLIANCE_ID, appliance_token, hash_token, token_matches
from proxy.heads import ProxyCredentials

CACHE_SECONDS = 1.0
#: At most this many ids found in no session are asked for by their key in one read;
#: beyond, every session is read (one statement's bound on its parameters).
_PROBED = 500


class AccessMode(StrEnum):
    READ_WRITE = "read-write"
    READ_ONLY = "read-only"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionAuth:
    session_id: str
    name: str
    access_mode: AccessMode
    proxy_token_hash: str
    #: The session's controls (``proxy/controls.py``): its own egress mode (None: the
    #: default) and why its model requests are refused now, as last written.
    egress_mode: str | None = None
    budget_exceeded: str | None = None
    #: The appliance's own identity, acting for the person (not a session): the owner
    #: rules of ``proxy/gitguard.py`` decide its writes to a remote.
    owner: bool = False
    #: The session's repositories on GitHub (``owner/repo``, as its repositories' remotes
    #: named them when it was made): the only ones its writes there reach (``ownrepos.py``).
    repos: frozenset[str] = frozenset()


class SessionDirectory(Protocol):
    async def lookup(self, session_id: str) -> SessionAuth | None: ...


def appliance_identity(key: bytes) -> SessionAuth:
    """The appliance's own identity, known from the instance key alone: read-only, so its
    title call can POST to a model API and nothing else is written, but for the pushes and
    pull-request writes the owner rules allow (``proxy/policy.py``, ``proxy/gitguard.py``)."""
    return SessionAuth(session_id=APPLIANCE_ID, name=APPLIANCE_ID,
                       access_mode=AccessMode.READ_ONLY,
                       proxy_token_hash=hash_token(appliance_token(key)), owner=True)


def authenticate(presented: ProxyCredentials | None, found: SessionAuth | None) -> bool:
    if presented is None or found is None or not found.proxy_token_hash:
        return False
    return found.session_id == presented.session_id and token_matches(
        presented.token, found.proxy_token_hash
    )


def proven(presented: ProxyCredentials | None, found: SessionAuth | None) -> str | None:
    """The session a request is recorded under: the one its credentials prove. A refusal
    for credentials names none: any client can name any session's id (an agent learns its
    neighbours' from the engine's DNS, where containers are named by it), and a line under
    that id is read as that session's (its timeline, its health's last model request)."""
    return found.session_id if found is not None and authenticate(presented, found) else None


@dataclass(frozen=True, slots=True)
class _Read:
    """Every session as one read of the store found them."""

    number: int
    at: float
    changes: tuple[int, int]
    sessions: dict[str, SessionAuth]


class StoreDirectory:
    """Sessions from the SQLite store (``appliance.store``), read all at once on a worker
    thread, one read at a time: a lookup waits for the read running and at most one more.

    A session found is kept :data:`CACHE_SECONDS`. An id no session has is read again only
    when the database changed since (:meth:`Store.changes`, no row read): any client can name
    any id, a new one per request, and a read per id queued a neighbour's lookup behind them;
    and then by its key alone (:func:`appliance.proxystore.known`), since the database changes
    all the time.
    """

    def __init__(
        self,
        store: Store,
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        appliance: SessionAuth | None = None,
    ) -> None:
        self._store = store
        self._appliance = appliance
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._last: _Read | None = None
        self._reads = 0  # reads started
        self._reading: trio.Event | None = None
        #: What the next read is for: the ids found in no session since the last read
        #: began, and whether a lookup needs every session read again (its read is old).
        self._missed: set[str] = set()
        self._stale = False

    async def lookup(self, session_id: str) -> SessionAuth | None:
        if self._appliance is not None and session_id == self._appliance.session_id:
            return self._appliance
        begun = self._reads  # a read numbered this or later started after this lookup
        last = self._last
        if last is None or self._clock() - last.at >= self._cache_seconds:
            self._stale = True
            last = await self._read_from(self._reads)
        found = last.sessions.get(session_id)
        if found is None and last.number < begun:  # said by a read older than this lookup
            self._missed.add(session_id)  # a read numbered this or later asks for it
            found = (await self._read_from(self._reads)).sessions.get(session_id)
        return found

    async def _read_from(self, number: int) -> _Read:
        """The newest read, once one numbered ``number`` or later has ended: the one
        running if it is, else a new one."""
        while self._last is None or self._last.number < number:
            if self._reading is not None:
                await self._reading.wait()
                continue
            self._reading = done = trio.Event()
            self._reads += 1
            missed, stale, self._missed, self._stale = self._missed, self._stale, set(), False
            try:
                self._last = await trio.to_thread.run_sync(
                    self._read, self._reads - 1, self._last, () if stale else missed)
            finally:
                self._reading = None
                done.set()
        return self._last

    def _read(self, number: int, last: _Read | None, missed: Collection[str]) -> _Read:
        """Every session, unless the database is as ``last`` found it, or the read is only
        for ids ``last`` found in no session (``missed``) and none is one now: the database
        changes all the time (hooks journaled, usage written), and reading every session
        for each id any client names would cost a thousand rows a request."""
        changes = self._store.changes()
        if last is not None and last.changes == changes:
            return _Read(number, self._clock(), changes, last.sessions)
        if last is not None and 0 < len(missed) <= _PROBED \
                and not proxystore.known(self._store, missed):
            # As old as it was: a lookup of a session found reads every session again.
            return _Read(number, last.at, last.changes, last.sessions)
        sessions = {
            str(row["id"]): SessionAuth(
                session_id=str(row["id"]), name=row["name"],
                access_mode=AccessMode(str(row["access_mode"])),
                proxy_token_hash=row["proxy_token_hash"], egress_mode=row["egress_mode"],
                budget_exceeded=row["budget_exceeded"],
                repos=proxystore.github_repos(row["github_repos"]))
            for row in proxystore.credentials(self._store)}
        return _Read(number, self._clock(), changes, sessions)
