"""The event hub: tails the ``events`` table and wakes every ``/ws/events`` viewer.

The database is the only channel between daemons, so the API learns about the reconciler's
work by watching the journal. One tailer task polls ``PRAGMA data_version`` (a cheap probe
that moves when another connection commits) and, when it moves or the API itself wrote,
bumps :attr:`EventHub.latest` and wakes waiters. Each viewer then reads the rows after its
own cursor, so a slow viewer never holds the others back, and a viewer that reconnects
with ``?after=<id>`` resumes exactly where it left off (``api/events_socket.py``).
"""

from __future__ import annotations

import trio

from appliance.store import AsyncStore


class EventHub:
    def __init__(self, store: AsyncStore, poll_seconds: float = 0.05) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.latest = 0
        self._changed = trio.Event()
        self._dirty = False

    def poke(self) -> None:
        """Called after the API itself wrote: viewers look now, not at the next poll.

        Our own commits do not move ``PRAGMA data_version`` (it only counts other
        connections' commits), so the tailer is also told to re-read the latest id.
        """
        self._dirty = True
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    async def wait_beyond(self, cursor: int) -> None:
        """Return once an event newer than ``cursor`` may exist: :attr:`latest` is past it,
        or the API itself just wrote (:meth:`poke`). ``latest`` learns of our own writes only
        at the tailer's next look, a poll away; a viewer woken by a poke reads the journal
        now (a wake-up with nothing new costs it one query), so a hook reaches the browser
        without waiting for the poll."""
        if self.latest <= cursor:
            await self._changed.wait()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.latest = await self.store.run(self.store.sync.last_event_id)
        seen = await self.store.run(self.store.sync.data_version)
        task_status.started()
        while True:
            await trio.sleep(self.poll_seconds)
            version = await self.store.run(self.store.sync.data_version)
            if version != seen or self._dirty:
                seen, self._dirty = version, False
                await self.refresh()

    async def refresh(self) -> None:
        latest = await self.store.run(self.store.sync.last_event_id)
        if latest != self.latest:
            self.latest = latest
            self.poke()

