"""The usage ledger: counts added on the request path, written to SQLite off it, in batches.

Theory of operation. :meth:`Ledger.add` is a dictionary update (no I/O, no await): the
exchange calls it when an answer ends. :meth:`Ledger.run`, a task of the proxy's server
nursery, writes what has gathered every :data:`FLUSH_SECONDS` (sooner once
:data:`MAX_KEYS` rows wait) in one transaction on a worker thread
(``appliance.controlstore.add_usage``). Counts being written stay visible to budget checks
(:meth:`Ledger.unflushed`) until the write commits. A failed write keeps its counts for the
next round (they are added back, so nothing is lost or doubled).

Shutdown: the server calls :meth:`flush` once every connection has ended, so a clean stop
writes every count. A crash (SIGKILL, power) loses at most the counts of the last
:data:`FLUSH_SECONDS`; a failed write that keeps failing holds at most :data:`MAX_KEYS`
rows' worth of counts in memory before the oldest day's are dropped, logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import trio

from appliance.controlstore import UsageRow, add_usage, today
from appliance.store import Store
from appliance.usage import Usage

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
MAX_KEYS = 4096
_Key = tuple[str, str, str]  # session id, day, model


class Ledger:
    def __init__(self, store: Store | None, *, day: Callable[[], str] = today,
                 on_flush: Callable[[], None] | None = None) -> None:
        self._store = store
        self._day = day
        self._on_flush = on_flush
        self._pending: dict[_Key, UsageRow] = {}
        self._writing: dict[_Key, UsageRow] = {}
        self._wake = trio.Event()
        self._lock = trio.Lock()

    def add(self, session_id: str, name: str, model: str, usage: Usage, *,
            complete: bool) -> None:
        key = (session_id, self._day(), model)
        row = self._pending.get(key)
        if row is None:
            row = UsageRow(session_id=session_id, session_name=name, day=key[1], model=model)
        self._pending[key] = replace(row, requests=row.requests + 1,
                                     unmetered=row.unmetered + (0 if complete else 1),
                                     usage=row.usage + usage)
        if len(self._pending) >= MAX_KEYS:
            self._wake.set()

    def unflushed(self, session_id: str | None = None) -> list[UsageRow]:
        """Counts not yet committed (one session's, or all), for budget checks."""
        rows = [*self._pending.values(), *self._writing.values()]
        return [r for r in rows if session_id is None or r.session_id == session_id]

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending or self._store is None:
                return
            self._writing, self._pending = self._pending, {}
            store, rows = self._store, list(self._writing.values())
            try:
                await trio.to_thread.run_sync(add_usage, store, rows)
            except Exception:
                log.exception("cannot write %d usage rows; keeping them for the next try",
                              len(rows))
                for key, row in self._writing.items():
                    self._merge(key, row)
                self._trim()
            finally:
                self._writing = {}
            if self._on_flush is not None:
                self._on_flush()

    def _merge(self, key: _Key, row: UsageRow) -> None:
        now = self._pending.get(key)
        if now is None:
            self._pending[key] = row
        else:
            self._pending[key] = replace(now, requests=now.requests + row.requests,
                                         unmetered=now.unmetered + row.unmetered,
                                         usage=now.usage + row.usage)

    def _trim(self) -> None:
        while len(self._pending) > MAX_KEYS:
            key = min(self._pending, key=lambda k: k[1])
            lost = self._pending.pop(key)
            log.error("usage of %s on %s dropped: the database refuses writes",
                      lost.session_name, lost.day, extra={"session": lost.session_id})

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Write batches until cancelled (the final flush is the server's, after the
        connections end)."""
        task_status.started()
        while True:
            with trio.move_on_after(FLUSH_SECONDS):
                await self._wake.wait()
            self._wake = trio.Event()
            await self.flush()
