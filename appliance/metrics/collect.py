"""``GET /metrics``: every service's published rows, the sessions table, the API's registry.

One read of the ``metrics`` table (the proxy's, the reconciler's and the shipper's samples,
:mod:`.publish`), the sessions counted by phase and by what the UIs show as the agent's
state (read now, never stale), and the API's own registry read live: grouped by family into
prometheus_client's ``Metric`` records and rendered by its ``generate_latest``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from appliance import wire
from appliance.metrics.metrics_publish import Row, snapshot
from appliance.sessions import AgentStatus, Phase
from appliance.store import Store

LIVE_SERVICE = "api"


def stored_rows(store: Store) -> list[Row]:
    found = store.rows("SELECT family, kind, help, name, labels, value FROM metrics "
                       "WHERE service != ? ORDER BY family, rowid", (LIVE_SERVICE,))
    return [Row(family=r[0], kind=r[1], help=r[2], name=r[3], labels=r[4], value=r[5])
            for r in found]


def session_rows(store: Store) -> list[Row]:
    """Sessions by phase, and running sessions by agent state (every value, zeros too)."""
    found = store.rows("SELECT phase, agent_status, model_error FROM sessions")
    phases = dict.fromkeys((str(p) for p in Phase), 0)
    states = dict.fromkeys((str(s) for s in wire.AgentState), 0)
    for phase, status, model_error in found:
        phases[phase] = phases.get(phase, 0) + 1
        if phase == Phase.RUNNING:
            state = wire.agent_state(Phase(phase), AgentStatus(status), model_error)
            states[str(state)] += 1
    rows = [Row(family="clauderon_sessions", kind="gauge",
                help="Sessions by phase", name="clauderon_sessions",
                labels=json.dumps({"phase": p}), value=n) for p, n in phases.items()]
    rows += [Row(family="clauderon_running_sessions", kind="gauge",
                 help="Running sessions by what the UIs show as the agent's state "
                      "(model_failing: the proxy sees its model requests fail)",
                 name="clauderon_running_sessions", labels=json.dumps({"state": s}),
                 value=n) for s, n in states.items()]
    return rows


class _Rows(Collector):
    def __init__(self, rows: Iterable[Row]) -> None:
        self._rows = list(rows)

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for row in self._rows:
            family = families.get(row.family)
            if family is None:
                family = families[row.family] = Metric(row.family, row.help, row.kind)
            family.add_sample(row.name, json.loads(row.labels), row.value)
        yield from families.values()


def exposition(store: Store, live: CollectorRegistry) -> tuple[bytes, str]:
    """The text exposition of everything, and its content type."""
    rows = [*stored_rows(store), *session_rows(store), *snapshot(live).values()]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Rows(rows))
    return generate_latest(registry), CONTENT_TYPE_LATEST
