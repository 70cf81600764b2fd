"""The web UI in real headless Chromium against the real API, reconciler and Docker engine.

Debian's ``chromium`` is driven by Playwright for Python (see ``webui_browser``). One
person's journey: the empty state, creating a session from the form and
watching it reach running, the status badge changing live when a hook arrives, ``echo hi``
in the terminal, a file and the diff, the access-mode switch, archive and delete; the same
pages at phone width. No console error is allowed anywhere. Each page is saved at desktop
and phone size (into ``docs/screenshots/``, which the README shows, with
``CLAUDERON_UPDATE_SNAPSHOTS=1``).

The appliance runs plain containers of the base image (no agent CLI), so the terminal is a
shell and the hook events are sent by the test with the session's real hook token.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from appliance.audit import AuditRecord, Decision, Phase
from tests.e2e.webui_browser import (
    PHONE,
    ROOT,
    TIMEOUT_MS,
    hook,
    no_horizontal_scroll,
    terminal_lines,
    watched,
)
from tests.support.appliance import Appliance, wait_for

pytestmark = pytest.mark.e2e
#: Container names are global on the engine: a name no other run uses.
NAME = f"webui-{uuid.uuid4().hex[:8]}"


def test_client_routes_exist_in_the_openapi_document(appliance: Appliance) -> None:
    out = subprocess.run(["node", str(ROOT / "api/web/scripts/check-api.mjs"),
                          f"http://127.0.0.1:{appliance.http_port}"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "CLAUDERON_TOKEN": appliance.token("read-only")})
    assert out.returncode == 0, out.stdout + out.stderr
    assert ", 0 missing" in out.stdout


def test_a_session_from_create_to_delete(browser: Browser, appliance: Appliance,
                                         repo: Path) -> None:
    base = appliance.base
    with watched(browser, appliance) as desk, watched(browser, appliance, PHONE) as phone:
        page = desk.page
        # --- a new user: the empty state, installable -----------------------------------
        page.goto("/")
        expect(page.get_by_test_id("empty")).to_contain_text("Run your first agent")
        expect(page.get_by_test_id("link-state")).to_have_text("Live")
        assert page.evaluate("navigator.serviceWorker.ready.then(r => !!r.active)")
        manifest = httpx.get(f"{base}/manifest.webmanifest").json()
        assert manifest["display"] == "standalone" and manifest["start_url"] == "/"
        for icon in manifest["icons"]:
            assert httpx.get(base + icon["src"]).status_code == 200, icon
        desk.shot("empty")
        phone.page.goto("/")
        expect(phone.page.get_by_test_id("empty")).to_be_visible()
        phone.shot("empty")

        # --- create from the form: validation as you type, then progress to running -----
        page.keyboard.press("n")  # the desktop shortcut
        expect(page).to_have_url(f"{base}/new")
        page.fill("#repo_path", str(repo / "nowhere"))
        expect(page.get_by_test_id("error-repo_path")).to_contain_text("does not exist")
        page.fill("#repo_path", str(repo / "src"))
        expect(page.get_by_test_id("repo-ok")).to_contain_text("main")
        page.fill("#name", "Bad Name")
        expect(page.get_by_test_id("error-name")).to_contain_text("Lowercase")
        expect(page.locator("#backend")).to_have_count(0)  # one backend: nothing to choose
        page.fill("#name", NAME)
        page.fill("#prompt", "Say hello.\n\nThen stop.")
        desk.shot("create")
        page.get_by_test_id("create-submit").click()
        expect(page.get_by_test_id("create-progress")).to_be_visible()
        expect(page).to_have_url(f"{base}/s/{NAME}", timeout=TIMEOUT_MS)
        expect(page.get_by_test_id("phase")).to_have_text("Running")
        session = appliance.session(NAME)
        assert session["initial_prompt"] == "Say hello.\n\nThen stop."
        sid = session["id"]

        # An API error lands beside its field: the name is taken now.
        page.goto("/new")
        page.fill("#repo_path", str(repo))
        page.fill("#name", NAME)
        desk.expected.append(409)  # Chromium logs the refused request; that one is expected
        page.get_by_test_id("create-submit").click()
        expect(page.get_by_test_id("error-name")).to_contain_text("already exists")
        phone.page.goto("/new")
        phone.page.fill("#repo_path", str(repo))
        expect(phone.page.get_by_test_id("repo-ok")).to_be_visible()
        phone.shot("create")
        no_horizontal_scroll(phone.page)

        # --- the list: live badges from hook events, filters, search ---------------------
        page.goto("/")
        card = page.locator(f'[data-testid="session-card"][data-name="{NAME}"]')
        expect(card.get_by_test_id("phase")).to_have_text("Running")
        expect(card.get_by_test_id("agent-status")).to_have_count(0)
        hook(appliance, sid, "PermissionRequest")
        expect(card.get_by_test_id("agent-status")).to_have_text("Needs approval")
        expect(page.get_by_test_id("filter-waiting")).to_contain_text("1")
        page.get_by_test_id("filter-waiting").click()
        expect(card).to_be_visible()
        page.get_by_test_id("filter-active").click()
        page.get_by_test_id("search").fill("nothing-like-this")
        expect(card).to_have_count(0)
        page.get_by_test_id("search").fill(NAME)
        expect(card).to_be_visible()
        desk.shot("list")
        hook(appliance, sid, "Stop")
        expect(card.get_by_test_id("agent-status")).to_have_text("Waiting for you")
        phone.page.goto("/")
        expect(phone.page.locator(f'[data-testid="session-card"][data-name="{NAME}"]')
               .get_by_test_id("agent-status")).to_have_text("Waiting for you")
        phone.shot("list")
        no_horizontal_scroll(phone.page)
        page.get_by_test_id("theme").click()  # system -> light -> dark
        page.get_by_test_id("theme").click()
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        desk.shot("list-dark")
        page.get_by_test_id("theme").click()

        # --- the session page: chat, terminal, files, diff, info -------------------------
        card.click()
        expect(page).to_have_url(f"{base}/s/{NAME}")
        hook(appliance, sid, "PreToolUse")
        expect(page.get_by_test_id("session-page").get_by_test_id("agent-status")
               ).to_have_text("Working")

        page.keyboard.press("2")  # Terminal
        expect(page.get_by_test_id("term-state")).to_have_text("Connected")
        page.locator(".xterm").click()
        page.keyboard.type("echo hi\n")
        wait_for(lambda: "hi" in terminal_lines(page), timeout=30, what="hi in the terminal")
        desk.shot("terminal")

        wt = Path(session["worktree_path"])
        (wt / "README.md").write_text("hello\nworld\n")
        page.get_by_test_id("tab-files").click()
        page.locator('[data-path="src"]').click()
        page.locator('[data-path="src/app.py"]').click()
        expect(page.get_by_test_id("file-viewer")).to_contain_text("print('hi')")
        expect(page.get_by_test_id("file-viewer").locator(".hljs-built_in")).to_have_count(1)
        desk.shot("files")
        page.get_by_test_id("files-diff").click()
        expect(page.get_by_test_id("diff")).to_contain_text("+world")
        expect(page.get_by_test_id("diff").locator(".d-add")).not_to_have_count(0)
        desk.shot("diff")

        record = AuditRecord(ts="2025-01-01T12:00:00+00:00", id="a1", session=sid,
                             method="POST", host="api.github.com", path="/repos/x/y/pulls",
                             status=403, bytes_in=10, bytes_out=20, duration_ms=4.2,
                             credential=None, decision=Decision.BLOCKED)
        # A WebSocket the agent held open: its opening, then its end (one exchange).
        opened = AuditRecord(ts="2025-01-01T12:00:01+00:00", id="w1", session=sid,
                             method="GET", host="ws.example.test", path="/live", status=101,
                             bytes_in=0, bytes_out=0, duration_ms=2.0, credential=None,
                             decision=Decision.PASSED, phase=Phase.OPEN, stream="w1")
        ended = replace(opened, ts="2025-01-01T12:00:39+00:00", id="w2",
                        duration_ms=37_500.0, phase=Phase.END)
        appliance.settings.audit_path.write_text(
            record.to_json_line() + opened.to_json_line() + ended.to_json_line())
        page.get_by_test_id("tab-info").click()
        expect(page.get_by_test_id("audit")).to_contain_text("api.github.com/repos/x/y/pulls")
        # Newest first: the end, the opening, the request; none of them two alike.
        expect(page.get_by_test_id("audit").locator("tbody tr")).to_have_text(
            [re.compile(r"ws\.example\.test/live\s*ended 101 after 37\.5 s\s*passed"),
             re.compile(r"ws\.example\.test/live\s*open since \d.*passed"),
             re.compile(r"/repos/x/y/pulls\s*403\s*blocked")])
        expect(page.get_by_test_id("audit-outcome")).to_have_count(3)
        expect(page.get_by_test_id("access-mode")).to_have_attribute("data-mode", "read-write")
        page.get_by_test_id("access-read-only").click()
        expect(page.get_by_test_id("access-mode")).to_have_attribute("data-mode", "read-only")
        assert appliance.session(NAME)["access_mode"] == "read-only"
        desk.shot("info")

        for tab in ("chat", "terminal", "files", "info"):
            phone.page.goto(f"/s/{NAME}/{tab}")
            expect(phone.page.get_by_test_id("session-page")).to_be_visible()
            if tab == "terminal":
                expect(phone.page.get_by_test_id("term-state")).to_have_text("Connected")
            if tab == "files":
                phone.page.locator('[data-path="README.md"]').click()
                expect(phone.page.get_by_test_id("file-viewer")).to_contain_text("world")
            if tab == "info":
                expect(phone.page.get_by_test_id("access-mode")).to_have_attribute(
                    "data-mode", "read-only")  # the switch, live in the other browser
            if tab != "chat":  # the chat's pictures show a real agent (test_webui_chat)
                phone.shot(tab)
            no_horizontal_scroll(phone.page)
        phone.page.goto("/")

        # --- archive, then delete (each confirmed) ---------------------------------------
        page.get_by_test_id("archive").click()
        page.get_by_test_id("confirm-ok").click()
        expect(page.get_by_test_id("session-page").get_by_test_id("phase")).to_have_text(
            "Archived")
        page.get_by_test_id("delete").click()
        expect(page.get_by_test_id("confirm")).to_contain_text(f"Delete {NAME}?")
        page.get_by_test_id("confirm-ok").click()
        expect(page).to_have_url(f"{base}/")
        expect(page.get_by_test_id("empty")).to_be_visible()
        expect(phone.page.get_by_test_id("empty")).to_be_visible()  # live on the phone too
        assert appliance.http().get(f"/api/sessions/{NAME}").status_code == 404

        assert desk.expected == []
        assert desk.errors == [] and phone.errors == [], json.dumps(
            {"desktop": desk.errors, "phone": phone.errors}, indent=1)


def test_a_session_being_deleted_is_no_longer_read(browser: Browser, appliance: Appliance,
                                                    repo: Path) -> None:
    """While its delete runs, a session's page reads nothing of it (each tab polled or
    re-read on its events, and found it gone mid-delete: 404s). Held in ``deleting`` (the
    reconciler stopped), the page says so and every tab's content has gone; once the delete
    runs, the session leaves the page and no request failed."""
    name = f"gone-{uuid.uuid4().hex[:8]}"
    appliance.cli("create", "--repo", str(repo), "--name", name, "--no-wait")
    appliance.wait_phase(name, "running", timeout=120)
    with watched(browser, appliance) as desk:
        page = desk.page
        page.goto(f"/s/{name}/info")
        expect(page.get_by_test_id("access-mode")).to_be_visible()  # the tab reads the session
        appliance.stop("reconciler")
        appliance.cli("delete", "--force", "--no-wait", name)
        expect(page.get_by_test_id("deleting")).to_contain_text(f"{name} is being deleted")
        expect(page.get_by_test_id("access-mode")).to_have_count(0)
        appliance.start("reconciler")
        wait_for(lambda: appliance.http().get(f"/api/sessions/{name}").status_code == 404,
                 timeout=60, what="the delete")
        page.goto("/")
        expect(page.get_by_test_id("empty")).to_be_visible()
        assert desk.errors == [], desk.errors


def test_a_delete_that_keeps_the_workspace_says_where(browser: Browser, appliance: Appliance,
                                                      repo: Path) -> None:
    """The agent removed its ``.git`` (as uid 1000, in its container): a delete from the web
    UI cannot bring its work in, so the workspace is kept aside, and the list (empty now)
    says where and why until the person dismisses it."""
    name = f"keep-{uuid.uuid4().hex[:8]}"
    appliance.cli("create", "--repo", str(repo), "--name", name, "--no-wait")
    s = appliance.wait_phase(name, "running", timeout=120)
    [container] = appliance.containers(s["id"])
    done = container.exec_run(["sh", "-c", "echo draft > draft.txt && rm -rf .git"],
                              user="1000:1000", workdir="/workspace")
    assert done.exit_code == 0, done.output
    kept = appliance.settings.kept_dir / f"{name}-{s['id'][:8]}"
    with watched(browser, appliance) as desk:
        page = desk.page
        page.goto(f"/s/{name}/info")
        page.get_by_test_id("delete").click()
        page.get_by_test_id("confirm-ok").click()
        notice = page.get_by_test_id("kept-notice")
        expect(notice).to_contain_text(f"The workspace of {name} was kept at {kept}")
        expect(notice).to_contain_text("has no repository (.git)")
        expect(page.get_by_test_id("empty")).to_be_visible()
        assert (kept / "draft.txt").read_text() == "draft\n"
        notice.get_by_role("button", name="Dismiss").click()
        expect(page.get_by_test_id("kept-notice")).to_have_count(0)
        assert desk.errors == [], desk.errors
