"""The web terminal reconnects, in real headless Chromium against the real API and engine.

A plain container of the base image (a shell in tmux, as in ``test_webui``). The console
WebSocket is dropped twice: closed from the page, then by restarting the API process under
it. Each time the terminal says so, connects again by itself, and the shell still echoes
what is typed. Console errors are allowed only while the API is down (the browser logs the
refused connections); none before or after.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.webui_browser import (
    console_sockets,
    terminal_lines,
    watched,
)
from tests.support.appliance import Appliance, wait_for

pytestmark = pytest.mark.e2e

OPEN, CLOSED = 1, 3


def echo(page: Page, word: str, n: int) -> None:
    """Type ``echo word-$((n+1))``: only the shell's output line reads ``word-<n+1>``."""
    page.locator(".xterm").click()
    page.keyboard.type(f"echo {word}-$(({n}+1))\n")
    wait_for(lambda: f"{word}-{n + 1}" in terminal_lines(page), timeout=30,
             what=f"{word}-{n + 1} echoed in the terminal")


def test_the_terminal_reconnects_and_still_echoes(browser: Browser, appliance: Appliance,
                                                  repo: Path) -> None:
    name = f"webui-term-{uuid.uuid4().hex[:8]}"
    appliance.client().post("/api/sessions", {"repo_path": str(repo), "name": name})
    appliance.wait_phase(name, "running")
    with watched(browser, appliance) as desk:
        page = desk.page
        state = page.get_by_test_id("term-state")
        page.goto(f"/s/{name}/terminal")
        expect(state).to_have_text("Connected")
        echo(page, "first", 41)

        # Closed from the page (a network blip): a new socket, the same shell.
        page.evaluate("window.__sockets.filter(s => s.url.includes('/ws/console/'))"
                      ".forEach(s => s.close())")
        wait_for(lambda: console_sockets(page) == [CLOSED, OPEN], timeout=30,
                 what="a second console socket, open")
        expect(state).to_have_text("Connected")
        echo(page, "second", 42)
        assert desk.errors == [], desk.errors

        # The API restarts under the page: "Reconnecting…" while it is away, then back.
        with desk.allowing("WebSocket connection to", "ERR_CONNECTION_REFUSED"):
            appliance.stop("api")
            expect(state).to_have_text("Reconnecting…")
            appliance.start("api")
            expect(state).to_have_text("Connected")
            wait_for(lambda: console_sockets(page)[-1] == OPEN, timeout=30,
                     what="the newest console socket, open")
        echo(page, "third", 43)
        assert "first-42" in terminal_lines(page)  # tmux kept the screen across both drops

        assert desk.errors == [], json.dumps(desk.errors, indent=1)
