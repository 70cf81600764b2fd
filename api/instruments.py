"""The API's own metrics: sessions created, hook events by name; read live at each scrape.

The API serves ``/metrics`` (``api/operations.py``), so its registry is never published: it
is read as it is, beside what the other services published (``appliance.metrics.collect``).
Hook event names come from agents: only the names the core's table knows are labels
(:data:`appliance.agents.hooks.HOOK_STATUS`), anything else is ``other``.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from appliance.agents.hooks import HOOK_STATUS
from appliance.metrics.labels import OTHER
from appliance.metrics.metrics_publish import service_registry

SERVICE = "api"


@dataclass(frozen=True, slots=True)
class ApiMetrics:
    registry: CollectorRegistry
    read_at: Gauge
    creates: Counter
    hook_events: Counter

    @classmethod
    def new(cls) -> ApiMetrics:
        registry, read_at = service_registry(SERVICE)
        return cls(
            registry=registry, read_at=read_at,
            creates=Counter("clauderon_session_creates", "Sessions created (accepted by the "
                            "API), by agent and backend", ["agent", "backend"],
                            registry=registry),
            hook_events=Counter("clauderon_hook_events", "Agent hook events received, by "
                                "event", ["event"], registry=registry))

    def hook(self, name: object) -> None:
        label = name if isinstance(name, str) and name in HOOK_STATUS else OTHER
        self.hook_events.labels(event=label).inc()
