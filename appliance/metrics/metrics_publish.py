"""A service's registry into the ``metrics`` table: what changed, every few seconds.

Theory of operation. :func:`snapshot` reads a prometheus_client registry into :class:`Row`s
(pure: one per sample, ``_created`` samples left out). A :class:`Publisher` remembers what it
last wrote and hands out only the rows that changed (:meth:`Publisher.changed`); its first
write replaces every row the service had (a previous process's), so label sets that are gone
do not linger. :func:`write` is the one transaction. Services without another writer run
:meth:`Publisher.run`; the proxy's ledger writes its rows with its own batches
(``proxy/ledger.py``), so the proxy keeps one writer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import trio
from prometheus_client import CollectorRegistry, Gauge

from appliance.store import Store

log = logging.getLogger(__name__)

PUBLISH_SECONDS = 5.0

_Key = tuple[str, str]  # sample name, labels (JSON)


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    family: str
    kind: str
    help: str
    name: str
    labels: str  # a JSON object, keys sorted
    value: float

    @property
    def key(self) -> _Key:
        return (self.name, self.labels)


def snapshot(registry: CollectorRegistry) -> dict[_Key, Row]:
    out: dict[_Key, Row] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            row = Row(family=family.name, kind=family.type, help=family.documentation,
                      name=sample.name, labels=json.dumps(sample.labels, sort_keys=True),
                      value=float(sample.value))
            out[row.key] = row
    return out


def service_registry(service: str, clock: Callable[[], float] = time.time
                     ) -> tuple[CollectorRegistry, Gauge]:
    """A new registry with the families every service has: when it started, and when it
    last published (the gauge returned, set by the publisher)."""
    registry = CollectorRegistry(auto_describe=True)
    started = Gauge("clauderon_service_start_time_seconds",
                    "When the service's process started (Unix time)", ["service"],
                    registry=registry)
    started.labels(service=service).set(clock())
    published = Gauge("clauderon_metrics_published_time_seconds",
                      "When the service last published its metrics (Unix time); the API's "
                      "own are read at each scrape", ["service"], registry=registry)
    return registry, published


def write(store: Store, service: str, rows: Iterable[Row], *, replace: bool) -> None:
    """Upsert ``rows`` of ``service``; with ``replace``, its other rows go first."""
    with store.transaction() as conn:
        if replace:
            conn.execute("DELETE FROM metrics WHERE service = ?", (service,))
        conn.executemany(
            "INSERT INTO metrics (service, name, labels, family, kind, help, value) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (service, name, labels) DO UPDATE SET "
            "value = excluded.value, family = excluded.family, kind = excluded.kind, "
            "help = excluded.help",
            [(service, r.name, r.labels, r.family, r.kind, r.help, r.value) for r in rows])


class Publisher:
    def __init__(self, service: str, registry: CollectorRegistry, published: Gauge, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.registry = registry
        self._published = published.labels(service=service)
        self._clock = clock
        self._written: dict[_Key, Row] | None = None  # None: nothing written yet

    def changed(self) -> tuple[list[Row], bool]:
        """The rows to write now, and whether they replace the service's others."""
        self._published.set(self._clock())
        now = snapshot(self.registry)
        if self._written is None:
            return list(now.values()), True
        return [r for k, r in now.items() if self._written.get(k) != r], False

    def committed(self, rows: Iterable[Row]) -> None:
        written = self._written if self._written is not None else {}
        written.update((r.key, r) for r in rows)
        self._written = written

    def publish(self, store: Store) -> None:
        """One round, synchronously (a worker thread's, or a service's last words)."""
        rows, replace = self.changed()
        if rows or replace:
            write(store, self.service, rows, replace=replace)
            self.committed(rows)

    async def run(self, store: Store, *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish every :data:`PUBLISH_SECONDS` until cancelled; a failed round is tried again."""
        task_status.started()
        while True:
            try:
                await trio.to_thread.run_sync(self.publish, store)
            except Exception:
                log.exception("cannot publish the %s metrics; trying again", self.service)
            await trio.sleep(PUBLISH_SECONDS)
