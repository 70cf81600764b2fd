"""What a desktop notification says, in real headless Chromium against the real API and engine.

A note tells the person a session waits for them, with its prompt as the note's text: the OS
draws it where no markup can mark anything. Tag letters (words spelled in them are drawn as
nothing), a word joiner, a soft hyphen, a right-to-left override: each reached the person's
desktop as it was, and a prompt of any length too. Each is now written as ``<U+XXXX>``, as
the CLI writes it, and the text is bounded. The page's ``showNotification`` (and the
``Notification`` constructor, should the page ever use it) is wrapped by an init script
that keeps what it was asked to show; the real note is still shown.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.test_webui_hidden_chars import HIDDEN
from tests.e2e.webui_browser import watched
from tests.integration.test_agent_exited import own_hook
from tests.support.appliance import Appliance, wait_for

pytestmark = pytest.mark.e2e

#: Keeps the title and text of every note the page asks for (``window.__notes``).
KEEP_NOTES = """(() => {
  window.__notes = [];
  const keep = (title, options) => window.__notes.push({title, body: (options || {}).body || ""});
  const show = ServiceWorkerRegistration.prototype.showNotification;
  ServiceWorkerRegistration.prototype.showNotification = function (title, options) {
    keep(title, options);
    return show.call(this, title, options);
  };
  if (window.Notification) {
    const Native = window.Notification;
    window.Notification = class extends Native {
      constructor(title, options) { keep(title, options); super(title, options); }
    };
  }
})()"""

TAGGED = "".join(chr(0xE0000 + ord(c)) for c in "rm -rf")
#: A prompt with words in tag letters, a word joiner, a soft hyphen and an override, then
#: a long tail: what the person was asked to read on their desktop.
PROMPT = (f"Fix the login{TAGGED} bug\u2060 in auth\u00ad.py\u202eyp.nigol"
          + " and then keep going" * 40)
MAX = 200


def test_a_notification_marks_hidden_characters_and_is_bounded(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    name = f"told-{uuid.uuid4().hex[:6]}"
    appliance.cli("create", "--repo", str(repo), "--name", name, "--prompt", PROMPT)
    s = appliance.wait_phase(name, "running")
    [container] = appliance.containers(s["id"])
    with watched(browser, appliance) as w:
        page = w.page
        w.context.grant_permissions(["notifications"], origin=appliance.base)
        page.add_init_script(KEEP_NOTES)
        page.goto(f"/s/{name}/info")
        # Its list read (what a note is judged against): a hook before it is no change.
        expect(page.get_by_test_id("session-page")).to_be_visible()
        page.get_by_test_id("notify").click()
        expect(page.get_by_test_id("notify")).to_have_attribute("aria-pressed", "true")
        # The agent, from inside its container with its own hook token, waits for the person.
        out = container.exec_run(["bash", "-c", own_hook("Stop")],
                                 user="1000:1000").output.decode()
        assert re.findall(r"HTTP/1.1 (\d+)", out) == ["204"], out

        def notes() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = page.evaluate("window.__notes")
            return found

        wait_for(notes, what="the wait's notification")
        [note] = notes()
        assert note["title"] == f"{name} is waiting for you"
        body: str = note["body"]
        found = sorted({f"U+{ord(c):04X}" for c in HIDDEN.findall(body)})
        assert found == [], f"the notification shows {found} unmarked: {body!r}"
        tags = "".join(f"<U+{0xE0000 + ord(c):05X}>" for c in "rm -rf")
        assert body.startswith(f"Fix the login{tags} bug<U+2060> in auth<U+00AD>.py<U+202E>"
                               "yp.nigol and then"), body
        assert len(body) <= MAX and body.endswith("…"), body
        assert w.errors == []
