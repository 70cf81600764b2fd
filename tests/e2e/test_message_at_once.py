"""A message sent the moment a session is created is not lost: the API waits (bounded) for
the container to run and the agent to read its terminal, then types it. Real claude and
codex CLIs in the agent image, through the real proxy, to the fake model upstream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.conversation import READY_SECONDS
from cli.client import ApiClient
from tests.support.appliance import Appliance, wait_for
from tests.support.fake_models import FakeModels

TEXT = "this message was sent at once"


@pytest.mark.parametrize("agent", ["claude", "codex"])
def test_a_message_sent_right_after_create_reaches_the_model(
        agents: Appliance, fake: FakeModels, repo: Path, agent: str) -> None:
    client = agents.client()
    created = client.post("/api/sessions", {"repo_path": str(repo), "name": f"soon-{agent}",
                                            "agent": agent, "skip_permissions": True})
    sid = created["session"]["id"]
    assert created["session"]["phase"] == "creating"  # nothing is running yet
    # The API waits up to READY_SECONDS for the agent (the web UI's fetch waits as long):
    # a client that gives up sooner would be the one to fail on a busy machine.
    patient = ApiClient(agents.settings.socket_path, timeout=READY_SECONDS + 30)
    try:
        answer = patient.post(f"/api/sessions/{sid}/message", {"text": TEXT})
    finally:
        patient.close()
    assert answer == {"sent": True}
    assert agents.session(sid)["phase"] == "running"

    def reached() -> bool:
        return any(TEXT in json.dumps(seen.json()) for seen in fake.model_requests())

    wait_for(reached, timeout=120, what="the message to reach the model")

    def said() -> list[dict[str, object]] | None:
        messages = client.get(f"/api/sessions/{sid}/transcript")["messages"]
        return [m for m in messages if m["kind"] == "user"] or None

    # The agent's own record of it is the person's message (the appliance sent it).
    assert [(m["text"], m["from_person"]) for m in wait_for(
        said, timeout=120, what="the message in the transcript")] == [(TEXT, True)]


def test_a_message_to_a_session_that_will_not_run_is_refused_clearly(
        agents: Appliance, repo: Path) -> None:
    client = agents.client()
    created = client.post("/api/sessions", {"repo_path": str(repo), "name": "never",
                                            "image": "debian:bookworm-slim"})
    sid = created["session"]["id"]
    r = agents.http().post(f"/api/sessions/{sid}/message", json={"text": TEXT})
    # The image has no agent: the create fails, and the waiting message says why it stops.
    assert r.status_code == 409, r.text
    assert "never" in r.json()["error"]
