"""Plan and print modes, Gemini and custom agents, titles: the pure rules."""

from __future__ import annotations

import json
import shlex
import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import titles, wire
from appliance.agents import custom, gemini_setup
from appliance.agents.boot import START_SCRIPT_PATH, boot_plan
from appliance.agents.hooks import HOOK_STATUS, MANAGED_SETTINGS_PATH, hook_changes
from appliance.agents.modes import PLAN_FIRST
from appliance.errors import ClauderonError, ConfigError, InvalidInput
from appliance.intake import parse_create
from appliance.placeholders import placeholder_env
from appliance.sessions import (
    NAME_MAX,
    Agent,
    AgentStatus,
    Desired,
    Phase,
    Session,
    SessionId,
    can_transition,
    validate_name,
)
from appliance.verbs import Verb, refusal

NOW = datetime(2026, 1, 1, tzinfo=UTC)
KEY = b"k" * 32


def session(**kw: Any) -> Session:
    base: dict[str, Any] = dict(
        id=SessionId("0b8f6a7e-0000-4000-8000-000000000001"), name="flaky",
        repo_path="/src/app", worktree_path="/w/flaky", branch="clauderon/flaky",
        base_ref="main", image="img", created_at=NOW, updated_at=NOW,
        initial_prompt="fix the login test")
    base.update(kw)
    return Session(**base)


def files_of(s: Session, agents: dict[str, custom.CustomAgent] | None = None
             ) -> dict[str, bytes]:
    plan = boot_plan(s, placeholder_env(KEY, s.id), agents=agents)
    return {f.path: f.content for f in plan.files}


def start_of(s: Session, agents: dict[str, custom.CustomAgent] | None = None) -> str:
    return files_of(s, agents)[START_SCRIPT_PATH].decode()


# --- plan mode -------------------------------------------------------------------------
def test_claude_plan_mode_is_its_own_plan_permission_mode() -> None:
    s = session(agent=Agent.CLAUDE, plan_mode=True)
    managed = json.loads(files_of(s)[MANAGED_SETTINGS_PATH])
    assert managed["permissions"]["defaultMode"] == "plan"
    assert "--permission-mode plan" in start_of(s)
    plain = session(agent=Agent.CLAUDE)
    assert "plan" not in json.dumps(json.loads(files_of(plain)[MANAGED_SETTINGS_PATH])
                                    .get("permissions", {}))
    assert "--permission-mode" not in start_of(plain)


def test_codex_plan_mode_is_a_plan_first_prompt() -> None:
    script = start_of(session(agent=Agent.CODEX, plan_mode=True))
    assert shlex.quote(f"{PLAN_FIRST}\n\nThe task:\nfix the login test") in script
    assert PLAN_FIRST not in start_of(session(agent=Agent.CODEX))


def test_gemini_plan_mode_and_privacy_settings() -> None:
    s = session(agent=Agent.GEMINI, plan_mode=True)
    settings_ = json.loads(files_of(s)[gemini_setup.SYSTEM_SETTINGS_PATH])
    assert settings_["general"]["defaultApprovalMode"] == "plan"
    assert settings_["privacy"]["usageStatisticsEnabled"] is False
    assert settings_["telemetry"]["enabled"] is False
    assert "--approval-mode plan" in start_of(s)
    for event in gemini_setup.HOOK_EVENTS:
        assert event in settings_["hooks"]
        assert event in HOOK_STATUS


def test_plan_mode_default_comes_from_config() -> None:
    req = parse_create({"repo_path": "/r", "prompt": "x"}, backends=("docker",))
    assert req.plan_mode is None  # the appliance's default applies
    req = parse_create({"repo_path": "/r", "plan_mode": False}, backends=("docker",))
    assert req.plan_mode is False
    with pytest.raises(InvalidInput):
        parse_create({"repo_path": "/r", "plan_mode": "yes"}, backends=("docker",))


# --- print mode ------------------------------------------------------------------------
@pytest.mark.parametrize("agent", [Agent.CLAUDE, Agent.CODEX, Agent.GEMINI])
def test_print_mode_answers_once_then_reports_completed(agent: Agent) -> None:
    script = start_of(session(agent=agent, print_mode=True))
    assert "print-done" in script and "Completed" in script
    one_shot = {Agent.CLAUDE: "claude --print", Agent.CODEX: "codex exec",
                Agent.GEMINI: "--prompt "}[agent]
    assert one_shot in script
    assert "Completed" not in start_of(session(agent=agent))


def test_every_start_script_says_when_the_agent_exited() -> None:
    for agent in (Agent.CLAUDE, Agent.CODEX, Agent.GEMINI):
        for print_mode in (False, True):
            script = start_of(session(agent=agent, print_mode=print_mode))
            said = script.index('"hook_event_name": "Exited"')
            # Said once the agent ended, before the terminal goes to the shell left behind.
            assert script.index("status=$?") < said < script.index("stty sane")
            assert said < script.index("exec -a clauderon-shell")


