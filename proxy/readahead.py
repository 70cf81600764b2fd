"""How many requests each session may have read ahead at once.

Some checks need a request's body before anything goes upstream (``gitguard.py`` reads a
GitHub write's JSON whole, up to ``screen.GITHUB_BODY_LIMIT``). Every connection of a
session could hold that much in the proxy's memory while its body trickles in, and a
container may hold hundreds of connections: one agent could take the appliance's memory.
So each session gets :data:`PER_SESSION` slots; a request that finds them taken waits for
one, and only that session's requests wait.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

#: Bodies a session may have read ahead at once.
PER_SESSION = 2


class ReadAhead:
    """Slots per session; a session's limiter is kept only while it is in use."""

    def __init__(self, per_session: int = PER_SESSION) -> None:
        self._per_session = per_session
        self._limiters: dict[str, trio.CapacityLimiter] = {}

    def in_use(self) -> int:
        """Sessions holding or waiting for a slot now."""
        return len(self._limiters)

    def held(self, session_id: str) -> int:
        """The slots ``session_id`` holds now."""
        limiter = self._limiters.get(session_id)
        return 0 if limiter is None else int(limiter.borrowed_tokens)

    @asynccontextmanager
    async def slot(self, session_id: str) -> AsyncIterator[None]:
        limiter = self._limiters.get(session_id)
        if limiter is None:
            limiter = self._limiters[session_id] = trio.CapacityLimiter(self._per_session)
        try:
            async with limiter:
                yield
        finally:
            if limiter.borrowed_tokens == 0 and limiter.statistics().tasks_waiting == 0:
                self._limiters.pop(session_id, None)
