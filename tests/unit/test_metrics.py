"""Metrics: registries published into real SQLite and read back as one exposition, label
values an agent chooses are bounded, only what changed is written."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families

from appliance.audit import AuditRecord, Decision
from appliance.metrics.collect import exposition
from appliance.metrics.labels import OTHER, Bounded
from appliance.metrics.metrics_publish import Publisher, service_registry
from appliance.store import Store
from proxy.proxy_metrics import ProxyMetrics


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_bounded_labels() -> None:
    hosts = Bounded(["api.anthropic.com"], limit=2)
    assert hosts("API.anthropic.com") == "api.anthropic.com"
    assert hosts("a.example") == "a.example"
    assert hosts("b.example") == "b.example"
    assert hosts("c.example") == OTHER
    assert hosts("a.example") == "a.example"  # first come keep theirs
    assert hosts("api.anthropic.com") == "api.anthropic.com"  # expected ones always
    assert len(hosts("x" * 1000)) <= 100


def test_a_hostile_agent_cannot_mint_series() -> None:
    proxy = ProxyMetrics()
    for i in range(5000):
        proxy.observe(AuditRecord(ts="t", id=str(i), session="s", method="GET",
                                  host=f"h{i}.example", path="/", status=200, bytes_in=0,
                                  bytes_out=1, duration_ms=1.0, credential=None,
                                  decision=Decision.PASSED))
    hosts = {s.labels["host"] for f in proxy.registry.collect() for s in f.samples
             if "host" in s.labels}
    assert len(hosts) <= 101 and OTHER in hosts


def test_published_rows_come_back_in_the_exposition(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite")
    registry, published = service_registry("reconciler", clock=lambda: 1000.0)
    passes = Counter("clauderon_reconcile_passes", "passes", registry=registry)
    took = Histogram("clauderon_x_seconds", "x", buckets=(0.1, 1), registry=registry)
    ticks = iter(range(2000, 3000))
    publisher = Publisher("reconciler", registry, published, clock=lambda: next(ticks))
    passes.inc(3)
    took.observe(0.5)
    publisher.publish(store)
    api, _ = service_registry("api", clock=lambda: 500.0)
    body, ctype = exposition(store, api)
    assert ctype.startswith("text/plain")
    got = samples(body)
    assert got[("clauderon_reconcile_passes_total", ())] == 3
    assert got[("clauderon_x_seconds_bucket", (("le", "1.0"),))] == 1
    assert got[("clauderon_x_seconds_count", ())] == 1
    assert got[("clauderon_service_start_time_seconds", (("service", "reconciler"),))] == 1000
    assert got[("clauderon_service_start_time_seconds", (("service", "api"),))] == 500
    assert got[("clauderon_metrics_published_time_seconds",
                (("service", "reconciler"),))] == 2000
    assert got[("clauderon_sessions", (("phase", "running"),))] == 0
    assert not any(name.endswith("_created") for name, _ in got)

    # Only what changed is written next time; a new process replaces the old one's rows.
    rows, replace = publisher.changed()
    assert not replace and {r.name for r in rows} == {"clauderon_metrics_published_time_seconds"}
    registry2, published2 = service_registry("reconciler", clock=lambda: 3000.0)
    Counter("clauderon_reconcile_passes", "passes", registry=registry2).inc()
    Publisher("reconciler", registry2, published2).publish(store)
    got = samples(exposition(store, api)[0])
    assert got[("clauderon_reconcile_passes_total", ())] == 1
    assert ("clauderon_x_seconds_count", ()) not in got
    store.close()
