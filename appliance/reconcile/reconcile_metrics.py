"""The reconciler's metrics: passes and their duration, actions by outcome, failures.

Counted in the reconciler's own registry and published to the database by its
:class:`~appliance.metrics.metrics_publish.Publisher` (``appliance/metrics``), from where the API's
``/metrics`` serves them.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from appliance.metrics.metrics_publish import Publisher, service_registry

SERVICE = "reconciler"


class ReconcilerMetrics:
    def __init__(self) -> None:
        self.registry, published = service_registry(SERVICE)
        self.publisher = Publisher(SERVICE, self.registry, published)
        self.passes = Counter("clauderon_reconcile_passes", "Reconcile passes run",
                              registry=self.registry)
        self.pass_seconds = Histogram(
            "clauderon_reconcile_pass_duration_seconds",
            "How long a pass took to read the world and plan (actions run beside it)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry)
        self.actions = Counter("clauderon_reconcile_actions",
                               "Actions the reconciler ran, by kind and outcome (ok, error: "
                               "it failed and is noted on the session, superseded: the "
                               "session changed meanwhile)", ["action", "outcome"],
                               registry=self.registry)
        self.attempt_failures = Counter(
            "clauderon_session_start_failures",
            "Failed attempts to create or start a session (retried with back-off)",
            registry=self.registry)
        self.failures = Counter("clauderon_session_failures",
                                "Sessions given up on: moved to failed, with the reason",
                                registry=self.registry)
