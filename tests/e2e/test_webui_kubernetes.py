"""The web create form's backend choice, in real headless Chromium.

A session is created on the Kubernetes backend from the form: pods run on the FAKE API
server (the one test double: no real API server can run here; see tests/fakes/kube_api.py),
which runs each pod as a container on the real Docker engine, cloned through the real proxy
from a real git server over TLS; its files and changes are then read in the pod (no
``volume_root``). And an appliance whose cluster does not answer: the form
says so beside the backend field, before and after a create is tried.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import docker
import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import make_repo
from tests.e2e.webui_browser import TIMEOUT_MS, watched
from tests.support.appliance import running, wait_for
from tests.support.engine import free_port
from tests.support.kube import Kube, kube_appliance, write_kubeconfig

pytestmark = pytest.mark.e2e


@pytest.fixture
def kube(tmp_path: Path, agent_image: str) -> Iterator[Kube]:
    with kube_appliance(tmp_path, image=agent_image, agents=False, host_view=False) as k:
        yield k


def test_the_form_creates_a_session_on_kubernetes(browser: Browser, kube: Kube,
                                                  repo: Path) -> None:
    app = kube.app
    with watched(browser, app) as desk:
        page = desk.page
        page.goto("/new")
        choice = page.locator("#backend")
        expect(choice).to_have_value("docker")  # the default, with the choice offered
        assert choice.locator("option").all_inner_texts() == ["Docker", "Kubernetes"]
        expect(page.get_by_test_id("error-backend")).to_have_count(0)  # both answer

        # The cluster's refusal of a repository without a remote lands beside the field.
        page.fill("#repo_path", str(repo))
        expect(page.get_by_test_id("repo-ok")).to_be_visible()
        page.fill("#name", "knoremote")
        choice.select_option("kubernetes")
        desk.expected.append(400)
        page.get_by_test_id("create-submit").click()
        expect(page.get_by_test_id("error-backend")).to_contain_text("no https remote")
        expect(choice).to_be_focused()

        page.fill("#repo_path", str(kube.repo))
        page.fill("#name", "kform")
        page.get_by_test_id("create-submit").click()
        progress = page.get_by_test_id("create-progress")
        expect(progress.locator("[data-step=volume]")).to_be_visible()
        expect(page).to_have_url(f"{app.base}/s/kform", timeout=TIMEOUT_MS)
        expect(page.get_by_test_id("phase")).to_have_text("Running")
        s = app.session("kform")
        assert s["backend"] == "kubernetes" and s["backend_id"] == "clauderon-kform"
        assert kube.names("pods") == ["clauderon-kform"]

        # Files and changes, read inside the pod (this appliance does not see the volumes).
        with closing(docker.from_env()) as c:
            done = c.containers.get(kube.container("clauderon-kform")).exec_run(
                ["sh", "-c", "echo work > work.txt && git add work.txt && "
                             "git commit -qm 'agent work' && sleep 1"],
                user="1000:1000", workdir="/workspace")
        assert done.exit_code == 0, done.output
        wait_for(lambda: kube.git_log("refs/heads/clauderon/kform")[:1] == ["agent work"],
                 timeout=60, what="the agent's commit in the user's repository")
        page.get_by_test_id("tab-files").click()
        page.locator('[data-path="README.md"]').click()
        expect(page.get_by_test_id("file-viewer")).to_contain_text("hello from the remote")
        page.get_by_test_id("files-diff").click()
        expect(page.get_by_test_id("diff")).to_contain_text("+work")

        # The list and the session's page say where it runs.
        page.goto("/")
        card = page.locator('[data-testid="session-card"][data-name="kform"]')
        expect(card.get_by_test_id("session-backend")).to_have_text("kubernetes")
        assert not desk.errors, desk.errors


def test_a_cluster_that_does_not_answer_is_said_beside_the_field(
        browser: Browser, tmp_path: Path) -> None:
    """[kubernetes] names an API server nobody listens on: the health report says so, and
    the form shows it under the field when Kubernetes is picked, and a create's refusal there."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig.yaml",
                                  f"https://127.0.0.1:{free_port()}", "t",
                                  **{"insecure-skip-tls-verify": True})
    repo = make_repo(tmp_path / "repo")
    subprocess.run(["git", "-c", f"safe.directory={repo}", "-C", str(repo), "remote", "add",
                    "origin", "https://github.com/owner/repo.git"], check=True)
    with running(tmp_path / "home", "api", config=(
            f'[kubernetes]\nkubeconfig = "{kubeconfig}"\nnamespace = "sessions"\n'
            'proxy_address = "192.0.2.1"\n')) as app:
        health = app.http().get("/api/health").json()
        assert health["backends"]["kubernetes"]["reachable"] is False
        with watched(browser, app) as desk:
            page = desk.page
            page.goto("/new")  # the form reads the backends as a 200: no error in the console
            choice = page.locator("#backend")
            expect(choice).to_have_value("docker")
            expect(page.get_by_test_id("error-backend")).to_have_count(0)  # docker answers
            choice.select_option("kubernetes")
            expect(page.get_by_test_id("error-backend")).to_contain_text(
                "Kubernetes is not reachable")
            page.fill("#repo_path", str(repo))
            expect(page.get_by_test_id("repo-ok")).to_be_visible()
            desk.expected.append(503)
            page.get_by_test_id("create-submit").click()
            # The create's own answer (the cluster did not answer it either), in its place.
            expect(page.get_by_test_id("error-backend")).to_contain_text(
                "Kubernetes API not reachable", timeout=TIMEOUT_MS)
            expect(choice).to_be_focused()
            assert app.client().get("/api/sessions")["sessions"] == []
            assert not desk.errors, desk.errors
