"""The usage ledger: counts added on the request path, written to SQLite off it, in batches.

Theory of operation. :meth:`Ledger.add` is a dictionary update (no I/O, no await): the
exchange calls it when an answer ends. :meth:`Ledger.run`, a task of the proxy's server
nursery, writes what has gathered every :data:`FLUSH_SECONDS` (sooner once
:data:`MAX_KEYS` rows wait) in one transaction on a worker thread
(``appliance.controlstore.add_usage``). Counts being written, and those written since the
controls last read the totals back (:meth:`Ledger.read_back`), stay visible to budget checks
(:meth:`Ledger.unflushed`): between a write and that read they were in neither. A failed
write keeps its counts for the next round (they are added back, so nothing is lost or
doubled).

The same batches carry what else the proxy observes for the other services: each session's
model health (:meth:`Ledger.note_model`: the last verdict per session wins, written only when
it changed, ``appliance.modelhealth``) and facts it publishes (:meth:`Ledger.publish`: the
credentials' summary that ``clauderon status`` shows), and the proxy's metrics every
:data:`~appliance.metrics.metrics_publish.PUBLISH_SECONDS` (``proxy/proxy_metrics.py``). One writer.

Shutdown: the server calls :meth:`flush` once every connection has ended, so a clean stop
writes every count. A crash (SIGKILL, power) loses at most the counts of the last
:data:`FLUSH_SECONDS`; a failed write that keeps failing holds at most :data:`MAX_KEYS`
rows' worth of counts in memory before the oldest day's are dropped, logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace

import trio

from appliance.controlstore import UsageRow, add_usage, today
from appliance.metrics.metrics_publish import PUBLISH_SECONDS, Publisher
from appliance.store import Store
from appliance.usage import Usage

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
MAX_KEYS = 4096
_Key = tuple[str, str, str]  # session id, day, model


class Ledger:
    def __init__(self, store: Store | None, *, day: Callable[[], str] = today,
                 on_flush: Callable[[], None] | None = None,
                 metrics: Publisher | None = None) -> None:
        self._store = store
        self._day = day
        self._on_flush = on_flush
        self._metrics = metrics
        self._metrics_due = -math.inf
        self._pending: dict[_Key, UsageRow] = {}
        self._writing: dict[_Key, UsageRow] = {}
        #: Batches written that the controls' totals may not hold yet: (number, rows).
        self._written: list[tuple[int, list[UsageRow]]] = []
        self.batches = 0  # batches written so far
        #: Session id -> its model error (None: working), as last seen and not yet written.
        self._model: dict[str, str | None] = {}
        #: ... and as last written, so a steady state queues nothing.
        self._model_written: dict[str, str | None] = {}
        self._meta: dict[str, str] = {}
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

    def note_model(self, session_id: str, reason: str | None) -> None:
        """The session's model calls fail for ``reason`` (None: they work), as of now."""
        if session_id in self._model_written and self._model_written[session_id] == reason \
                and session_id not in self._model:
            return
        self._model[session_id] = reason

    def publish(self, key: str, value: str) -> None:
        """A fact for the other services (the ``meta`` table), written with the next batch."""
        self._meta[key] = value
        self._wake.set()

    def unflushed(self, session_id: str | None = None) -> list[UsageRow]:
        """Counts not yet committed (one session's, or all), for budget checks."""
        rows = [*self._pending.values(), *self._writing.values(),
                *(r for _, batch in self._written for r in batch)]
        return [r for r in rows if session_id is None or r.session_id == session_id]

    def read_back(self, upto: int) -> None:
        """The totals were read from the database after batch ``upto`` was written: the
        batches up to it are in them (later ones stay counted here, at worst twice)."""
        self._written = [(n, batch) for n, batch in self._written if n > upto]

    def attach_metrics(self, publisher: Publisher) -> None:
        """Publish ``publisher``'s registry with the batches, every
        :data:`~appliance.metrics.metrics_publish.PUBLISH_SECONDS`."""
        self._metrics = publisher

    async def flush(self, *, final: bool = False) -> None:
        async with self._lock:
            if self._store is None:
                return
            now = trio.current_time()
            metrics = self._metrics if final or now >= self._metrics_due else None
            if not (self._pending or self._model or self._meta or metrics):
                return
            if metrics is not None:
                self._metrics_due = now + PUBLISH_SECONDS
            self._writing, self._pending = self._pending, {}
            model, self._model = self._model, {}
            meta, self._meta = self._meta, {}
            store, rows = self._store, list(self._writing.values())
            counted = bool(rows or model or meta)
            try:
                await trio.to_thread.run_sync(self._write, store, rows, model, meta, metrics)
            except Exception:
                log.exception("cannot write %d usage rows; keeping them for the next try",
                              len(rows))
                for key, row in self._writing.items():
                    self._merge(key, row)
                self._trim()
                self._model = {**model, **self._model}
                self._meta = {**meta, **self._meta}
            else:
                if rows:
                    self.batches += 1
                    self._written.append((self.batches, rows))
                    if len(self._written) > MAX_KEYS:  # nobody reads them back: kept bounded
                        del self._written[0]
                if len(self._model_written) > 10_000:
                    self._model_written.clear()
                self._model_written.update(model)
            finally:
                self._writing = {}
            if self._on_flush is not None and counted:
                self._on_flush()

    @staticmethod
    def _write(store: Store, rows: list[UsageRow], model: dict[str, str | None],
               meta: dict[str, str], metrics: Publisher | None) -> None:
        if rows or model or meta:
            add_usage(store, rows, model, meta)
        if metrics is not None:
            metrics.publish(store)

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
