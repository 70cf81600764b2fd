"""What each session created on GitHub, as the proxy remembers it: in memory for the
session's next request, and in the store (``appliance/madestore.py``) across restarts.

:meth:`Made.remember` holds what GitHub's answer to a session's create says it made
(``creates.created``) at once, before any await, and writes it to the store off the loop;
:meth:`Made.which` answers which of the things a change names the session made, from
memory and else the store. Without a store it remembers in memory only.
"""

from __future__ import annotations

import logging

import trio

from appliance import madestore
from appliance.madestore import Made as Item
from appliance.store import Store

log = logging.getLogger(__name__)


class Made:
    def __init__(self, store: Store | None, limiter: trio.CapacityLimiter) -> None:
        self._store = store
        self._limiter = limiter
        self._seen: dict[str, set[Item]] = {}

    async def remember(self, session_id: str, made: tuple[Item, ...]) -> None:
        if not made:
            return
        self._seen.setdefault(session_id, set()).update(made)
        if self._store is None:
            return
        try:
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                await trio.to_thread.run_sync(madestore.record, self._store, session_id, made,
                                              limiter=self._limiter)
        except Exception:
            log.exception("cannot record what a session created on GitHub",
                          extra={"session": session_id})

    async def which(self, session_id: str, named: tuple[Item, ...]) -> frozenset[Item]:
        seen = self._seen.get(session_id, set())
        known = frozenset(n for n in named if n in seen)
        rest = tuple(n for n in named if n not in seen)
        if not rest or self._store is None:
            return known
        return known | await trio.to_thread.run_sync(madestore.made_of, self._store,
                                                     session_id, rest, limiter=self._limiter)
