"""The TUI's backend choice, driven by Textual's pilot against the real services with the
Kubernetes backend on the FAKE API server (the one test double: no real API server can run
here; see tests/fakes/kube_api.py), whose pods are containers on the real Docker engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input, Select

from cli.tui.create import CreateScreen
from cli.tui.tui_app import MainScreen
from tests.integration.tui_pilot import (
    names,
    piloting,
    scenario,
    screen_text,
    top,
    until,
)
from tests.support.engine import AGENT_IMAGE, ensure_agent_image
from tests.support.kube import Kube, kube_appliance

pytestmark = pytest.mark.docker


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[Kube]:
    ensure_agent_image()
    with kube_appliance(tmp_path, image=AGENT_IMAGE, agents=False) as k:
        yield k


def test_create_dialog_offers_the_backends_and_creates_on_kubernetes(kube: Kube,
                                                                      repo: Path) -> None:
    app_ = kube.app

    async def run() -> None:
        async with piloting(app_, (100, 30)) as (app, pilot):
            await pilot.press("n")
            dialog = await until(pilot, lambda: top(app, CreateScreen), "the dialog")
            row = dialog.query_one("#row-backend")
            await until(pilot, lambda: row.display, "the backend choice")
            choice = dialog.query_one("#backend", Select)
            assert choice.value == "docker"
            assert not dialog.query_one("#error-backend").has_class("shown")

            # A refusal that concerns the backend lands under it, and it gets the focus.
            dialog.query_one("#repo_path", Input).value = str(repo)
            dialog.query_one("#name", Input).value = "tnoremote"
            choice.value = "kubernetes"
            await pilot.press("ctrl+s")
            error = dialog.query_one("#error-backend")
            await until(pilot, lambda: error.has_class("shown"), "the backend error")
            assert "no https remote" in str(error.render())
            assert app.focused is choice

            dialog.query_one("#repo_path", Input).value = str(kube.repo)
            dialog.query_one("#name", Input).value = "ktui"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: top(app, MainScreen), "the dialog to close", timeout=180)
            await until(pilot, lambda: "ktui" in names(app), "the new row")
            await until(pilot, lambda: "kubernetes" in screen_text(app), "the backend column")

        s = app_.session("ktui")
        assert s["backend"] == "kubernetes" and s["phase"] == "running", s
        assert kube.names("pods") == ["clauderon-ktui"]

    scenario(run)
