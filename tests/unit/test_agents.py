"""The pure builders of what goes into an agent's container, and the transcript parsers."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from appliance.agents import claude_setup, codex_setup
from appliance.agents.boot import (
    START_SCRIPT_PATH,
    boot_plan,
    check_argv,
    start_argv,
    write_argv,
)
from appliance.agents.hooks import (
    CLAUDE_HOOK_EVENTS,
    HOOK_SCRIPT_PATH,
    MANAGED_SETTINGS_PATH,
    claude_managed_settings,
)
from appliance.agents.logs import Kind, claude_messages, codex_messages, parse_lines
from appliance.agents.reader import LogFile, read_after
from appliance.placeholders import placeholder_env
from appliance.readers import host_tree
from appliance.sessions import Agent, Session, SessionId
from tests.unit.test_transcript_reader import rollout


def session(**kw: object) -> Session:
    now = datetime.now(UTC)
    base: dict[str, object] = dict(
        id=SessionId("0b9f6a43-1111-2222-3333-444455556666"), name="s", repo_path="/r",
        worktree_path="/w", branch="clauderon/s", base_ref="main", image="img",
        initial_prompt="fix it", created_at=now, updated_at=now)
    base.update(kw)
    return Session(**base)  # type: ignore[arg-type]


def test_managed_settings_register_every_status_hook() -> None:
    doc = claude_managed_settings(skip_permissions=False)
    assert set(doc["hooks"]) == set(CLAUDE_HOOK_EVENTS)
    for entries in doc["hooks"].values():
        assert entries[0]["hooks"][0]["command"] == HOOK_SCRIPT_PATH
    assert doc["hooks"]["PreToolUse"][0]["matcher"] == "*"
    assert doc["permissions"]["defaultMode"] == "default"
    skip = claude_managed_settings(skip_permissions=True)
    assert skip["permissions"]["defaultMode"] == "bypassPermissions"


PH = placeholder_env(b"k" * 32, "sid")


def test_claude_json_skips_every_first_run_prompt() -> None:
    key = placeholder_env(b"k" * 32, "sid")["ANTHROPIC_API_KEY"]
    doc = claude_setup.claude_json(workdir="/workspace/src", api_key_placeholder=key,
                             skip_permissions=True)
    assert doc["hasCompletedOnboarding"] and doc["bypassPermissionsModeAccepted"]
    assert doc["projects"]["/workspace/src"]["hasTrustDialogAccepted"]
    assert doc["customApiKeyResponses"]["approved"] == [key[-20:]]


def test_claude_start_script_starts_fresh_or_resumes() -> None:
    s = session(model="opus", skip_permissions=True, initial_prompt="-x; rm -rf /")
    script = claude_setup.start_script(s, workdir="/workspace")
    assert f't="$HOME/.claude/projects/-workspace/{s.id}.jsonl"' in script
    # resumed only when the transcript holds a message; else kept aside and started afresh
    assert """if grep -qs '"type":"user"' "$t"; then""" in script
    assert 'mv -f "$t" "$t.unstarted"' in script
    assert f"claude --resume {s.id} --model opus --dangerously-skip-permissions\n" in script
    assert (f"claude --session-id {s.id} --model opus --dangerously-skip-permissions -- "
            "'-x; rm -rf /'") in script
    plain = claude_setup.start_script(session(initial_prompt=""), workdir="/workspace")
    assert "--dangerously" not in plain and " -- " not in plain
    assert claude_setup.project_folder("/workspace/my_app.v2") == "-workspace-my-app-v2"


def test_codex_config_goes_through_the_proxy_without_websockets() -> None:
    doc = tomllib.loads(codex_setup.config_toml(session(model="gpt-5.2", skip_permissions=True),
                                          workdir="/workspace"))
    provider = doc["model_providers"][doc["model_provider"]]
    assert provider["base_url"] == "https://api.openai.com/v1"
    assert provider["supports_websockets"] is False and provider["wire_api"] == "responses"
    assert doc["model"] == "gpt-5.2" and doc["approval_policy"] == "never"
    assert doc["projects"]["/workspace"]["trust_level"] == "trusted"
    assert doc["notify"] == ["bash", HOOK_SCRIPT_PATH]
    assert "approval_policy" not in tomllib.loads(codex_setup.config_toml(session(), workdir="/w"))
    assert json.loads(codex_setup.auth_json("k")) == {"OPENAI_API_KEY": "k"}
    assert "codex resume --last" in codex_setup.start_script(session())


def test_codex_logged_in_with_chatgpt_holds_stand_ins_and_its_own_provider() -> None:
    login = {"account_id": "acct-1", "id_token": "h.c.clauderon-unsigned",
             "last_refresh": "2026-01-01T00:00:00+00:00", "placeholder": "clauderon-chatgpt-1"}
    plan = boot_plan(session(agent=Agent.CODEX, skip_permissions=True), PH, codex_login=login)
    files = {f.path: f.content.decode() for f in plan.files}
    doc = tomllib.loads(files["/home/agent/.codex/config.toml"])
    assert "model_provider" not in doc and "model_providers" not in doc
    assert doc["approval_policy"] == "never" and doc["notify"] == ["bash", HOOK_SCRIPT_PATH]
    assert doc["projects"]["/workspace"]["trust_level"] == "trusted"
    auth = json.loads(files["/home/agent/.codex/auth.json"])
    assert auth == {"OPENAI_API_KEY": None, "last_refresh": login["last_refresh"], "tokens": {
        "id_token": "h.c.clauderon-unsigned", "access_token": "clauderon-chatgpt-1",
        "refresh_token": "clauderon-chatgpt-1", "account_id": "acct-1"}}
    assert "unset OPENAI_API_KEY CODEX_API_KEY" in files[START_SCRIPT_PATH]
    api_key = {f.path: f.content.decode() for f in boot_plan(session(agent=Agent.CODEX), PH).files}
    assert "unset" not in api_key[START_SCRIPT_PATH]
    assert json.loads(api_key["/home/agent/.codex/auth.json"]) == {
        "OPENAI_API_KEY": PH["OPENAI_API_KEY"]}


def test_boot_plan_checks_tools_writes_files_and_starts_once() -> None:
    plan = boot_plan(session(agent=Agent.CLAUDE), PH)
    assert plan.tools == ("bash", "curl", "tmux", "claude")
    paths = {f.path: f for f in plan.files}
    assert paths[HOOK_SCRIPT_PATH].as_root and paths[HOOK_SCRIPT_PATH].mode == "0755"
    assert paths[MANAGED_SETTINGS_PATH].as_root
    assert paths["/home/agent/.claude.json"].keep and not paths["/home/agent/.claude.json"].as_root
    assert "has-session -t agent" in plan.start[-1]
    assert boot_plan(session(agent=Agent.CODEX), PH).tools[-1] == "codex"
    assert check_argv(("a",))[0] == "sh" and start_argv()[0] == "bash"
    assert "[ -e" in write_argv(paths["/home/agent/.claude.json"])[2]


def test_claude_transcript_lines_become_typed_messages() -> None:
    assert claude_messages({"type": "user", "message": {"role": "user", "content": "hi"},
                            "timestamp": "t"}) == [
        claude_messages({"type": "user", "message": {"content": "hi"}, "timestamp": "t"})[0]]
    [call] = claude_messages({"type": "assistant", "message": {"content": [
        {"type": "thinking", "thinking": "..."},
        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}]}})
    assert call.kind is Kind.TOOL_CALL and call.input == {"command": "ls"}
    [result] = claude_messages({"type": "user", "message": {"content": [
        {"type": "tool_result", "tool_use_id": "t1", "is_error": True,
         "content": [{"type": "text", "text": "boom"}]}]}})
    assert result.kind is Kind.TOOL_RESULT and result.text == "boom" and result.is_error
    assert claude_messages({"type": "attachment", "attachment": {}}) == []
    assert claude_messages({"type": "user", "isMeta": True, "message": {"content": "x"}}) == []


def test_codex_rollout_lines_become_typed_messages() -> None:
    def item(payload: dict[str, object]) -> dict[str, object]:
        return {"type": "response_item", "timestamp": "t", "payload": payload}

    assert codex_messages(item({"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "<environment_context>...</environment_context>"}]})) == []
    [user] = codex_messages(item({"type": "message", "role": "user",
                                  "content": [{"type": "input_text", "text": "do it"}]}))
    [call] = codex_messages(item({"type": "function_call", "name": "shell", "call_id": "c",
                                  "arguments": '{"command": ["ls"]}'}))
    [out] = codex_messages(item({"type": "function_call_output", "call_id": "c",
                                 "output": "ok"}))
    assert (user.kind, call.input, out.text) == (Kind.USER, {"command": ["ls"]}, "ok")
    assert codex_messages({"type": "event_msg", "payload": {}}) == []


def test_parse_lines_consumes_complete_lines_only() -> None:
    line = json.dumps({"type": "user", "message": {"content": "one"}}).encode()
    messages, used = parse_lines(Agent.CLAUDE, line + b"\n{not json}\n" + line[:10])
    assert [m.text for m in messages] == ["one"] and used == len(line) + 12


def test_read_after_walks_files_in_order_with_a_cursor(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(rollout("one") + rollout("two"))
    b.write_bytes(rollout("three") + rollout("four")[:5])
    logs = [LogFile(parts=("a.jsonl",), size=None), LogFile(parts=("b.jsonl",), size=None)]

    def read(cursor: int) -> tuple[list[str], int]:
        with host_tree(tmp_path, label="home", absent="none") as tree:
            page = read_after(tree, Agent.CODEX, logs, cursor)
        return [m.text for m in page.messages], page.cursor

    texts, cursor = read(0)
    assert texts == ["one", "two", "three"]
    assert read(cursor) == ([], cursor)
    b.write_bytes(rollout("three") + rollout("four"))
    assert read(cursor)[0] == ["four"]
