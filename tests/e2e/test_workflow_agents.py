"""The daily workflow for real: a custom terminal agent (a shell script) in the real agent
image, in print mode and interactive with its status read from its screen; titles made by
the model through the real proxy, edited and made again; and the hostile agent's tries:
end a session that is not print-mode, borrow the appliance's own proxy identity."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import docker
import pytest

from appliance.placeholders import placeholder_env
from appliance.sessions import NAME_MAX
from appliance.tokens import APPLIANCE_ID, load_or_create_instance_key
from tests.e2e.agent_checks import exec_in, hooks, transcript, wait_hook
from tests.e2e.conftest import ANTHROPIC_CANARY, OPENAI_CANARY, agent_tier
from tests.support.appliance import Appliance, wait_for
from tests.support.fake_models import FakeModels

#: A real terminal agent: a bash script (one line: config.toml arguments are one line).
#: ``--once`` answers and exits (its print mode); otherwise it "thinks", asks for approval
#: and waits for a person.
AGENT = (
    'if [ "$1" = --once ]; then shift; '
    "printf 'ANSWER[%s] uid=%s host=%s\\n' \"$1\" \"$(id -u)\" \"$(cat /etc/hostname)\"; "
    "exit 0; fi; "
    "printf 'Thinking about: %s\\n' \"$1\"; sleep 4; "
    "printf 'Apply the change? (y/n) '; read -r reply; "
    "printf 'you said %s\\n' \"$reply\"; sleep 600")

CONFIG = f"""
[agents.custom.echoer]
command = ["bash", "-c", {json.dumps(AGENT)}, "echoer"]
prompt_args = ["{{prompt}}"]
print_args = ["--once"]
[agents.custom.echoer.status]
working = ["Thinking"]
waiting_approval = ["\\\\(y/n\\\\)"]
[titles]
model = "claude-haiku-fake"
"""


@pytest.fixture
def workflow(tmp_path: Path, agent_image: str, fake: FakeModels) -> Iterator[Appliance]:
    with agent_tier(tmp_path / "home", agent_image, fake, config=CONFIG) as app:
        yield app


def titled(app: Appliance, repo: Path, prompt: str) -> dict[str, Any]:
    """A session made over HTTP from ``prompt`` alone: the model names and titles it."""
    r = app.http().post("/api/sessions", json={"repo_path": str(repo), "prompt": prompt})
    assert r.status_code == 202, r.text
    made: dict[str, Any] = r.json()["session"]
    return made


def test_a_custom_agent_answers_once_and_the_session_completes(
    workflow: Appliance, repo: Path
) -> None:
    hostile = 'what is 6*7? $(touch /tmp/pwned) `id` "quoted" ; echo injected'
    out = workflow.cli("create", "--repo", str(repo), "--name", "once", "--agent", "custom",
                       "--custom-agent", "echoer", "--print", "--prompt", hostile)
    assert "once" in out.stdout
    s = workflow.wait_phase("once", "completed", timeout=120)
    assert s["print_mode"] and s["desired"] == "completed" and s["custom_agent"] == "echoer"
    assert s["actions"] == [a for a in s["actions"] if a in ("archive", "delete",
                                                               "access-mode", "edit",
                                                               "retitle", "push")]
    [said] = [m["text"] for m in transcript(workflow, s["id"])["messages"]
              if m["kind"] == "assistant"]
    # The prompt reached the agent as one argument, unexpanded: nothing in it ran.
    assert said.startswith(f"ANSWER[{hostile}] uid=1000 host=")
    assert said.split("host=")[1] != socket.gethostname()  # it ran in the container
    assert ("Completed", "idle") in hooks(workflow, s["id"])
    # A completed session keeps no compute, and nothing makes it run again.
    with closing(docker.from_env()) as client:
        assert client.containers.get(s["backend_id"]).status == "exited"
    refused = workflow.cli("start", "once", check=False)
    assert refused.returncode != 0 and "completed" in refused.stderr
    # Listed under its own filter only.
    listed = workflow.client().get("/api/sessions", filter="completed")["sessions"]
    assert [x["name"] for x in listed] == ["once"]
    assert not workflow.client().get("/api/sessions", filter="active")["sessions"]


def test_a_custom_agent_runs_interactively_and_cannot_end_itself(
    workflow: Appliance, repo: Path
) -> None:
    workflow.cli("create", "--repo", str(repo), "--name", "chat", "--agent", "custom",
                 "--custom-agent", "echoer", "--prompt", "tidy the readme")
    s = workflow.wait_phase("chat", "running", timeout=120)
    # The watcher reads the screen: working, then asking for approval.
    seen = wait_hook(workflow, s["id"], "PermissionRequest", timeout=60)
    assert ("PreToolUse", "working") in seen
    assert workflow.session("chat")["agent_status"] == "waiting_approval"

    # The hostile agent says it is done, through the very script a print session uses.
    done = exec_in(s["backend_id"], ["bash", "-c",
                   "printf '%s' '{\"hook_event_name\":\"Completed\"}' | "
                   "bash /etc/clauderon/hooks/send_status.sh"])
    assert done.exit_code == 0, done.stderr
    wait_hook(workflow, s["id"], "Completed", timeout=30)
    after = workflow.session("chat")
    assert after["desired"] == "running" and after["phase"] == "running"

    # It borrows the appliance's own proxy identity with its own token: refused.
    probe = (
        'own="${HTTPS_PROXY#http://*:}"; '
        f'curl -s -o /dev/null -w "%{{http_connect}}" -x "http://{APPLIANCE_ID}:$own" '
        "https://api.anthropic.com/v1/messages -d '{}'")
    borrowed = exec_in(s["backend_id"], ["bash", "-c", probe])
    assert borrowed.stdout.decode().strip() == "407", borrowed
    # Positive control: the same request under its own name goes through the proxy.
    mine = exec_in(s["backend_id"], ["bash", "-c", 'curl -s -o /dev/null -w "%{http_connect}" '
                                     "https://api.anthropic.com/v1/messages -d '{}'"])
    assert mine.stdout.decode().strip() == "200", mine


def test_titles_come_from_the_model_through_the_proxy(
    workflow: Appliance, fake: FakeModels, repo: Path
) -> None:
    http = workflow.http()
    s = titled(workflow, repo, "The login test fails now and then")
    assert s["title"] == "Fix the flaky login test"
    assert s["description"].startswith("Find why the login test fails")
    assert re.fullmatch(r"fix-flaky-login-[0-9a-f]{4}", s["name"])
    assert s["branch"] == f"clauderon/{s['name']}"
    [call] = fake.title_requests()
    # The real credential was put in by the proxy, on the way to the model only.
    assert call.headers["x-api-key"] == ANTHROPIC_CANARY
    assert ANTHROPIC_CANARY not in call.body.decode()
    key = load_or_create_instance_key(workflow.settings.instance_secret_path)
    own = placeholder_env(key, APPLIANCE_ID)["ANTHROPIC_API_KEY"]
    assert own not in str([x.headers for x in fake.seen])
    # Audited under its own name (the session's agent may be making its own calls by now).
    assert [(x["host"], x["decision"], x["credential"])
            for x in workflow.audit(lambda x: x["session"] == APPLIANCE_ID)] == [
        ("api.anthropic.com", "injected", "anthropic_api_key")]

    # Regenerate on demand; edit by hand (cleaned: one line, no control characters).
    fake.title = json.dumps({"title": "Make the login test reliable", "description": "d",
                             "name": "reliable-login"})
    again = http.post(f"/api/sessions/{s['id']}/retitle")
    assert again.status_code == 200, again.text
    assert again.json()["session"]["title"] == "Make the login test reliable"
    assert again.json()["session"]["name"] == s["name"]  # the branch never moves
    edited = http.patch(f"/api/sessions/{s['id']}",
                        json={"title": "Mine\n\x1b[2J\u202eyes", "description": "why"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["session"]["title"] == "Mine [2Jyes"
    bad = http.patch(f"/api/sessions/{s['id']}", json={"branch": "main"})
    assert bad.status_code == 400
    assert http.patch(f"/api/sessions/{s['id']}", json={"title": 5}).status_code == 400
    assert workflow.session(s["id"])["branch"] == s["branch"]


@pytest.mark.parametrize("answer", [
    {"title": "x\ny", "name": "../../refs/heads/main"},
    {"title": "t", "name": "-x --upload-pack=touch /tmp/p"},
    {"title": "t", "name": "main"},
])
def test_a_title_answer_cannot_choose_the_branch(
    workflow: Appliance, fake: FakeModels, repo: Path, answer: dict[str, str]
) -> None:
    fake.title = json.dumps(answer)
    s = titled(workflow, repo, "anything at all")
    assert re.fullmatch(r"[a-z0-9-]+-[0-9a-f]{4}", s["name"]) and len(s["name"]) <= NAME_MAX
    assert s["branch"] == f"clauderon/{s['name']}"
    assert "\n" not in s["title"]


def test_without_a_usable_answer_the_prompt_names_the_session(
    workflow: Appliance, fake: FakeModels, repo: Path
) -> None:
    fake.title = "I would rather not"
    s = titled(workflow, repo, "Speed up the build\nplease")
    assert s["title"] == "Speed up the build"
    assert s["name"].startswith("speed-up-the-build")
    assert len(fake.title_requests()) == 1
    refused = workflow.http().post(f"/api/sessions/{s['id']}/retitle")
    assert refused.status_code == 503 and "title" in refused.json()["error"]


def test_the_api_cannot_define_or_pick_an_undefined_agent(
    workflow: Appliance, repo: Path
) -> None:
    http = workflow.http()
    for body in ({"agent": "custom", "custom_agent": "echoer",
                  "command": ["sh", "-c", "touch /tmp/pwned"]},
                 {"agent": "custom", "custom_agent": "sh"},
                 {"agent": "custom", "custom_agent": "../../bin/sh"},
                 {"agent": "custom"}):
        r = http.post("/api/sessions", json={"repo_path": str(repo), **body})
        assert r.status_code == 400, (body, r.text)
    assert not workflow.client().get("/api/sessions", all="true")["sessions"]


def test_claude_print_mode_answers_once_into_the_transcript(
    workflow: Appliance, fake: FakeModels, repo: Path
) -> None:
    workflow.cli("create", "--repo", str(repo), "--name", "asked", "--print",
                 "--skip-permissions", "--prompt", "run the check and say what it printed")
    s = workflow.wait_phase("asked", "completed", timeout=180)
    messages = transcript(workflow, s["id"])["messages"]
    assert fake.answer in [m["text"] for m in messages if m["kind"] == "assistant"]
    assert (Path(s["worktree_path"]) / "tool-output.txt").read_text() == "tool-ran\n"
    assert all(c.headers.get("x-api-key") == ANTHROPIC_CANARY for c in fake.model_requests())
    assert ("Completed", "idle") in hooks(workflow, s["id"])


def test_claude_plan_mode_plans_and_runs_nothing(
    workflow: Appliance, fake: FakeModels, repo: Path
) -> None:
    workflow.cli("create", "--repo", str(repo), "--name", "planner", "--plan",
                 "--prompt", "run the check")
    s = workflow.wait_phase("planner", "running", timeout=120)
    assert s["plan_mode"]
    # The fake model asks for a shell command at once; plan mode is read-only: the agent
    # stops at it and asks a person, and the command does not run.
    def pane() -> str:
        return exec_in(s["backend_id"], ["tmux", "capture-pane", "-p", "-t", "agent"],
                       user="1000:1000").stdout.decode()

    wait_for(lambda: "Do you want to proceed" in pane(), timeout=90,
             what="the agent to ask before the command")
    # Claude says which permission mode it runs in to the model: plan.
    assert '"permission_mode":"plan"' in fake.model_requests()[-1].body.decode().replace(" ", "")
    assert not (Path(s["worktree_path"]) / "tool-output.txt").exists()
    managed = exec_in(s["backend_id"], ["cat", "/etc/claude-code/managed-settings.json"])
    assert json.loads(managed.stdout)["permissions"]["defaultMode"] == "plan"


def test_codex_print_mode_with_a_plan_first_prompt(
    workflow: Appliance, fake: FakeModels, repo: Path
) -> None:
    workflow.cli("create", "--repo", str(repo), "--name", "codex-once", "--agent", "codex",
                 "--print", "--plan", "--skip-permissions", "--prompt", "tidy the parser")
    s = workflow.wait_phase("codex-once", "completed", timeout=180)
    said = [m["text"] for m in transcript(workflow, s["id"])["messages"]
            if m["kind"] == "assistant"]
    assert fake.answer in said
    # Codex has no plan mode: the model was asked for a plan first, the task after it.
    first = fake.model_requests()[0].body.decode()
    assert "Plan first." in first and "tidy the parser" in first
    assert all(c.headers["authorization"] == f"Bearer {OPENAI_CANARY}"
               for c in fake.model_requests())
