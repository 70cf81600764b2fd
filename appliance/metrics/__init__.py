"""Metrics: each service counts in its own prometheus_client registry and publishes the
samples into SQLite; the API serves them all at ``GET /metrics``.

Why SQLite rather than prometheus_client's multiprocess mode: the database is already the
one channel between the daemons (``docs/DESIGN.md``), and every service already holds a
connection to it. Multiprocess mode needs a folder wiped before the services start -- a
hook supervisord, the appliance image, the NixOS unit and the tests would each need -- and
keeps a file per process id that a restart (or a new container reusing the same pids) leaves
behind or picks up again; its gauges need a mode per metric. Here a service writes only the
samples that changed, at most every :data:`publish.PUBLISH_SECONDS`, in one transaction; a
restarted service replaces its rows (its counters start again at zero, which Prometheus
reads as a reset), and a scrape is one read. The price: what a scrape shows of the other
services is up to :data:`publish.PUBLISH_SECONDS` old; ``clauderon_metrics_published_
time_seconds`` says when each service last published.

- :mod:`.publish`  registry -> rows (pure), the rows' write, the periodic publisher
- :mod:`.collect`  rows + the sessions table + the API's own registry -> the exposition
- :mod:`.labels`   bounded label values for what an agent controls (hosts, hook names)
"""
