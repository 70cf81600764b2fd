"""An appliance whose proxy sends the model API to a fake on loopback, and commands run in
a session's container as the agent does (uid 1000): what the tests that play the agent
from inside its real container share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import docker.errors

from appliance.backends.docker_freeze import paused_refusal
from tests.conftest import AGENT_UID
from tests.support.appliance import Appliance, running, wait_for
from tests.support.fake_models import FakeModels


@contextmanager
def behind_proxy(home: Path, image: str, proxy_toml: str, **options: Any) -> Iterator[Appliance]:
    """Proxy, API and reconciler on ``home``, the proxy configured by ``proxy_toml`` (a
    fake's overrides); ``options`` go to :class:`Appliance`."""
    home.mkdir()
    (home / "proxy.toml").write_text(proxy_toml)
    with running(home, "proxy", image=image, **options) as app:
        wait_for(app.settings.ca_cert_path.exists, what="the proxy's CA")
        app.start("api", "reconciler")
        yield app


def through_fake_models(home: Path, image: str,
                        fake: FakeModels) -> AbstractContextManager[Appliance]:
    """Every host but the fake model API denied."""
    return behind_proxy(home, image, fake.proxy_toml())


def create(app: Appliance, repo: Path, name: str) -> dict[str, Any]:
    """A session on ``repo`` made through the CLI, once it runs."""
    app.cli("create", "--repo", str(repo), "--name", name, "--prompt", "p")
    return app.wait_phase(name, "running")


def in_container(app: Appliance, session: dict[str, Any], script: str,
                 *, ok: bool = True, workdir: str = "/workspace") -> tuple[int, str]:
    """``script`` in the session's container as the agent (uid 1000, in ``workdir``): its
    exit code and output (with ``ok``, the code must be 0). While a diff holds the container
    still the engine refuses a new exec; the agent it stands for would only be held up, so
    it waits for the hold to end."""
    [c] = app.containers(session["id"])

    def run() -> tuple[int, bytes] | None:
        try:
            # One pipe for both streams, so the output reads in the order it was written.
            done = c.exec_run(["bash", "-c", "exec 2>&1\n" + script],
                              user=f"{AGENT_UID}:{AGENT_UID}", workdir=workdir)
        except docker.errors.APIError as exc:
            if paused_refusal(exc):
                return None
            raise
        return done.exit_code, done.output

    code, out = wait_for(run, timeout=60, interval=0.05, what="the container to be let go")
    text: str = out.decode(errors="replace")
    if ok:
        assert code == 0, text
    return code, text


def as_agent(app: Appliance, session: dict[str, Any], script: str) -> str:
    """``script``'s output; it must succeed."""
    return in_container(app, session, script)[1]
