"""The proxy's metrics: requests by host and decision, bytes, latency; from its audit records.

Every request the proxy answers ends in one audit record (``ProxyState.record``);
:meth:`ProxyMetrics.observe` counts it: a dictionary update and a histogram bucket, no I/O.
Hosts are an agent's to choose, so their label is bounded (``appliance.metrics.labels``):
the hosts of the configuration (rules, model hosts, upstream overrides) always have their
own, then the first :data:`~appliance.metrics.labels.DEFAULT_LIMIT` others, then ``other``.
The ledger publishes the registry with its own batches (``proxy/ledger.py``).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

from appliance.audit import AuditRecord, Decision
from appliance.metrics.labels import Bounded
from appliance.metrics.metrics_publish import Publisher, service_registry
from proxy.proxy_config import ProxyConfig

SERVICE = "proxy"
#: From a cached keep-alive request to a long model answer.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def configured_hosts(config: ProxyConfig) -> set[str]:
    hosts = {rule.host for rule in config.rules} | set(config.model_hosts)
    hosts |= {key.split(":")[0] for key in config.upstreams}
    return hosts


class ProxyMetrics:
    def __init__(self, config: ProxyConfig | None = None) -> None:
        self.registry, published = service_registry(SERVICE)
        self.publisher = Publisher(SERVICE, self.registry, published)
        self.hosts = Bounded(configured_hosts(config) if config is not None else ())
        self.requests = Counter("clauderon_proxy_requests", "Requests the proxy answered, by "
                                "host and decision (injected, passed, blocked, rejected, "
                                "denied, error, honeytoken)", ["host", "decision"],
                                registry=self.registry)
        self.bytes = Counter("clauderon_proxy_bytes", "Body bytes relayed, by host and "
                             "direction (sent: the agent's to the upstream, received: the "
                             "upstream's answers)",
                             ["host", "direction"], registry=self.registry)
        self.seconds = Histogram("clauderon_proxy_request_duration_seconds",
                                 "From a request's head to the end of its answer, by host",
                                 ["host"], buckets=BUCKETS, registry=self.registry)
        #: (host label, decision) -> its children; as bounded as the host labels are.
        self._children: dict[tuple[str, Decision], tuple[Any, Any, Any, Any]] = {}

    def reconfigured(self, config: ProxyConfig) -> None:
        self.hosts.expect(configured_hosts(config))

    def observe(self, record: AuditRecord) -> None:
        host = self.hosts(record.host or "-")
        key = (host, record.decision)
        children = self._children.get(key)
        if children is None:
            # ``labels()`` takes a lock and checks its arguments: once per label pair.
            children = self._children[key] = (
                self.requests.labels(host=host, decision=str(record.decision)),
                self.bytes.labels(host=host, direction="sent"),
                self.bytes.labels(host=host, direction="received"),
                self.seconds.labels(host=host),
            )
        requests, sent, received, seconds = children
        requests.inc()
        if record.bytes_in:
            sent.inc(record.bytes_in)
        if record.bytes_out:
            received.inc(record.bytes_out)
        seconds.observe(record.duration_ms / 1000)
