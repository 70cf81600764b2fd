"""A desktop notification is never lost to an answer that arrives before its event (Chromium).

The web UI tells the person when a session starts waiting for them by comparing each
session event with the session as it stood. An answer to the person's own action also
puts the session in the store (so the page shows it at once), and it may carry a change
the agent made meanwhile: the agent's hook moved the session while the person's request was
being answered. When that answer came before the hook's event, the event changed nothing
the store did not already hold, and no notification came (seen once as a flaky browser
test after a recreate). Here the page's event stream is held at the one event (Playwright
routes the page's WebSocket to the real API), the person saves the title, whose answer
carries the new status, and then the event goes on.

An agent flipping its status between working and waiting in a loop, from inside its
container, is told to the person once (each kind of note, once per session in a while).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Route, WebSocketRoute, expect

from tests.e2e.webui_browser import Watched, click_through, hook, watched
from tests.integration.test_agent_exited import own_hook
from tests.integration.test_tui import HOOK_LOOP
from tests.support.appliance import Appliance, wait_for

#: Keeps the title, text and tag of every note the page asks for (``window.__notes``; the
#: real one is still shown): a tag replaces the one before it on screen, so what is on
#: screen cannot tell a storm from one note.
KEEP_NOTES = """(() => {
  window.__notes = [];
  const keep = (title, options) => window.__notes.push(
    {title, body: (options || {}).body || "", tag: (options || {}).tag});
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


def made(appliance: Appliance, repo: Path, prefix: str, prompt: str = "p"
         ) -> tuple[dict[str, Any], Any]:
    """A running session made from the command line, and its container."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    appliance.cli("create", "--repo", str(repo), "--name", name, "--prompt", prompt)
    s = appliance.wait_phase(name, "running")
    [container] = appliance.containers(s["id"])
    return s, container


def agent_hooks(container: Any, *events: str) -> None:
    """The agent, from inside its container with its own hook token, posts ``events`` in a
    row; each is taken."""
    out = container.exec_run(["bash", "-c", "".join(own_hook(e) for e in events)],
                             user="1000:1000").output.decode()
    assert re.findall(r"HTTP/1.1 (\d+)", out) == ["204"] * len(events), out


def notify_on(w: Watched, appliance: Appliance, name: str) -> None:
    """Session ``name``'s page in ``w``, its notifications on (each kept: :data:`KEEP_NOTES`)."""
    w.context.grant_permissions(["notifications"], origin=appliance.base)
    w.page.add_init_script(KEEP_NOTES)
    w.page.goto(f"/s/{name}/info")
    # Its list read (what a note is judged against): a hook before it is no change.
    expect(w.page.get_by_test_id("session-page")).to_be_visible()
    w.page.get_by_test_id("notify").click()
    expect(w.page.get_by_test_id("notify")).to_have_attribute("aria-pressed", "true")


def notes(page: Page) -> list[dict[str, str]]:
    """The notes the page asked for, oldest first."""
    found: list[dict[str, str]] = page.evaluate("window.__notes")
    return found


def tags(page: Page) -> list[str]:
    return [n["tag"] for n in notes(page)]


def on_screen(page: Page) -> list[str]:
    """The titles of the notes on screen (once each show has settled)."""
    found: list[str] = page.evaluate(
        "navigator.serviceWorker.ready.then(r => r.getNotifications())"
        ".then(ns => ns.map(n => n.title))")
    return found


def test_a_notification_comes_though_an_answer_showed_the_change_first(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    s, _ = made(appliance, repo, "note")
    name = s["name"]
    held: list[str | bytes] = []
    holding = [True]
    routes: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        routes.append(ws)
        server = ws.connect_to_server()

        def down(message: str | bytes) -> None:
            text = message if isinstance(message, str) else message.decode()
            if holding[0] and '"waiting_input"' in text:
                held.append(message)  # the hook's event: held until the answer is in
            else:
                ws.send(message)

        server.on_message(down)
        ws.on_message(server.send)

    with watched(browser, appliance) as w:
        page = w.page
        w.context.grant_permissions(["notifications"], origin=appliance.base)
        page.route_web_socket("**/ws/events**", route)
        page.goto(f"/s/{name}/info")
        expect(page.get_by_test_id("session-page")).to_be_visible()  # its list read
        page.get_by_test_id("notify").click()
        expect(page.get_by_test_id("notify")).to_have_attribute("aria-pressed", "true")

        hook(appliance, s["id"], "Stop")  # the agent waits for the person now
        # The route's handlers run only while Playwright is called: wait through it.
        wait_for(lambda: page.wait_for_timeout(50) or held,
                 what="the hook's event to reach the page's stream")
        page.fill("#edit-title", "renamed while the agent stopped")
        click_through(w, page.get_by_test_id("save-title"),  # its answer: waiting_input, first
                      lambda r: r.method == "PATCH" and f"/api/sessions/{s['id']}" in r.url,
                      what="the rename's answer")
        expect(page.get_by_test_id("save-title")).to_be_disabled()  # the answer is in
        holding[0] = False
        assert all(json.loads(m)["type"] == "event" for m in held), held
        for message in held:
            routes[-1].send(message)
        wait_for(lambda: f"{name} is waiting for you" in on_screen(page), what="the notification")
        assert w.errors == []


def test_a_page_whose_first_list_failed_asks_again_and_hears_its_events(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """The session list is read once the event stream connects, and every event is held
    until it is: a page whose read failed (the appliance restarting, a network change) and
    that has no button to ask again (a page open on one session) must ask again itself, or
    it shows "Loading…" and hears nothing for as long as it stays open."""
    s, _ = made(appliance, repo, "list")
    name = s["name"]
    refused: list[str] = []

    def lists(route: Route) -> None:
        if not refused:
            refused.append(route.request.url)
            route.fulfill(status=503, json={"error": "the appliance is starting"})
        else:
            route.continue_()

    with watched(browser, appliance) as w:
        page = w.page
        w.context.grant_permissions(["notifications"], origin=appliance.base)
        page.route("**/api/sessions?all=true", lists)
        with w.allowing("503"):
            page.goto(f"/s/{name}/info")
            expect(page.get_by_test_id("session-page")).to_be_visible()
        assert len(refused) == 1
        page.get_by_test_id("notify").click()
        expect(page.get_by_test_id("notify")).to_have_attribute("aria-pressed", "true")
        hook(appliance, s["id"], "Stop")
        wait_for(lambda: f"{name} is waiting for you" in on_screen(page), what="the notification")
        assert w.errors == []


@contextmanager
def told(browser: Browser, appliance: Appliance, repo: Path, prefix: str,
         events: Sequence[str], *, prompt: str = "p", last: str = "exited"
         ) -> Iterator[tuple[Page, dict[str, Any]]]:
    """A running session whose page is open with notifications on; the agent posts
    ``events`` (:func:`agent_hooks`). Yields the page and the session once the note of
    kind ``last`` (the last event's) is asked for."""
    s, container = made(appliance, repo, prefix, prompt)
    with watched(browser, appliance) as w:
        notify_on(w, appliance, s["name"])
        agent_hooks(container, *events)
        # Events arrive in order: once the last is told, every event before it was judged.
        wait_for(lambda: f"{last}-{s['id']}" in tags(w.page), what=f"the {last} notification")
        yield w.page, s
        assert w.errors == []


def test_an_agent_flipping_its_status_in_a_loop_notifies_the_person_once(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """The agent, from inside its container with its own hook token, says it waits for the
    person and then that it works, ten times in a row (well inside its hook room), then
    that it exited: the person hears of the wait once, not ten times, and of the exit."""
    with told(browser, appliance, repo, "storm",
              [*("Stop", "PreToolUse") * 10, "Exited"]) as (page, s):
        assert tags(page) == [f"waiting-{s['id']}", f"exited-{s['id']}"]


def test_an_approval_asked_right_after_a_wait_is_told_and_replaces_no_note(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """The agent, from inside its container, says it waits for the person and a moment
    later that it needs an approval (and then waits again, and exits): each is its own kind
    of note, so the approval is told though a wait was told a moment before, under a tag of
    its own (a note with the same tag replaces the one on screen without a sound), and the
    wait after it is not told again so soon."""
    events = ("Stop", "PermissionRequest", "Stop", "Exited")
    with told(browser, appliance, repo, "ask", events) as (page, s):
        assert tags(page) == [f"waiting-{s['id']}", f"approval-{s['id']}", f"exited-{s['id']}"]
        name = s["name"]
        wait_for(lambda: {f"{name} needs your approval", f"{name} is waiting for you"}
                 <= set(on_screen(page)), what="the approval's and the wait's notes on screen")


def test_an_approval_asked_again_within_the_gap_is_told_when_it_ends(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """The agent, from inside its container, asks an approval (told), works (the person
    answered it from their phone), and asks another a moment later: within the gap the
    second is held, not told, and it used to be dropped, so the person never heard that the
    agent was stuck on them again. It is told when the gap ends, since the session still
    waits on it; a wait that is over by then (the agent went back to work) is not told.
    The page's clock is Playwright's, moved on by hand: no test waits out the gap."""
    s, container = made(appliance, repo, "again")
    approval, waiting = f"approval-{s['id']}", f"waiting-{s['id']}"
    with watched(browser, appliance) as w:
        page = w.page
        page.clock.install()
        notify_on(w, appliance, s["name"])
        badge = page.get_by_test_id("agent-status")

        def agent(event: str, shows: str) -> None:
            agent_hooks(container, event)
            expect(badge).to_have_text(shows)  # the page has judged it

        agent("PermissionRequest", "Needs approval")
        wait_for(lambda: tags(page) == [approval], what="the first approval's note")
        agent("PreToolUse", "Working")
        agent("PermissionRequest", "Needs approval")
        assert tags(page) == [approval]  # held: not told again within the gap
        page.clock.fast_forward(30_000)
        wait_for(lambda: tags(page) == [approval, approval],
                 what="the second approval, told when the gap ended")

        agent("PreToolUse", "Working")
        agent("PermissionRequest", "Needs approval")
        agent("PreToolUse", "Working")  # answered within the gap: nothing to tell
        page.clock.fast_forward(30_000)
        agent("Stop", "Waiting for you")
        wait_for(lambda: waiting in tags(page), what="the wait's note")
        assert tags(page) == [approval, approval, waiting]


@contextmanager
def _away(browser: Browser, appliance: Appliance, name: str
          ) -> Iterator[tuple[Watched, list[WebSocketRoute]]]:
    """The page of session ``name`` with notifications on, its clock Playwright's, and its
    event stream dropped (a phone asleep): it reconnects only when the test moves the clock
    on. Yields the watched page and the stream's connections."""
    routes: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        routes.append(ws)
        server = ws.connect_to_server()
        server.on_message(ws.send)
        ws.on_message(server.send)

    with watched(browser, appliance) as w:
        page = w.page
        page.clock.install()
        page.route_web_socket("**/ws/events**", route)
        notify_on(w, appliance, name)
        wait_for(lambda: page.wait_for_timeout(50) or routes, what="the event stream")
        routes[-1].close()
        # The close reaches the page; its retry waits on the clock.
        expect(page.get_by_test_id("link-state")).to_have_text("Reconnecting…")
        yield w, routes


def test_a_page_that_reconnects_tells_no_wait_that_is_already_over(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """The page's stream drops (a phone asleep); meanwhile the agent, from inside its
    container, says it waits, then works again, then exits. The page resumes with
    ``?after=`` and replays what it missed: each replayed event used to be judged as it
    arrived, so a wait already over popped "waiting for you". Notes are judged where each
    session ends up after the replay: the exit is told, the wait is not. The page's clock is
    Playwright's: it reconnects when the test moves it on."""
    s, container = made(appliance, repo, "resume")
    with _away(browser, appliance, s["name"]) as (w, routes):
        agent_hooks(container, "Stop", "PreToolUse", "Exited")
        w.page.clock.fast_forward(1_000)  # the page reconnects with ?after=
        wait_for(lambda: w.page.wait_for_timeout(50) or f"exited-{s['id']}" in tags(w.page),
                 what="the exit's notification")
        assert "after=" in routes[-1].url, routes[-1].url
        assert tags(w.page) == [f"exited-{s['id']}"]
        assert w.errors == []


def test_a_page_that_reconnects_tells_a_wait_of_a_session_made_while_it_was_away(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """The page's stream drops (a phone asleep); meanwhile the person makes a second session
    from the command line, and its agent, from inside its container, says it waits for
    them; the first one's agent exits. The page resumes with ``?after=`` and judges the
    replay where each session ends up, against where it stood before: the new session stood
    nowhere the page knew, so its wait was never told (only the exit was). A session the
    page first sees in a replay is judged as one that was just made."""
    s, container = made(appliance, repo, "away")
    with _away(browser, appliance, s["name"]) as (w, routes):
        second, other = made(appliance, repo, "made")
        agent_hooks(other, "Stop")
        agent_hooks(container, "Exited")
        w.page.clock.fast_forward(1_000)  # the page reconnects with ?after=

        # The exit is the replay's last event: once it is told, the replay was judged.
        wait_for(lambda: w.page.wait_for_timeout(50) or f"exited-{s['id']}" in tags(w.page),
                 what="the exit's notification")
        assert "after=" in routes[-1].url, routes[-1].url
        shown = tags(w.page)
        assert sorted(shown) == sorted([f"exited-{s['id']}", f"waiting-{second['id']}"]), shown
        assert w.errors == []


def test_a_flood_of_hooks_asks_the_info_tab_for_its_controls_once_a_while(
        browser: Browser, appliance: Appliance, repo: Path) -> None:
    """The agent, already working, posts its ``PreToolUse`` hook twenty times from its
    container (uid 1000, its own token): each moves only the session's ``updated_at``, and
    the Info tab's cost and egress card asked for the usage and the egress lists again at
    each. It asks at once, then at most once a second however many come (and every two
    seconds anyway); a real change is still shown."""
    s, container = made(appliance, repo, "flood")
    token = container.exec_run(["printenv", "CLAUDERON_HOOK_TOKEN"]).output.decode().strip()
    with watched(browser, appliance) as w:
        page = w.page
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/usage") else None)
        page.goto(f"/s/{s['name']}/info")
        expect(page.get_by_test_id("controls")).to_be_visible()
        badge = page.get_by_test_id("agent-status")
        agent_hooks(container, "PreToolUse")
        expect(badge).to_have_text("Working")
        asked.clear()
        began = time.monotonic()
        out = container.exec_run(["bash", "-c", HOOK_LOOP, "loop", s["id"], token, "20"],
                                 user="1000:1000").output.decode()
        assert out.split() == ["204"] * 20, out
        container.exec_run(["bash", "-c", own_hook("Stop")], user="1000:1000")
        expect(badge).to_have_text("Waiting for you")
        elapsed = time.monotonic() - began
        # Once a second and the two-second poll, over the flood's own length.
        assert len(asked) <= 2 + elapsed * 1.5, f"{len(asked)} usage reads in {elapsed:.1f} s"