def test_hook_events_change_the_status_and_only_a_print_agent_ends_its_session() -> None:
    chat, once = session(), session(print_mode=True)
    assert hook_changes("Exited", chat) == {"agent_status": AgentStatus.EXITED}
    assert HOOK_STATUS["Exited"] is AgentStatus.EXITED
    assert hook_changes("Completed", chat) == {"agent_status": AgentStatus.IDLE}
    assert hook_changes("Completed", once) == {"agent_status": AgentStatus.IDLE,
                                               "desired": Desired.COMPLETED}
    # The print agent's start script says Exited right after Completed: the session is
    # over, not waiting for a restart.
    over = session(print_mode=True, desired=Desired.COMPLETED)
    assert hook_changes("Exited", over) == {}
    assert hook_changes("Exited", session(print_mode=True)) == {
        "agent_status": AgentStatus.EXITED}  # it died before it answered
    # A session asked to be anything but running: its agent, whose container runs on until
    # the reconciler stops it, changes nothing (no "waiting for you" on a session that is
    # over or stopped).
    for desired in (Desired.COMPLETED, Desired.STOPPED, Desired.ARCHIVED, Desired.DELETED):
        for event in HOOK_STATUS:
            assert hook_changes(event, session(print_mode=True, desired=desired)) == {}, (
                desired, event)
            assert hook_changes(event, session(desired=desired)) == {}, (desired, event)
    with pytest.raises(InvalidInput):  # still a clear 400 for an unknown event
        hook_changes("Died", over)
    with pytest.raises(InvalidInput) as err:
        hook_changes("Died", chat)
    assert "Exited" in err.value.message and err.value.field == "event"


def test_print_mode_needs_a_prompt() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_create({"repo_path": "/r", "print_mode": True}, backends=("docker",))
    assert err.value.field == "prompt"


def test_completed_is_a_phase_that_never_runs_again() -> None:
    for phase in (Phase.CREATING, Phase.RUNNING, Phase.STOPPED):
        assert can_transition(phase, Phase.COMPLETED)
    assert not can_transition(Phase.COMPLETED, Phase.RUNNING)
    assert not can_transition(Phase.COMPLETED, Phase.CREATING)
    done = session(phase=Phase.COMPLETED, desired=Desired.COMPLETED)
    assert refusal(Verb.ARCHIVE, done) is None and refusal(Verb.DELETE, done) is None
    assert refusal(Verb.START, done) and refusal(Verb.MESSAGE, done)
    assert wire.filters_of(Phase.COMPLETED, done.agent_status) == ["completed"]


# --- custom agents ---------------------------------------------------------------------
CONFIG = """
[custom.echoer]
command = ["bash", "-c", "echo \\"$1\\"", "echoer"]
prompt_args = ["{prompt}"]
model_args = ["--model={model}"]
print_args = ["--once"]
[custom.echoer.status]
working = ["Thinking"]
waiting_approval = ["\\\\(y/n\\\\)"]
"""


def agents() -> dict[str, custom.CustomAgent]:
    return custom.parse_custom_agents(tomllib.loads(CONFIG)["custom"], "config.toml")


def test_a_custom_agent_is_an_argv_and_a_prompt_stays_one_argument() -> None:
    echoer = agents()["echoer"]
    hostile = "x\" ; touch /tmp/pwned; echo \"{model} $(id) `id`\n--once"
    argv = custom.argv(echoer, prompt=hostile, model="m1", print_mode=False, plan_mode=False)
    assert argv == ["bash", "-c", 'echo "$1"', "echoer", "--model=m1", hostile]
    s = session(agent=Agent.CUSTOM, custom_agent="echoer", initial_prompt=hostile)
    script = start_of(s, agents())
    assert shlex.quote(hostile) in script  # one quoted word, whatever it holds


def test_custom_status_patterns_live_in_root_files_not_command_lines() -> None:
    s = session(agent=Agent.CUSTOM, custom_agent="echoer")
    files = files_of(s, agents())
    assert files[f"{custom.PATTERNS_DIR}/waiting_approval"] == b"\\(y/n\\)\n"
    assert "(y/n)" not in files[custom.WATCHER_PATH].decode()
    plan = boot_plan(s, placeholder_env(KEY, s.id), agents=agents())
    assert all(f.as_root for f in plan.files if f.path.startswith("/etc/clauderon"))
    assert plan.tools[-1] == "bash"


