"""Codex for real (interactive in tmux, and ``codex exec``) through the proxy to a fake
Responses API; and images that cannot run an agent, which fail the create by name and
leave nothing behind."""

from __future__ import annotations

from pathlib import Path

from appliance.placeholders import placeholder_env
from appliance.tokens import load_or_create_instance_key
from tests.e2e.agent_checks import exec_in, inspect_text, scan, wait_answer, wait_hook
from tests.e2e.conftest import OPENAI_CANARY
from tests.support.appliance import Appliance
from tests.support.engine import BASE_IMAGE
from tests.support.fake_models import FakeModels


def test_codex_prompt_answer_status_and_no_secret(
    agents: Appliance, fake: FakeModels, repo: Path
) -> None:
    agents.cli("create", "--repo", str(repo), "--name", "codex-e2e", "--agent", "codex",
               "--prompt", "say hello", "--skip-permissions")
    s = agents.session("codex-e2e")
    messages = wait_answer(agents, s["id"], fake.answer)
    assert {"kind": "user", "text": "say hello"} in [
        {"kind": m["kind"], "text": m["text"]} for m in messages]
    # codex's notify hook: the turn is over.
    assert wait_hook(agents, s["id"], "Stop")[-1] == ("Stop", "waiting_input")
    # Before it, the session was working: the daemon handed codex its prompt.
    events = agents.client().get(f"/api/sessions/{s['id']}/events")["events"]
    statuses = [e["payload"]["session"]["agent_status"] for e in events
                if "session" in e["payload"]]
    assert "working" in statuses
    assert statuses.index("working") < statuses.index("waiting_input")
    calls = fake.model_requests()
    assert calls and all(c.path == "/v1/responses" for c in calls)
    assert all(c.headers["authorization"] == f"Bearer {OPENAI_CANARY}" for c in calls)

    # `codex exec` in the same container takes the same way out.
    # Counted by its prompt: the interactive codex may still send its own title request.
    done = exec_in(s["backend_id"], ["codex", "exec", "--skip-git-repo-check", "say it again"])
    assert done.exit_code == 0, done.stderr
    assert fake.answer.encode() in done.stdout
    again = [c for c in fake.model_requests() if b"say it again" in c.body]
    assert len(again) == 1
    assert again[0].headers["authorization"] == f"Bearer {OPENAI_CANARY}"
    key = load_or_create_instance_key(agents.settings.instance_secret_path)
    assert placeholder_env(key, s["id"])["OPENAI_API_KEY"] not in str(
        [r.headers for r in fake.seen])

    assert scan(s["backend_id"], OPENAI_CANARY) == []
    assert scan(s["backend_id"], OPENAI_CANARY, user="0:0") == []
    assert OPENAI_CANARY not in inspect_text(s["backend_id"])


def test_an_image_without_the_agent_fails_by_name_and_leaves_nothing(
    agents: Appliance, repo: Path
) -> None:
    out = agents.cli("create", "--repo", str(repo), "--name", "bare", "--image", BASE_IMAGE,
                     "--prompt", "hi", check=False)
    assert out.returncode != 0
    s = agents.session("bare")
    assert s["phase"] == "failed"
    reason = s["status_reason"]
    assert "curl, tmux, claude not found" in reason and BASE_IMAGE in reason, reason
    assert agents.containers(s["id"]) == []
    assert not Path(s["worktree_path"]).exists()
    assert not (agents.settings.homes_dir / s["id"]).exists()
