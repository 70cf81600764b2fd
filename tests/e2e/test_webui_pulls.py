"""The daily workflow in the browser (Chromium): push and open a pull request, follow CI and
the review on the badge, merge (refused when the agent pushed after the person looked),
the session's health and a recreate with its warning, and a desktop notification through
the service worker when the session starts waiting for the person, and when its agent
exits.

The appliance is real (proxy, API, reconciler, containers of the agent image); GitHub is
:class:`~tests.support.fake_github.FakeGitHub` on loopback behind the proxy's ``[upstreams]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import user_git
from tests.e2e.test_webui_hidden_chars import HIDDEN
from tests.e2e.webui_browser import watched
from tests.support.agent_app import as_agent, behind_proxy
from tests.support.appliance import Appliance, wait_for
from tests.support.fake_github import TOKEN, FakeGitHub

SLUG = "octo/web"


@pytest.fixture
def app(tmp_path: Path, agent_image: str, github: FakeGitHub) -> Iterator[Appliance]:
    with behind_proxy(tmp_path / "home", agent_image, github.proxy_toml(),
                      config="[github]\nrefresh_seconds = 0\n", env={"GITHUB_TOKEN": TOKEN}) as a:
        yield a


def on_github(app: Appliance, github: FakeGitHub, repo: Path, name: str) -> dict[str, Any]:
    """Session ``name`` of ``repo``, running, its origin :data:`SLUG` on the fake GitHub."""
    user_git(repo, "remote", "add", "origin", f"https://github.com/{SLUG}.git")
    github.create_repo(SLUG, repo)
    app.cli("create", "--repo", str(repo), "--name", name, "--prompt", "do it")
    return app.wait_phase(name, "running")


def agent(app: Appliance, s: dict[str, Any], script: str) -> str:
    return as_agent(app, s, script).strip()


def test_push_merge_health_recreate_and_a_notification_in_the_browser(
        browser: Browser, app: Appliance, github: FakeGitHub, repo: Path) -> None:
    s = on_github(app, github, repo, "webflow")
    head = agent(app, s, "echo a > a.txt && git add a.txt && git commit -qm a && "
                         "git rev-parse HEAD").split()[-1]
    github.checks[head] = [{"id": 1, "name": "tests", "status": "in_progress",
                            "conclusion": None}]

    with watched(browser, app) as w:
        page = w.page
        w.context.grant_permissions(["notifications"], origin=app.base)
        page.goto("/s/webflow/info")
        page.get_by_test_id("notify").click()
        expect(page.get_by_test_id("notify")).to_have_attribute("aria-pressed", "true")

        # Push and open a pull request; CI runs; then passes and is approved.
        page.get_by_test_id("push-look").click()  # the commit a push sends, named first
        page.get_by_test_id("push-pr").click()
        badge = page.locator(".session-head").get_by_test_id("pull-badge")
        expect(badge).to_have_text("PR #1 …")
        expect(page.get_by_test_id("pull-checks")).to_contain_text("in progress")
        assert github.tip(SLUG, s["branch"]) == head
        github.checks[head][0].update(status="completed", conclusion="success")
        github.reviews[1] = [{"user": {"login": "r"}, "state": "APPROVED"}]
        page.get_by_test_id("pull-refresh").click()
        expect(badge).to_have_text("PR #1 ✓")
        expect(badge).to_have_attribute("data-tone", "good")
        expect(page.get_by_test_id("pull-summary")).to_contain_text("approved")

        # The agent pushes after the person looked: the merge of what was shown is refused.
        agent(app, s, "echo b > b.txt && git add b.txt && git commit -qm b && "
                      f"git push -q https://github.com/{SLUG}.git HEAD:refs/heads/{s['branch']}")
        page.get_by_test_id("merge").click()
        with w.allowing("409"):
            page.get_by_test_id("merge-confirm").click()
            expect(page.get_by_test_id("pull-error")).to_contain_text("since you looked")
        assert github.merges() == [] and github.pull(1)["state"] == "open"
        page.get_by_test_id("pull-refresh").click()
        page.get_by_test_id("merge").click()
        page.get_by_test_id("merge-confirm").click()
        expect(badge).to_have_text("PR #1 merged")
        assert github.pull(1)["merged"] and len(github.merges()) == 1
        page.goto("/")
        card = page.locator('[data-testid="session-card"][data-name="webflow"]')
        expect(card.get_by_test_id("pull-badge")).to_have_text("PR #1 merged")

        # Health, then a recreate: its warning first; the workspace is kept.
        page.goto("/s/webflow/info")
        page.get_by_test_id("health-check").click()
        expect(page.get_by_test_id("check-container")).to_have_attribute("data-verdict", "ok")
        expect(page.get_by_test_id("check-workspace")).to_have_attribute("data-verdict", "ok")
        old = app.session("webflow")["backend_id"]
        page.get_by_test_id("recover-recreate").click()
        expect(page.get_by_test_id("recover-warning")).to_contain_text(
            "The container is removed")
        page.get_by_test_id("recover-confirm").click()
        now = wait_for(lambda: (x := app.session("webflow"))["phase"] == "running"
                       and x["backend_id"] not in (None, old) and x, timeout=90,
                       what="the recreated container")
        assert agent(app, now, "cat a.txt b.txt") == "a\nb"

        # The session starts waiting for the person: a notification, through the worker.
        app.hook("webflow", "Stop")

        def titles() -> list[str]:
            found: list[str] = page.evaluate(
                "navigator.serviceWorker.ready.then(r => r.getNotifications())"
                ".then(ns => ns.map(n => n.title))")
            return found

        try:
            wait_for(lambda: "webflow is waiting for you" in titles(), what="the notification")
        except AssertionError as exc:
            status = app.session("webflow")["agent_status"]
            raise AssertionError(f"{exc} (the API says {status})\n{w.diagnosis()}") from None
        # Its agent exits: another notification, that says so.
        app.hook("webflow", "Exited")
        assert wait_for(lambda: "webflow's agent exited" in titles(),
                        what="the notification of the exit")
        w.shot("pulls")
        assert w.errors == []


def test_the_push_sends_the_commit_the_page_showed_not_the_agents_newer_one(
        browser: Browser, app: Appliance, github: FakeGitHub, repo: Path) -> None:
    """The agent commits after the page showed what a push sends: the push is refused,
    nothing reaches the remote, the page says why and shows the new commit to push."""
    s = on_github(app, github, repo, "pinned")
    seen = agent(app, s, "echo a > a.txt && git add a.txt && git commit -qm a && "
                         "git rev-parse HEAD").split()[-1]

    with watched(browser, app) as w:
        page = w.page
        page.goto("/s/pinned/info")
        expect(page.get_by_test_id("push")).to_have_count(0)  # nothing named, nothing sent
        page.get_by_test_id("push-look").click()
        push = page.get_by_test_id("push")
        expect(push).to_have_text(f"Push {seen[:7]} (1 file)")
        # Behind the person's back, after the page showed its push.
        later = agent(app, s, "echo secret > leak.txt && git add leak.txt && "
                              "git commit -qm leak && git rev-parse HEAD").split()[-1]
        with w.allowing("409"):
            push.click()
            expect(page.get_by_test_id("pull-error").or_(
                page.get_by_test_id("pull-summary"))).to_be_visible()
        assert github.tip(SLUG, s["branch"]) is None, \
            "the agent's commit made after the page showed the push went out"
        expect(page.get_by_test_id("pull-error")).to_contain_text(
            f"the agent committed since ({later[:7]})")
        assert seen != later
        # The page read the changes again: its push names the new commit, and sends it.
        expect(push).to_have_text(f"Push {later[:7]} (2 files)")
        expect(page.get_by_test_id("push-subject")).to_contain_text("leak")
        push.click()
        expect(page.get_by_test_id("pull-summary")).to_be_visible()
        expect(page.get_by_test_id("push-look")).to_be_visible()  # sent: looked at anew
        assert github.tip(SLUG, s["branch"]) == later
        assert w.errors == []


def test_the_push_button_says_its_files_and_the_subject_only_as_the_agents_words(
        browser: Browser, app: Appliance, github: FakeGitHub, repo: Path) -> None:
    """The agent writes a subject that closes the quote the page put around it and says a
    count of its own (``tidy” (1 file)``) for a commit of three: the button that sends it
    names the commit and its three files, in the appliance's words only; the subject is
    shown beside, as the agent's."""
    app.cli("create", "--repo", str(repo), "--name", "quoted", "--prompt", "do it")
    s = app.wait_phase("quoted", "running")
    said = "tidy\u201d (1 file)"
    tip = agent(app, s, "for f in a b c; do echo $f > $f.txt; done && git add . && "
                        f"git commit -qm '{said}' && git rev-parse HEAD").split()[-1]
    with watched(browser, app) as w:
        page = w.page
        page.goto("/s/quoted/info")
        page.get_by_test_id("push-look").click()
        push = page.get_by_test_id("push")
        expect(push).to_be_enabled()
        label = push.inner_text()
        assert label == f"Push {tip[:7]} (3 files)", \
            f"the push button speaks the agent's words as its own: {label!r}"
        expect(page.get_by_test_id("push-subject")).to_contain_text(said)
        assert w.errors == []


