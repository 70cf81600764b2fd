"""A stop or a delete the cluster keeps failing is told where a person looks: the session's
``status_reason`` says which step fails and why, and an ``action_failed`` event carries it
(once per reason), not only a log line; once the cluster answers again the step is done.

The cluster is the fake Kubernetes API (``tests/fakes/kube_api.py``), told to answer every
pod delete with a 500 as a control plane with a slow etcd does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.appliance import wait_for
from tests.support.kube import Kube, kube_appliance


@pytest.fixture
def kube(tmp_path: Path, agent_image: str) -> Iterator[Kube]:
    with kube_appliance(tmp_path, image=agent_image, agents=False) as k:
        yield k


def _told(kube: Kube, sid: str, action: str) -> list[dict[str, Any]]:
    events = kube.app.client().get(f"/api/sessions/{sid}/events")["events"]
    return [e["payload"] for e in events
            if e["kind"] == "action_failed" and e["payload"].get("action") == action]


def _reason(kube: Kube, name: str) -> str:
    return kube.app.client().get(f"/api/sessions/{name}")["session"]["status_reason"] or ""


def test_a_stop_and_a_delete_the_cluster_fails_say_so_on_the_session(kube: Kube) -> None:
    app = kube.app
    s = kube.create("kfail")
    assert s["phase"] == "running", s
    refuse = kube.state / "refuse-delete"
    refuse.write_text("pods\n")

    app.client().post("/api/sessions/kfail/stop", {})
    wait_for(lambda: _reason(kube, "kfail").startswith("stopping failed: "), timeout=60,
             what="the failing stop named on the session")
    assert "500" in _reason(kube, "kfail") or "etcdserver" in _reason(kube, "kfail")
    told = wait_for(lambda: _told(kube, s["id"], "stopping"), what="the failing stop's event")
    assert "etcdserver" in told[0]["reason"], told

    app.client().delete("/api/sessions/kfail")
    wait_for(lambda: _reason(kube, "kfail").startswith("deleting failed: "), timeout=60,
             what="the failing delete named on the session")
    wait_for(lambda: _told(kube, s["id"], "deleting"), what="the failing delete's event")
    assert kube.names("pods") == ["clauderon-kfail"]  # the refusal did hold it

    refuse.unlink()
    wait_for(lambda: not app.client().get("/api/sessions", all="true")["sessions"],
             timeout=120, what="the session gone once the cluster deletes again")
    assert kube.names("pods") == []


def test_an_orphan_pod_the_cluster_will_not_delete_is_told_in_the_events(kube: Kube) -> None:
    """A pod whose session is gone from the database (a backup restored from before it) is
    an orphan; while the cluster fails its delete, the events say so, naming the pod."""
    from appliance.store import Store

    app = kube.app
    s = kube.create("kstray")
    assert s["phase"] == "running", s
    refuse = kube.state / "refuse-delete"
    refuse.write_text("pods\n")
    store = Store.open(app.settings.db_path)
    try:
        store.delete_session(s["id"])
        told = [json.loads(row[0]) for row in wait_for(lambda: store.rows(
            "SELECT payload FROM events WHERE kind = 'orphan_removal_failed'"), timeout=60,
            what="the failing removal of the orphan told in the events")]
    finally:
        store.close()
    assert told[0]["name"] == "clauderon-kstray" and "etcdserver" in told[0]["reason"], told
    assert kube.names("pods") == ["clauderon-kstray"]
    refuse.unlink()
    wait_for(lambda: kube.names("pods") == [], timeout=120,
             what="the orphan removed once the cluster deletes again")
