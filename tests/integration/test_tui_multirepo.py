"""The TUI's create dialog makes a multi-repo session (Textual's pilot, the real API and
reconciler, real git and Docker): a bad mount name shows under the "More" field naming its
line; the fixed lines create a three-repository session the detail pane lists."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from textual.widgets import Input, TextArea

from cli.tui.create import CreateScreen
from cli.tui.detail import detail_text
from cli.tui.tui_app import MainScreen
from tests.integration.tui_pilot import names, piloting, scenario, top, until
from tests.support.appliance import Appliance


def test_create_dialog_makes_a_multi_repo_session(
        appliance: Appliance, repo: Path, repo_factory: Callable[..., Path]) -> None:
    lib = repo_factory("lib", files={"lib.txt": "lib\n"})
    docs = repo_factory("docs", files={"index.md": "docs\n"})

    async def run() -> None:
        async with piloting(appliance, (100, 40)) as (app, pilot):
            await until(pilot, lambda: top(app, MainScreen), "the list")
            await pilot.press("n")
            dialog = await until(pilot, lambda: top(app, CreateScreen), "the dialog")
            dialog.query_one("#repo_path", Input).value = str(repo)
            dialog.query_one("#name", Input).value = "tri"
            more = dialog.query_one("#repos", TextArea)
            more.focus()
            await pilot.press(*f"{lib}:shared", "enter", *f"{docs}:.git")
            await pilot.press("ctrl+s")
            error = dialog.query_one("#error-repos")
            await until(pilot, lambda: error.has_class("shown"), "the repos error")
            assert "line 2:" in str(error.render()) and ".git" in str(error.render())
            assert app.focused is more
            assert appliance.client().get("/api/sessions")["sessions"] == []

            more.text = f"{lib}:shared\n\n{docs}@main\n"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: top(app, MainScreen), "the dialog to close")
            await until(pilot, lambda: "tri" in names(app), "the new row")

        s = appliance.wait_phase("tri", "running")
        assert [(e["mount"], e["repo_path"], e["base_ref"]) for e in s["extra_repos"]] == [
            ("shared", str(lib), "main"), ("docs", str(docs), "main")]
        text = detail_text(s, {}, datetime.now(UTC)).plain
        assert f"{lib} at /workspace/shared" in text and f"{docs} at /workspace/docs" in text

    scenario(run)