@pytest.mark.parametrize("body, says", [
    ('[custom.x]\ncommand = "aider --yes; rm -rf /"', "never one shell string"),
    ('[custom.x]\nprompt_args = ["{prompt}"]', "command"),
    ('[custom.x]\ncommand = ["a"]\nshell = "sh"', "unknown key 'shell'"),
    ('[custom."../x"]\ncommand = ["a"]', "lowercase"),
    ('[custom.x]\ncommand = ["a"]\n[custom.x.status]\nworking = ["("]', "not a pattern"),
    ('[custom.x]\ncommand = ["a"]\n[custom.x.status]\nbusy = ["x"]', "unknown key"),
])
def test_bad_custom_agents_are_refused_naming_the_key(body: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        custom.parse_custom_agents(tomllib.loads(body)["custom"], "config.toml")
    assert says in err.value.message


def test_a_create_cannot_carry_a_command() -> None:
    for key in ("command", "prompt_args", "print_args", "status"):
        with pytest.raises(InvalidInput):
            parse_create({"repo_path": "/r", "agent": "custom", "custom_agent": "echoer",
                          key: ["sh", "-c", "touch /tmp/pwned"]}, backends=("docker",))
    with pytest.raises(InvalidInput):  # a custom agent must name one, and only then
        parse_create({"repo_path": "/r", "agent": "custom"}, backends=("docker",))
    with pytest.raises(InvalidInput):
        parse_create({"repo_path": "/r", "custom_agent": "echoer"}, backends=("docker",))
    with pytest.raises(InvalidInput) as err:
        custom.lookup(agents(), "../../bin/sh")
    assert "echoer" in err.value.message


# --- titles ----------------------------------------------------------------------------
def answer(doc: object) -> bytes:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    return json.dumps({"content": [{"type": "text", "text": text}]}).encode()


def test_a_model_answer_becomes_a_clean_title() -> None:
    idea = titles.parse_answer("anthropic", answer(
        {"title": "Fix\nthe\x1b[31m login\u202e test", "description": "Why it fails.",
         "name": "fix-login"}))
    assert idea is not None
    assert idea.title == "Fix the[31m login test"
    assert idea.name == "fix-login"


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_no_title_answer_can_put_anything_but_a_name_in_a_branch(raw: str) -> None:
    idea = titles.parse_answer("anthropic", answer({"title": "t", "name": raw}))
    assert idea is not None
    name = titles.session_name(idea)
    assert validate_name(name) == name and len(name) <= NAME_MAX
    assert all(c.isascii() and (c.isalnum() or c == "-") for c in name)


@pytest.mark.parametrize("hostile", [
    "../../refs/heads/main", "main", "-x --upload-pack=touch", "a..b@{1}", "HEAD",
    "x\nrefs/tags/v1", "ref:main", "a b", "",
])
def test_hostile_names_never_reach_the_branch_as_given(hostile: str) -> None:
    idea = titles.parse_answer("anthropic", answer({"title": "Fix it", "name": hostile}))
    assert idea is not None
    name = titles.session_name(idea)
    assert validate_name(name) == name
    assert not name.startswith("-") and ".." not in name and "/" not in name
    assert name != hostile


@pytest.mark.parametrize("body", [
    b"not json", answer("no json here"), answer({"description": "no title"}),
    answer({"title": ""}), answer({"title": 5}), b'{"content": 7}', answer("[1, 2]"),
    b'{"content": [{"text": 7}]}', b'[]',
])
def test_unusable_answers_give_none(body: bytes) -> None:
    assert titles.parse_answer("anthropic", body) is None


def test_fallback_names_from_the_prompt() -> None:
    idea = titles.fallback("\n  Fix the flaky login test\nand more")
    assert idea.title == "Fix the flaky login test"
    assert idea.name.startswith("fix-the-flaky")
    long = titles.fallback("word " * 100)
    assert len(long.title) <= titles.TITLE_SHOWN


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
def test_the_request_carries_only_the_placeholder_and_a_capped_prompt(provider: str) -> None:
    req = titles.title_request(provider, "small", "p" * 10_000, "PLACEHOLDER")
    assert any("PLACEHOLDER" in v for v in req.headers.values())
    assert "PLACEHOLDER" not in json.dumps(req.body)
    assert len(json.dumps(req.body)) < titles.PROMPT_CHARS + 2000
    assert titles.MARKER in json.dumps(req.body)


def test_title_text_is_data_cleaned_on_edit() -> None:
    from appliance.intake import TITLE_MAX, clean_text
    assert clean_text("a\u2066b\x00c\r\nd", TITLE_MAX, "title", one_line=True) == "abc d"
    with pytest.raises(ClauderonError):
        clean_text("x" * (TITLE_MAX + 1), TITLE_MAX, "title", one_line=True)


@settings(max_examples=300)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda kids: st.lists(kids, max_size=4)
                    | st.dictionaries(st.text(max_size=12), kids, max_size=4), max_leaves=20),
       st.sampled_from(["anthropic", "openai", "gemini"]))
def test_any_answer_shape_gives_an_idea_or_none(doc: object, provider: str) -> None:
    idea = titles.parse_answer(provider, json.dumps(doc).encode())
    assert idea is None or (idea.title and "\n" not in idea.title)
