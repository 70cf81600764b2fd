"""An appliance whose proxy sends the model API to a fake on loopback, and commands run in
a session's container as the agent does (uid 1000): what the tests that play the agent
from inside its real container share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import AGENT_UID
from tests.support.appliance import Appliance, wait_for
from tests.support.fake_models import FakeModels


@contextmanager
def through_fake_models(home: Path, image: str, fake: FakeModels) -> Iterator[Appliance]:
    """Proxy, API and reconciler on ``home``; every host but the fake model API denied."""
    home.mkdir()
    (home / "proxy.toml").write_text(
        f'deny_unlisted = true\nextra_ca_bundle = "{fake.ca_path}"\n[upstreams]\n'
        f'"api.anthropic.com" = "{fake.url}"\n')
    app = Appliance(home, image=image)
    try:
        app.start("proxy")
        wait_for(app.settings.ca_cert_path.exists, what="the proxy's CA")
        app.start("api", "reconciler")
        yield app
    finally:
        app.cleanup()


def as_agent(app: Appliance, session: dict[str, Any], script: str) -> str:
    """``script`` in the session's container as the agent (uid 1000, in /workspace)."""
    [c] = app.containers(session["id"])
    code, out = c.exec_run(["bash", "-c", script], user=f"{AGENT_UID}:{AGENT_UID}",
                           workdir="/workspace")
    text: str = out.decode(errors="replace")
    assert code == 0, text
    return text
