"""The real claude CLI in a Kubernetes session (pods on the FAKE API server, the one test
double: see tests/fakes/kube_api.py): booted through the exec API, it reaches the fake model
through the real proxy, its hooks reach the appliance from the pod, its transcript is read
from the session's volume; archived and unarchived, it runs again on the same volume."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import docker
import pytest

from tests.e2e.agent_checks import wait_answer, wait_hook
from tests.e2e.conftest import ANTHROPIC_CANARY
from tests.support.appliance import wait_for
from tests.support.fake_models import FakeModels
from tests.support.kube import Kube, kube_appliance


@pytest.fixture
def kube(tmp_path: Path, agent_image: str, fake: FakeModels) -> Iterator[Kube]:
    with kube_appliance(tmp_path, image=agent_image, agents=True,
                        proxy_lines=f'"api.anthropic.com" = "{fake.url}"\n',
                        ca_bundle=fake.ca_path.read_text(),
                        env={"ANTHROPIC_API_KEY": ANTHROPIC_CANARY}) as k:
        yield k


def test_claude_runs_in_a_pod_and_resumes_after_unarchive(kube: Kube, fake: FakeModels) -> None:
    app = kube.app
    s = kube.create("kagent", 180, prompt="say hello", skip_permissions=True)
    assert s["phase"] == "running", s
    wait_answer(app, "kagent", fake.answer)
    wait_hook(app, "kagent", "Stop")
    assert any(b"say hello" in r.body for r in fake.model_requests())
    # The model saw the placeholder, never the real key (the proxy swapped it).
    assert not any(ANTHROPIC_CANARY.encode() in r.body for r in fake.model_requests())

    app.client().post("/api/sessions/kagent/archive", {})
    app.wait_phase("kagent", "archived", timeout=60)
    assert kube.names("pods") == []
    app.client().post("/api/sessions/kagent/unarchive", {})
    app.wait_phase("kagent", "running", timeout=180)
    container = kube.container("clauderon-kagent")

    def agent_runs() -> bool:
        with closing(docker.from_env()) as c:
            done = c.containers.get(container).exec_run(["tmux", "has-session", "-t", "agent"])
        return done.exit_code == 0

    wait_for(agent_runs, timeout=60, what="the agent running again in the new pod")
    # The conversation is on the volume: the transcript still has the first answer.
    wait_answer(app, "kagent", fake.answer)
