"""The web UI says the disk is full, on every page, and names the session that filled it
(headless Chromium against the real appliance on a real small disk; the hostile agent
fills it from its container as uid 1000, with bytes or with empty files). The person can
still sign in and read what is wrong; once space is freed the notice goes."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from appliance.audit import AUDIT_RESERVE_BYTES, room_at
from tests.e2e.webui_browser import PHONE, watched
from tests.integration.test_audit_share import FLOOD_HOST, answers
from tests.support.agent_app import create, in_container, through_fake_models
from tests.support.fake_models import FakeModels

#: How the hostile agent fills the disk: its bytes, or its files (empty ones, no bytes).
FILLS = {
    "bytes": ("small_disk", "dd if=/dev/zero of=fill bs=1M 2>&1",
              "The appliance's disk is full", "MiB"),
    "files": ("few_files_disk", 'mkdir fill && cd fill && i=0; while : > "$i" 2>/dev/null; '
              'do i=$((i+1)); done; echo "made $i: No space left on device"',
              "The appliance's disk has no room for more files", "files"),
}


@pytest.mark.parametrize("what", sorted(FILLS))
def test_the_web_ui_says_the_disk_is_full_and_who_filled_it(
        browser: Browser, request: pytest.FixtureRequest, what: str, agent_image: str,
        fake: FakeModels, repo: Path) -> None:
    disk_fixture, fill, headline, unit = FILLS[what]
    disk: Path = request.getfixturevalue(disk_fixture)
    with through_fake_models(disk / "home", agent_image, fake) as app:
        hog = create(app, repo, f"hog-{uuid.uuid4().hex[:6]}")
        with watched(browser, app, PHONE) as w:
            expect(w.page.get_by_test_id("session-card")).to_have_count(1)
            expect(w.page.get_by_test_id("disk-notice")).to_have_count(0)  # room: no notice

            _, out = in_container(app, hog, fill, ok=False)
            assert "No space left on device" in out, out
            # Nothing the person reads fails while the disk is full (the notice reads
            # /api/disk, a 200; health's 503 would be an error in every page's console).
            refused: list[str] = []
            w.page.on("response", lambda r: refused.append(r.url) if r.status >= 500 else None)
            w.page.reload()
            notice = w.page.get_by_test_id("disk-notice")
            expect(notice).to_contain_text(headline)
            expect(notice).to_contain_text("forwards nothing it cannot record")
            expect(notice.get_by_test_id("disk-user").first).to_contain_text(
                re.compile(rf"{hog['name']} \d+ {unit}"))
            w.shot(f"disk-full-{what}")
            # Every page says it: the session's own page too.
            w.page.goto(f"/s/{hog['name']}")
            expect(w.page.get_by_test_id("disk-notice")).to_be_visible()
            assert refused == [], refused
            fillings = app.settings.worktrees_dir / hog["name"] / "fill"
            if fillings.is_dir():
                shutil.rmtree(fillings)
            else:
                fillings.unlink()
            w.page.reload()
            expect(w.page.get_by_role("heading", name=hog["name"])).to_be_visible()
            expect(w.page.get_by_test_id("disk-notice")).to_have_count(0)
            assert w.errors == [], w.errors


def test_the_web_ui_names_the_session_whose_requests_audit_lines_filled_the_disk(
        browser: Browser, small_disk: Path, agent_image: str, fake: FakeModels,
        repo: Path) -> None:
    """A session with a tiny workspace sends refused requests until the audit log takes the
    disk below the reserve: the notice names it first, by its requests' audit lines."""
    with through_fake_models(small_disk / "home", agent_image, fake) as app:
        flooder = create(app, repo, f"flood-{uuid.uuid4().hex[:6]}")
        create(app, repo, f"calm-{uuid.uuid4().hex[:6]}")
        ballast = app.home / "ballast"  # the appliance's own: 2 MiB above the reserve
        with ballast.open("wb") as f:
            os.posix_fallocate(f.fileno(), 0,
                               room_at(small_disk).free_bytes - AUDIT_RESERVE_BYTES - (2 << 20))
        with watched(browser, app, PHONE) as w:
            expect(w.page.get_by_test_id("session-card")).to_have_count(2)
            expect(w.page.get_by_test_id("disk-notice")).to_have_count(0)
            assert answers(app, flooder, 2000, FLOOD_HOST) == {"403": 2000}
            assert room_at(small_disk).full
            w.page.reload()
            notice = w.page.get_by_test_id("disk-notice")
            expect(notice).to_contain_text("The appliance's disk is full")
            expect(notice.get_by_test_id("disk-user").first).to_contain_text(re.compile(
                rf"{flooder['name']} \d+ MiB \(\d+ MiB of its requests' audit lines\)"))
            w.shot("disk-full-audit")
            ballast.unlink()
            w.page.reload()
            expect(w.page.get_by_test_id("disk-notice")).to_have_count(0)
            assert w.errors == [], w.errors
