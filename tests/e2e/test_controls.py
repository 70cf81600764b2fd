"""The proxy as the control point with the real agent CLIs: what each agent used is what the
fake model reported, exactly, and a spent budget stops the real claude CLI with the proxy's
429, which it shows, until the budget is raised (no restart); under a budget with room the
real codex CLI goes on, while a call the meter cannot read is refused.

The fake model API (tests/support/fake_models.py) reports a chosen usage in every answer;
the CLIs stream (SSE) every model call they make. Non-streamed answers of both APIs are
covered through the same proxy by ``tests/integration/proxy/test_proxy_controls.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cli import calls as api_calls
from tests.e2e.agent_checks import exec_in, wait_answer, wait_hook
from tests.support.appliance import Appliance, wait_for
from tests.support.fake_models import FakeModels

USAGE = {"input": 123, "output": 45, "cache_read": 6789, "cache_write": 10}


def recorded(agents: Appliance, sid: str, fake: FakeModels) -> dict[str, Any]:
    """The session's usage once every model call the fake answered is in it."""
    def check() -> dict[str, Any] | None:
        found: dict[str, Any] = agents.client().get(f"/api/sessions/{sid}/usage")
        total = found["total"]
        return found if total["requests"] == len(fake.model_requests()) else None

    return wait_for(check, timeout=30, what="the usage of every model call")


def claude_p(container: str, prompt: str) -> str:
    done = exec_in(container, ["claude", "-p", prompt, "--dangerously-skip-permissions"])
    return (done.stdout + done.stderr).decode(errors="replace")


def test_claude_usage_is_exact_and_a_spent_budget_stops_it_until_raised(
        agents: Appliance, fake: FakeModels, repo: Path) -> None:
    fake.usage = dict(USAGE)
    agents.cli("create", "--repo", str(repo), "--name", "claude-meter", "--prompt",
               "please run the command", "--skip-permissions")
    s = agents.session("claude-meter")
    wait_hook(agents, s["id"], "Stop")
    usage = recorded(agents, s["id"], fake)
    n = usage["total"]["requests"]
    assert n >= 2
    total = usage["total"]
    assert (total["input_tokens"], total["output_tokens"], total["cache_read_tokens"],
            total["cache_write_tokens"], total["unmetered"]) == (
        n * USAGE["input"], n * USAGE["output"], n * USAGE["cache_read"],
        n * USAGE["cache_write"], 0)
    assert [r["model"] for r in usage["rows"]] == ["claude-fake"]
    # A model without a price: counted in tokens, its cost unknown.
    assert total["cost"] is None and total["cost_complete"] is False

    # A budget already spent: the real CLI shows the proxy's answer.
    client = agents.client()
    client.run(api_calls.put(f"/api/sessions/{s['id']}/budget", {"tokens": 1}))
    calls = len(fake.model_requests())

    def refused() -> str | None:
        out = claude_p(s["backend_id"], "hello again")
        return out if "budget exceeded for session claude-meter" in out else None

    out = wait_for(refused, timeout=60, interval=0.5, what="claude to show the 429")
    assert "429" in out and "clauderon budget set claude-meter" in out
    assert fake.answer not in out
    assert len(fake.model_requests()) == calls or fake.answer not in out
    assert wait_for(lambda: agents.session("claude-meter")["budget_exceeded"],
                    what="the session to say why")

    # Raised from the API: the same container goes on, nothing restarted.
    client.run(api_calls.put(f"/api/sessions/{s['id']}/budget", {"tokens": 10**9}))
    out = wait_for(lambda: (o := claude_p(s["backend_id"], "hello again")) and
                   (o if fake.answer in o else None), timeout=60, interval=0.5,
                   what="claude to go on")
    assert "budget exceeded" not in out
    wait_for(lambda: agents.session("claude-meter")["budget_exceeded"] is None,
             what="the reason to clear")
    assert agents.session("claude-meter")["backend_id"] == s["backend_id"]


def test_codex_usage_is_exact(agents: Appliance, fake: FakeModels, repo: Path) -> None:
    fake.usage = dict(USAGE)
    agents.cli("create", "--repo", str(repo), "--name", "codex-meter", "--agent", "codex",
               "--prompt", "say hello", "--skip-permissions")
    s = agents.session("codex-meter")
    wait_answer(agents, s["id"], fake.answer)
    total = recorded(agents, s["id"], fake)["total"]
    n = total["requests"]
    assert n >= 1
    # OpenAI counts cached input inside its input tokens; the meter keeps them apart.
    assert (total["input_tokens"], total["output_tokens"], total["cache_read_tokens"],
            total["cache_write_tokens"], total["unmetered"]) == (
        n * USAGE["input"], n * USAGE["output"], n * USAGE["cache_read"], 0, 0)

    # Under a budget with room, everything the real CLI sends is metered or free: nothing
    # it needs is refused as a call the meter cannot read.
    agents.client().run(api_calls.put(f"/api/sessions/{s['id']}/budget", {"tokens": 10**9}))

    def refused() -> str | None:  # the budget is in force: what the meter cannot read stops
        done = exec_in(s["backend_id"], ["curl", "-sS", "-X", "POST", "-d", "{}",
                                         "https://api.openai.com/v1/images/generations"])
        out = (done.stdout + done.stderr).decode(errors="replace")
        return out if "cannot meter" in out else None

    wait_for(refused, timeout=30, interval=0.5, what="the budget to be in force")
    before = len(fake.model_requests())

    def answered() -> str | None:
        done = exec_in(s["backend_id"], ["codex", "exec", "--skip-git-repo-check",
                                         "--dangerously-bypass-approvals-and-sandbox", "--",
                                         "say hello again"])
        out = (done.stdout + done.stderr).decode(errors="replace")
        return out if fake.answer in out and len(fake.model_requests()) > before else None

    out = wait_for(answered, timeout=60, interval=0.5, what="codex to answer under a budget")
    assert "cannot meter" not in out and "budget exceeded" not in out
    total = recorded(agents, s["id"], fake)["total"]
    assert total["unmetered"] == 0
