"""An API server that accepts a call and never answers holds no one: the call fails at the
client's request limit, and the next call goes through.

Real: the Kubernetes backend, the official client and its TLS connection to the fake API
server (``tests.fakes.kube_api``, the one test double), which is told to hold every list of
pods unanswered. Nothing is timed: the call must come back while the server still holds it
(the server never answers it at all); the bound below only turns the bug's hang into a
failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from appliance.backends import kubernetes_client
from appliance.backends.kubernetes import KubernetesBackend
from appliance.config_kubernetes import KubeSettings
from appliance.errors import BackendUnavailable
from tests.support.appliance import wait_for
from tests.support.kube import NAMESPACE, write_kubeconfig

#: Only so the bug fails instead of hanging: far above the read limit the test sets.
HANG = 120


@pytest.fixture
def fake_api(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """The fake API server as its own process: (its state folder, a kubeconfig for it)."""
    state = tmp_path / "kube"
    with open(tmp_path / "kube-api.log", "ab") as log:
        fake = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.kube_api", str(state), "none"],
            stdout=log, stderr=log, cwd=Path(__file__).resolve().parents[2])
        try:
            ready = wait_for(lambda: (state / "ready.json").exists() and json.loads(
                (state / "ready.json").read_text()), what="the fake API server")
            yield state, write_kubeconfig(
                tmp_path / "kubeconfig.yaml", f"https://127.0.0.1:{ready['port']}",
                ready["token"], **{"certificate-authority": ready["ca"]})
        finally:
            fake.terminate()
            fake.wait(10)


async def test_a_list_the_server_never_answers_fails_and_the_next_goes_through(
        fake_api: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    state, kubeconfig = fake_api
    monkeypatch.setattr(kubernetes_client, "REQUEST_TIMEOUT", (5.0, 0.5))
    backend = KubernetesBackend(kube=KubeSettings(kubeconfig=str(kubeconfig),
                                                  namespace=NAMESPACE),
                                instance="stall", proxy_port=3128, hook_port=3031)
    assert await backend.list_workloads() == []  # the server answers at first
    (state / "stall-list").write_text("pods\n")
    failed: BackendUnavailable | None = None
    with trio.move_on_after(HANG):
        try:
            await backend.list_workloads()
        except BackendUnavailable as exc:
            failed = exc
    assert (state / "stalled-list").exists(), "the list never reached the server"
    assert failed is not None, "the list waited for a server that never answers"
    assert "timed out" in failed.message, failed.message
    # Sent once: a call the server took and held is not sent again to wait it out again.
    assert (state / "stalled-list").read_text().split() == ["pods"], \
        "the held list was sent again after its read limit"
    (state / "stall-list").unlink()
    assert await backend.list_workloads() == []  # the next pass goes through