def test_the_pull_requests_title_and_its_checks_names_show_hidden_characters(
        browser: Browser, app: Appliance, github: FakeGitHub, repo: Path) -> None:
    """The pull request's title is the agent's commit subject, and a check run's name is a
    job's name in a workflow file the agent wrote: both are its words, read back from
    GitHub. A bidi override in the subject (``approve<RLO>evil``) reorders what the Info
    tab draws, a zero-width joiner hides in a name: each is drawn as a marked ``U+XXXX``,
    as the commit's subject is beside the push button; the title is written on GitHub with
    each one named (``<U+202E>``)."""
    s = on_github(app, github, repo, "marked")
    said = "Fix the ad\u200dmin check \u202eredirect"
    head = agent(app, s, "echo a > a.txt && git add a.txt && "
                         f"git commit -qm '{said}' && git rev-parse HEAD"
                 ).split()[-1]
    # GitHub names a check run after the job the agent's workflow file names.
    github.checks[head] = [{"id": 1, "name": "lint\u2066 \u2069tests", "status": "in_progress",
                            "conclusion": None}]
    with watched(browser, app) as w:
        page = w.page
        page.goto("/s/marked/info")
        page.get_by_test_id("push-look").click()
        page.get_by_test_id("push-pr").click()
        expect(page.get_by_test_id("pull-checks")).to_contain_text("in progress")
        # The title the appliance wrote on GitHub names them (nothing marks them there).
        titled = "Fix the ad<U+200D>min check <U+202E>redirect"
        assert github.pull(1)["title"] == titled
        panel = page.get_by_test_id("pull-panel")
        expect(panel).to_contain_text(titled)
        expect(panel).to_contain_text("lintU+2066 U+2069tests")
        text: str = panel.evaluate("e => e.innerText")
        found = sorted({f"U+{ord(c):04X}" for c in HIDDEN.findall(text)})
        assert found == [], f"the pull request panel draws {found} unmarked: {text!r}"
        assert w.errors == []
