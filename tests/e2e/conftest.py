"""The agent tier: the real agent image, the real CLIs, the real proxy, a fake model API.

The appliance runs as processes (API, reconciler, proxy) on a temporary home. The proxy's
``[upstreams]`` send ``api.anthropic.com`` and ``api.openai.com`` to
:class:`~tests.support.fake_models.FakeModels` on 127.0.0.1 (trusted through
``extra_ca_bundle``) and ``deny_unlisted`` refuses every other host, so nothing leaves
this machine. The real credentials are canaries in the proxy's environment only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.appliance import Appliance, wait_for
from tests.support.appliance_image import IMAGE, build_image
from tests.support.engine import AGENT_IMAGE, ensure_agent_image
from tests.support.fake_models import FakeModels

ANTHROPIC_CANARY = "sk-ant-api03-REAL-CANARY-e2e-0123456789abcdef"
OPENAI_CANARY = "sk-proj-REAL-OPENAI-CANARY-e2e-0123456789"


@pytest.fixture(scope="session")
def agent_image(engine: docker.DockerClient) -> str:
    ensure_agent_image()
    return AGENT_IMAGE


@pytest.fixture(scope="session")
def appliance_image(engine: docker.DockerClient) -> str:
    """clauderon-appliance:<version>, built by its script (every layer reused when nothing
    changed; the first build on a machine takes about a minute)."""
    build_image()
    return IMAGE


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeModels]:
    with FakeModels(tmp_path) as models:
        yield models


def proxy_toml(fake: FakeModels) -> str:
    return (
        "deny_unlisted = true\n"
        f'extra_ca_bundle = "{fake.ca_path}"\n'
        "[upstreams]\n"
        f'"api.anthropic.com" = "{fake.url}"\n'
        f'"api.openai.com" = "{fake.url}"\n'
    )


@pytest.fixture
def agents(tmp_path: Path, agent_image: str, fake: FakeModels) -> Iterator[Appliance]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "proxy.toml").write_text(proxy_toml(fake))
    app = Appliance(home, agents=True, image=agent_image,
                    env={"ANTHROPIC_API_KEY": ANTHROPIC_CANARY, "OPENAI_API_KEY": OPENAI_CANARY})
    try:
        app.start("proxy")
        wait_for(app.settings.ca_cert_path.exists, what="the proxy's CA")
        app.start("api", "reconciler")
        yield app
    finally:
        app.cleanup()
