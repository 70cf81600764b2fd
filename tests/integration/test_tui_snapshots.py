"""Snapshots of the TUI's main screens at 80x24, rendered against the real services.

The screen is rendered to plain text and compared with ``snapshots/tui/<name>.txt``. What
differs between runs is pinned, not hidden: the clock is fixed ten minutes after the last
session was created, and the home and repository live in a ``/tmp/tui-XXXXXXXX`` folder
whose random part is masked with a string of the same length, so the layout is exactly
what a person sees (a session's id, in a container's name, is masked the same way). Set
``CLAUDERON_UPDATE_SNAPSHOTS=1`` to rewrite the files after an
intended change, and review the diff.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cli.tui.create import CreateScreen
from cli.tui.dialogs import ConfirmScreen, HelpScreen
from cli.tui.reconcile import ReconcileScreen
from tests.conftest import make_repo
from tests.integration.tui_pilot import (
    main,
    piloting,
    scenario,
    screen_text,
    top,
    until,
)
from tests.support.appliance import Appliance, running

SNAPSHOTS = Path(__file__).parent / "snapshots" / "tui"
UPDATE = os.environ.get("CLAUDERON_UPDATE_SNAPSHOTS") == "1"


@pytest.fixture
def world(engine: object) -> Iterator[tuple[Appliance, Path, str]]:
    root = tempfile.mkdtemp(prefix="tui-", dir="/tmp")
    os.chmod(root, 0o711)  # the repository's owner (uid 1000) must reach it, as on a machine
    try:
        with running(Path(root) / "home", "api", "reconciler") as appliance:
            repo = make_repo(Path(root) / "app")
            appliance.cli("create", "--repo", str(repo), "--name", "alpha", "--prompt",
                          "fix the flaky test in the parser")
            appliance.cli("create", "--repo", str(repo), "--name", "beta", "--agent", "codex",
                          "--access-mode", "read-only")
            appliance.cli("archive", "beta")
            appliance.cli("create", "--repo", str(repo), "--name", "greedy", "--cpu", "500",
                          check=False)
            yield appliance, repo, root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def masked(text: str, root: str) -> str:
    """Pin what differs between runs and machines (the temporary folder, the CPU count in
    the engine's refusal) without changing where anything else sits on screen."""
    text = text.replace(root, "/tmp/tui-" + "x" * (len(root) - len("/tmp/tui-")))
    # A session's id (a Docker container is named by it), whole or cut at the screen's
    # edge: one of the same length.
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{0,12}",
                  lambda m: "0000000a-0000-4000-8000-00000000000a"[:len(m[0])], text)
    lines = []
    for raw in text.splitlines():
        line = raw
        # The engine's refusal names the CPU range; where the screen wraps it varies, so
        # every x.yy number and CPU count is masked on every line.
        line = re.sub(r"\b\d+\.\d\d\b", "N.NN", line)
        line = re.sub(r"only \d+ CPUs", "only N CPUs", line)
        line = re.sub(r"^(\d+) CPUs", "N CPUs", line)
        if "N.NN" in line or "N CPUs" in line:
            line = re.sub(r" +█$", " █", line)
        lines.append(line)
    return "\n".join(lines)


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"no snapshot {path.name}; run with CLAUDERON_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(), f"{name} changed:\n{text}"


def test_main_screens(world: tuple[Appliance, Path, str]) -> None:
    appliance, _repo, root = world
    listed = appliance.client().get("/api/sessions", all="true")["sessions"]
    newest = max(datetime.fromisoformat(s["created_at"]) for s in listed)
    clock = newest + timedelta(minutes=10)

    async def run() -> None:
        async with piloting(appliance, showing=["alpha"], clock=lambda: clock) as (app, pilot):
            async def snap(name: str) -> None:
                await pilot.pause()
                check(name, masked(screen_text(app), root))

            alpha = appliance.session("alpha")["id"]
            await until(pilot, lambda: main(app).extras.get(alpha), "the detail")
            # The table sizes its columns to its rows after it draws them (on a busy machine
            # a frame or more later): the snapshot is of the settled screen.
            await until(pilot, lambda: "clauderon/alpha" in screen_text(app).splitlines()[2],
                        "the list's columns sized to its rows")
            await snap("main")

            await pilot.press("n")
            dialog = await until(pilot, lambda: top(app, CreateScreen), "the dialog")
            await until(pilot, lambda: dialog.recent, "recent repos")
            await snap("create")
            await pilot.press("escape")

            await pilot.press("question_mark")
            await until(pilot, lambda: top(app, HelpScreen), "help")
            await snap("help")
            await pilot.press("escape")

            await pilot.press("d")
            await until(pilot, lambda: top(app, ConfirmScreen), "the question")
            await snap("confirm")
            await pilot.press("n")

            await pilot.press("r")
            view = await until(pilot, lambda: top(app, ReconcileScreen), "reconcile")
            await until(pilot, lambda: view.failed, "the report")
            # Its table too sizes its columns to its rows a frame or more after drawing.
            await until(pilot, lambda: "failed   create container" in screen_text(app),
                        "the report's columns sized to its rows")
            await snap("reconcile")

    scenario(run)
