"""The shipper's metrics: lines and bytes shipped, sink failures, rotations.

Counted in the shipper's own registry and published to the database by its publisher
(``appliance/metrics``), from where the API's ``/metrics`` serves them.
"""

from __future__ import annotations

from prometheus_client import Counter

from appliance.metrics.metrics_publish import Publisher, service_registry

SERVICE = "shipper"


class ShipperMetrics:
    def __init__(self) -> None:
        self.registry, published = service_registry(SERVICE)
        self.publisher = Publisher(SERVICE, self.registry, published)
        self.lines = Counter("clauderon_shipper_lines", "Audit lines every sink acknowledged",
                             registry=self.registry)
        self.bytes = Counter("clauderon_shipper_bytes", "Audit bytes every sink acknowledged",
                             registry=self.registry)
        self.sink_failures = Counter("clauderon_shipper_sink_failures", "Failed deliveries to "
                                     "a sink (retried with back-off), by sink", ["sink"],
                                     registry=self.registry)
        self.rotations = Counter("clauderon_shipper_rotations", "Times audit.jsonl was rotated",
                                 registry=self.registry)
