"""The agent tier: the real agent image, the real CLIs, the real proxy, a fake model API.

The appliance runs as processes (API, reconciler, proxy) on a temporary home. The proxy's
``[upstreams]`` send ``api.anthropic.com`` and ``api.openai.com`` to
:class:`~tests.support.fake_models.FakeModels` on 127.0.0.1 (trusted through
``extra_ca_bundle``) and ``deny_unlisted`` refuses every other host, so nothing leaves
this machine. The real credentials are canaries in the proxy's environment only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import pytest

from tests.support.agent_app import behind_proxy
from tests.support.appliance import Appliance, wait_for
from tests.support.appliance_image import IMAGE, build_image
from tests.support.fake_models import FakeModels

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ANTHROPIC_CANARY = "sk-ant-api03-REAL-CANARY-e2e-0123456789abcdef"
OPENAI_CANARY = "sk-proj-REAL-OPENAI-CANARY-e2e-0123456789"


@pytest.fixture(scope="session")
def appliance_image(engine: docker.DockerClient) -> str:
    """clauderon-appliance:<version>, built by its script (every layer reused when nothing
    changed; the first build on a machine takes about a minute)."""
    build_image()
    return IMAGE


def proxy_toml(fake: FakeModels) -> str:
    return fake.proxy_toml("api.anthropic.com", "api.openai.com")


def agent_tier(home: Path, image: str, fake: FakeModels, *, more_hosts: tuple[str, ...] = (),
               config: str = "") -> AbstractContextManager[Appliance]:
    """The agent tier on ``home``: the agents' CLIs, the real credentials canaries, the
    model APIs (and ``more_hosts``) on ``fake``."""
    return behind_proxy(home, image, fake.proxy_toml("api.anthropic.com", "api.openai.com",
                                                     *more_hosts),
                        agents=True, config=config,
                        env={"ANTHROPIC_API_KEY": ANTHROPIC_CANARY,
                             "OPENAI_API_KEY": OPENAI_CANARY})


@pytest.fixture(scope="session", autouse=True)
def patient_expect() -> None:
    """Every ``expect`` waits as long as a page's own actions may (the context's timeout),
    not Playwright's five seconds: a machine busy with the rest of the suite draws a first
    page late. A bound on waiting, never a timing: what is expected still has to happen."""
    from playwright.sync_api import expect

    from tests.e2e.webui_browser import TIMEOUT_MS

    expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium under Playwright, one per module (the web UI's browser tests;
    imported here, not at the top: the benchmarks import this module without a browser)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.webui_browser import ARGS, CHROMIUM, ROOT

    assert (ROOT / "api/static/index.html").is_file(), (
        "the web UI is not built: npm ci --prefix api/web && npm run --prefix api/web build")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def agents(tmp_path: Path, agent_image: str, fake: FakeModels) -> Iterator[Appliance]:
    with agent_tier(tmp_path / "home", agent_image, fake) as app:
        yield app


@pytest.fixture
def victim(appliance: Appliance, repo: Path) -> Iterator[dict[str, Any]]:
    """A running session on ``appliance`` whose first sync is in (the hostile pages' target)."""
    name = f"victim-{uuid.uuid4().hex[:8]}"
    appliance.client().post("/api/sessions", {"repo_path": str(repo), "name": name})
    s = appliance.wait_phase(name, "running")
    # The reconciler's first sync of the branch journals an event of its own: once it is
    # in, every new event is one the hostile page made.
    wait_for(lambda: any(e["kind"] == "branch_synced" for e in appliance.client().get(
        f"/api/sessions/{s['id']}/events")["events"]), what="the session's first sync")
    yield s
