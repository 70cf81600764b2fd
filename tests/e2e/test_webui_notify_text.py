"""What a desktop notification says, in real headless Chromium against the real API and engine.

A note tells the person a session waits for them, with its prompt as the note's text: the OS
draws it where no markup can mark anything. Tag letters (words spelled in them are drawn as
nothing), a word joiner, a soft hyphen, a right-to-left override: each reached the person's
desktop as it was, and a prompt of any length too. Each is now written as ``<U+XXXX>``, as
the CLI writes it, and the text is bounded. The page's ``showNotification`` (and the
``Notification`` constructor, should the page ever use it) keeps what it was asked to show
(:data:`~tests.e2e.test_webui_notify.KEEP_NOTES`); the real note is still shown.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.e2e.test_webui_hidden_chars import HIDDEN
from tests.e2e.test_webui_notify import notes, told
from tests.support.appliance import Appliance

pytestmark = pytest.mark.e2e

TAGGED = "".join(chr(0xE0000 + ord(c)) for c in "rm -rf")
#: A prompt with words in tag letters, a word joiner, a soft hyphen and an override, then
#: a long tail: what the person was asked to read on their desktop.
PROMPT = (f"Fix the login{TAGGED} bug\u2060 in auth\u00ad.py\u202eyp.nigol"
          + " and then keep going" * 40)
MAX = 200


def test_a_notification_marks_hidden_characters_and_is_bounded(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    # The agent, from inside its container with its own hook token, waits for the person.
    with told(browser, appliance, repo, "told", ["Stop"], prompt=PROMPT,
              last="waiting") as (page, s):
        [note] = notes(page)
        assert note["title"] == f"{s['name']} is waiting for you"
        body = note["body"]
        found = sorted({f"U+{ord(c):04X}" for c in HIDDEN.findall(body)})
        assert found == [], f"the notification shows {found} unmarked: {body!r}"
        tags = "".join(f"<U+{0xE0000 + ord(c):05X}>" for c in "rm -rf")
        assert body.startswith(f"Fix the login{tags} bug<U+2060> in auth<U+00AD>.py<U+202E>"
                               "yp.nigol and then"), body
        assert len(body) <= MAX and body.endswith("…"), body
