"""The credentials doctor, for real: what `clauderon status` says, what create warns, and a
session whose model calls fail showing why in the CLI, the TUI and the web UI.

The appliance runs as processes (proxy, API, reconciler) with credentials from each source
the loader knows: the environment, a 1Password reference (``tests/fakes/op``, the real
``op read`` contract) and a file in ``secrets/``; none for Anthropic. The model hosts are
overridden: ``api.anthropic.com`` to the fake model API on loopback (told to refuse with a
401 or a 529), ``api.openai.com`` to a name that does not resolve. The agent's side is played
in a real container of the agent image as uid 1000: curl through the proxy, as the agent's
CLI calls its model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect
from textual.widgets import Select, Static

from appliance.credentials.model import SPECS
from cli.tui.create import CreateScreen
from cli.tui.tui_app import MainScreen
from tests.conftest import AGENT_UID
from tests.e2e.webui_browser import watched
from tests.integration.tui_pilot import (
    main,
    piloting,
    scenario,
    screen_text,
    top,
    until,
)
from tests.support.appliance import Appliance, wait_for
from tests.support.fake_models import FakeModels

FAKES = Path(__file__).resolve().parents[1] / "fakes"
UNRESOLVABLE = ".".join(["nonexistent" * 5] * 5) + ".invalid"
GITHUB_FROM_1PASSWORD = "ghp_FROM1PASSWORDCANARY0123456789abcdef"
OPENAI_FROM_FILE = "sk-proj-FROM-FILE-CANARY-0123456789abcdef"
NPM_FROM_ENV = "npm_FROMENVCANARY0123456789abcdef"
ANTHROPIC_VARS = {var for spec in SPECS if spec.name.startswith("anthropic")
                  for var in spec.env_vars}


@pytest.fixture
def doctor_app(tmp_path: Path, agent_image: str, fake: FakeModels) -> Iterator[Appliance]:
    home = tmp_path / "home"
    (home / "secrets").mkdir(parents=True, mode=0o700)
    secret = home / "secrets" / "openai_api_key"
    secret.write_text(OPENAI_FROM_FILE + "\n")
    secret.chmod(0o600)
    (home / "proxy.toml").write_text(
        fake.proxy_toml("api.anthropic.com")
        + f'"api.openai.com" = "https://{UNRESOLVABLE}:443"\n')
    vault = tmp_path / "vault.json"
    vault.write_text(json.dumps({"op://dev/github/token": GITHUB_FROM_1PASSWORD}))
    app = Appliance(home, image=agent_image, env={
        "GITHUB_TOKEN": "op://dev/github/token", "NPM_TOKEN": NPM_FROM_ENV,
        "OP_SERVICE_ACCOUNT_TOKEN": "ops_test_service_account", "FAKE_OP_DATA": str(vault)})
    app.env["PATH"] = f"{FAKES}:{app.env.get('PATH', '/usr/bin:/bin')}"
    for var in ANTHROPIC_VARS | {"OPENAI_API_KEY"}:
        app.env.pop(var, None)  # whatever this machine has: the test says what is set
    try:
        app.start("proxy")
        wait_for(app.settings.ca_cert_path.exists, what="the proxy's CA")
        app.start("api", "reconciler")
        wait_for(lambda: app.client().get("/api/credentials")["published"],
                 what="the proxy to publish its credentials")
        yield app
    finally:
        app.cleanup()


def row_of(text: str, first: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.split()[:1] == [first])


def test_status_lists_each_credential_with_its_source_masked_and_which_agents_can_work(
        doctor_app: Appliance, repo: Path) -> None:
    out = doctor_app.cli("status").stdout
    for value in (GITHUB_FROM_1PASSWORD, OPENAI_FROM_FILE, NPM_FROM_ENV):
        assert value not in out
        assert value[6:-4] not in out  # not even most of it
    github, openai, npm = (row_of(out, n) for n in ("github_token", "openai_api_key",
                                                     "npm_token"))
    assert github[1] == "1Password" and openai[1] == "file" and npm[1] == "environment"
    for found, value in ((github, GITHUB_FROM_1PASSWORD), (openai, OPENAI_FROM_FILE),
                         (npm, NPM_FROM_ENV)):
        assert found[2] == f"{value[:4]}…{value[-2:]}", found
    for spec in SPECS:  # every credential the appliance knows is listed, set or not
        assert row_of(out, spec.name)
    assert row_of(out, "anthropic_api_key")[1] == "-"
    claude = next(line for line in out.splitlines() if line.split()[:1] == ["claude"])
    codex = next(line for line in out.splitlines() if line.split()[:1] == ["codex"])
    assert "NOT READY" in claude and "ANTHROPIC_API_KEY" in claude
    assert "ready (model credential openai_api_key)" in codex

    # Over TCP the doctor is behind sign-in (a hostile page cannot read even masked values).
    anonymous = httpx.get(f"{doctor_app.base}/api/credentials", timeout=10)
    assert anonymous.status_code == 401 and "github_token" not in anonymous.text
    signed_in = doctor_app.http(scope="read-only").get("/api/credentials")
    assert signed_in.status_code == 200 and "github_token" in signed_in.text
    assert GITHUB_FROM_1PASSWORD not in signed_in.text

    doc = json.loads(doctor_app.cli("status", "--json").stdout)["credentials"]
    by_name = {c["name"]: c for c in doc["credentials"]}
    assert by_name["github_token"]["source"] == "1password"
    assert {a["agent"]: a["ready"] for a in doc["agents"]} == {"claude": False, "codex": True}

    # Create warns for the agent that cannot reach its model, and only for it.
    made = doctor_app.cli("create", "--repo", str(repo), "--name", "warned", "--prompt", "p",
                          "--no-wait")
    assert "warning: no model credential for claude" in made.stderr
    assert "ANTHROPIC_API_KEY" in made.stderr
    quiet = doctor_app.cli("create", "--repo", str(repo), "--name", "quiet", "--agent",
                           "codex", "--prompt", "p", "--no-wait")
    assert "warning" not in quiet.stderr


def model_call(app: Appliance, session: dict[str, Any], url: str) -> str:
    """The agent calls its model: curl in its container, through the proxy, as uid 1000."""
    [container] = app.containers(session["id"])
    _, out = container.exec_run(
        ["curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code}",
         "-X", "POST", "-H", "content-type: application/json", "-d", '{"model":"x"}', url],
        user=f"{AGENT_UID}:{AGENT_UID}")
    return str(out.decode(errors="replace"))


def failing_reason(app: Appliance, name: str, *words: str) -> str:
    def check() -> str | None:
        s = app.session(name)
        reason = s.get("model_error") or ""
        return reason if s["agent_state"] == "model_failing" and all(
            w in reason for w in words) else None

    return wait_for(check, what=f"{name}'s model failure {words}")


def test_failing_model_calls_show_as_the_status_with_the_reason_in_cli_tui_and_web(
        doctor_app: Appliance, repo: Path, fake: FakeModels, browser: Browser) -> None:
    app = doctor_app
    for name, agent in (("nokey", "claude"), ("overload", "claude"), ("nodns", "codex")):
        app.cli("create", "--repo", str(repo), "--name", name, "--agent", agent,
                "--prompt", "p")
    sessions = {n: app.wait_phase(n, "running") for n in ("nokey", "overload", "nodns")}
    app.hook("nokey", "UserPromptSubmit")
    assert app.session("nokey")["agent_state"] == "working"

    # No credential for Anthropic: the model API answers 401.
    fake.refuse = 401
    assert model_call(app, sessions["nokey"], "https://api.anthropic.com/v1/messages") == "401"
    nokey = failing_reason(app, "nokey", "answered 401", "no credential is configured")
    assert re.search(r"ANTHROPIC_(API_KEY|OAUTH_TOKEN)|CLAUDE_CODE_OAUTH_TOKEN", nokey)
    # The model host overloaded: 529.
    fake.refuse = 529
    assert model_call(app, sessions["overload"],
                      "https://api.anthropic.com/v1/messages") == "529"
    overload = failing_reason(app, "overload", "answered 529", "api.anthropic.com")
    # The model host's name does not resolve: the proxy answers 502 itself.
    assert model_call(app, sessions["nodns"], "https://api.openai.com/v1/responses") == "502"
    nodns = failing_reason(app, "nodns", "cannot reach api.openai.com", "does not resolve")
    for reason in (nokey, overload, nodns):
        assert OPENAI_FROM_FILE not in reason and "sk-" not in reason

    # --- CLI: the status column says model-failing, a line under the table says why.
    listed = app.cli("list").stdout
    for name, reason in (("nokey", nokey), ("overload", overload), ("nodns", nodns)):
        assert row_of(listed, name)[2] == "model-failing", listed
        assert f"! {name}: {reason}" in listed
    assert "working" not in row_of(listed, "nokey")
    shown = app.cli("show", "nokey").stdout
    assert re.search(r"agent-state\s+model_failing", shown)
    assert "model-error" in shown and nokey in shown

    # --- TUI: the row is flagged and says model-failing; the detail pane says why.
    async def tui() -> None:
        async with piloting(app, (120, 40)) as (tui_app, pilot):
            await until(pilot, lambda: any(
                line.split()[:3] == ["!", "nokey", "running"] and "model-failing" in line
                for line in screen_text(tui_app).splitlines()), "nokey flagged as failing")
            await pilot.press("slash", *"nokey", "enter")
            await until(pilot, lambda: "answered 401" in str(
                main(tui_app).query_one("#detail").render()), "the reason in the detail")
            detail = str(main(tui_app).query_one("#detail").render())
            assert "status    model_failing" in detail or "model-failing" in detail, detail
            assert "no credential is configured" in re.sub(r"\s+", " ", detail)
            await pilot.press("escape")
            # The create dialog warns for the agent without a model credential, only it.
            await pilot.press("n")
            dialog = await until(pilot, lambda: top(tui_app, CreateScreen), "the dialog")
            warning = dialog.query_one("#agent-warning", Static)
            await until(pilot, lambda: warning.has_class("shown"), "the agent warning")
            assert "no model credential for claude" in str(warning.render())
            dialog.query_one("#agent", Select).value = "codex"
            await until(pilot, lambda: not warning.has_class("shown"), "no warning for codex")
            await pilot.press("escape")
            await until(pilot, lambda: top(tui_app, MainScreen), "the list again")
            await pilot.press("q")

    # Playwright's sync API keeps an event loop in this thread: the TUI gets its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(scenario, tui).result(timeout=300)

    # --- web UI: the card's badge says "Model failing" and its reason is under it.
    with watched(browser, app) as desk:
        page = desk.page
        page.goto("/")
        for name, reason in (("nokey", nokey), ("overload", overload), ("nodns", nodns)):
            card = page.locator(f'[data-testid="session-card"][data-name="{name}"]')
            expect(card.get_by_test_id("agent-status")).to_have_text("Model failing")
            expect(card.get_by_test_id("model-error")).to_have_text(reason)
        desk.shot("model-failing")
        # The create form warns for the agent without a model credential, and only for it.
        page.goto("/new")
        expect(page.get_by_test_id("agent-warning")).to_contain_text(
            "no model credential for claude")
        page.select_option("#agent", "codex")
        expect(page.get_by_test_id("agent-warning")).to_have_count(0)
        page.goto("/")
        card = page.locator('[data-testid="session-card"][data-name="nokey"]')
        expect(card.get_by_test_id("agent-status")).to_have_text("Model failing")
        # It works again: the next good call clears it, live, everywhere.
        fake.refuse = None
        assert model_call(app, sessions["nokey"],
                          "https://api.anthropic.com/v1/messages") == "200"
        expect(card.get_by_test_id("agent-status")).to_have_text("Working")
        expect(card.get_by_test_id("model-error")).to_have_count(0)
        assert desk.errors == []
    assert app.session("nokey")["model_error"] is None
    assert row_of(app.cli("list").stdout, "nokey")[2] == "working"
