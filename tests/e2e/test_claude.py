"""Claude Code for real: the real CLI in the agent image, through the real proxy, to a fake
Messages API on loopback (see conftest). One session goes through the whole life: the
prompt, a Bash tool round trip, hooks driving the status, the transcript API, a message,
the console for two viewers, a canary scan, and a resumed conversation after its container
is removed behind the appliance's back."""

from __future__ import annotations

import base64
import json
from contextlib import closing
from pathlib import Path

import docker
import trio
from trio_websocket import open_websocket_url

from appliance.placeholders import placeholder_env
from appliance.tokens import load_or_create_instance_key
from tests.e2e.agent_checks import (
    hooks,
    inspect_text,
    scan,
    transcript,
    wait_answer,
    wait_hook,
)
from tests.e2e.conftest import ANTHROPIC_CANARY
from tests.support.appliance import Appliance, wait_for
from tests.support.fake_models import FakeModels

PROMPT = "please run the command"


def test_claude_prompt_tool_hooks_transcript_and_no_secret(
    agents: Appliance, fake: FakeModels, repo: Path
) -> None:
    out = agents.cli("create", "--repo", str(repo), "--name", "claude-e2e", "--prompt", PROMPT,
                     "--skip-permissions")
    assert "agent" in out.stdout  # the boot step shows in the progress line
    s = agents.session("claude-e2e")

    # Hooks: the prompt, the tool call, the end of the turn, in that order.
    seen = wait_hook(agents, s["id"], "Stop")
    names = [n for n, _ in seen]
    assert names.index("UserPromptSubmit") < names.index("PreToolUse") < names.index("Stop")
    assert dict(seen)["UserPromptSubmit"] == "working"
    assert seen[-1] == ("Stop", "waiting_input")
    assert agents.session("claude-e2e")["agent_status"] == "waiting_input"

    # The fake got the real key, never a placeholder; the tool really ran in the worktree.
    model_calls = fake.model_requests()
    assert len(model_calls) >= 2
    assert all(c.headers.get("x-api-key") == ANTHROPIC_CANARY for c in model_calls)
    placeholders = set(placeholder_env(
        load_or_create_instance_key(agents.settings.instance_secret_path), s["id"]).values())
    for seen_request in fake.seen:
        assert not placeholders & set(seen_request.headers.values()), seen_request.headers
    assert (Path(s["worktree_path"]) / "tool-output.txt").read_text() == "tool-ran\n"

    # The transcript API: the user's prompt, the tool call and result, the answer.
    messages = wait_answer(agents, s["id"], fake.answer)
    kinds = [m["kind"] for m in messages]
    assert {"kind": "user", "text": PROMPT} in [
        {"kind": m["kind"], "text": m["text"]} for m in messages]
    call = next(m for m in messages if m["kind"] == "tool_call")
    assert call["tool"] == "Bash" and call["input"]["command"] == fake.command
    result = next(m for m in messages if m["kind"] == "tool_result")
    assert result["tool_id"] == call["tool_id"]
    assert kinds.index("tool_call") < kinds.index("tool_result") < len(kinds)
    assert messages[-1] == {**messages[-1], "kind": "assistant", "text": fake.answer}
    # Incremental: nothing new after the returned cursor.
    cursor = transcript(agents, s["id"])["cursor"]
    assert transcript(agents, s["id"], cursor)["messages"] == []

    # A message typed into the agent: a new turn, seen after the cursor only.
    before = len(fake.model_requests())
    agents.client().post(f"/api/sessions/{s['id']}/message", {"text": "and now a second one"})
    wait_hook(agents, s["id"], "Stop", count=2)
    later = transcript(agents, s["id"], cursor)["messages"]
    assert [m["text"] for m in later if m["kind"] == "user"] == ["and now a second one"]
    assert len(fake.model_requests()) > before

    # No real secret anywhere in the container; the scan itself finds the placeholder.
    container = s["backend_id"]
    assert scan(container, ANTHROPIC_CANARY) == []
    assert scan(container, ANTHROPIC_CANARY, user="0:0") == []
    assert ANTHROPIC_CANARY not in inspect_text(container)
    found = scan(container, placeholder_env(
        load_or_create_instance_key(agents.settings.instance_secret_path),
        s["id"])["ANTHROPIC_API_KEY"])
    assert any(line.startswith("environ: ") for line in found), found

    # The home is the session's: hooks and managed settings were written inside the
    # container, not mounted.
    mounts = json.loads(inspect_text(container))["Mounts"]
    assert {m["Destination"] for m in mounts}.isdisjoint(
        {"/etc/claude-code/managed-settings.json", "/etc/clauderon/hooks/send_status.sh"})


def test_claude_waits_for_approval_without_skip_permissions(
    agents: Appliance, fake: FakeModels, repo: Path
) -> None:
    agents.cli("create", "--repo", str(repo), "--name", "asks", "--prompt", PROMPT)
    seen = wait_hook(agents, "asks", "PermissionRequest")
    assert seen[-1] == ("PermissionRequest", "waiting_approval")
    assert not (Path(agents.session("asks")["worktree_path"]) / "tool-output.txt").exists()


async def _read_until(ws: object, needle: bytes, screen: bytearray) -> None:
    with trio.fail_after(60):
        while needle not in screen:
            msg = json.loads(await ws.get_message())  # type: ignore[attr-defined]
            assert msg["type"] == "output", msg
            screen += base64.b64decode(msg["data"])


async def test_console_viewers_and_resume_after_the_container_is_lost(
    agents: Appliance, fake: FakeModels, repo: Path
) -> None:
    await trio.to_thread.run_sync(lambda: agents.cli(
        "create", "--repo", str(repo), "--name", "console", "--prompt", PROMPT,
        "--skip-permissions"))
    sid = agents.session("console")["id"]
    await trio.to_thread.run_sync(lambda: wait_answer(agents, sid, fake.answer))
    url = f"ws://127.0.0.1:{agents.http_port}/ws/console/console?rows=40&cols=120"

    headers = agents.ws_headers()
    async with open_websocket_url(url, extra_headers=headers) as first:
        screen_a = bytearray()
        # tmux draws the spaces between words as cursor moves: look for single words.
        await _read_until(first, b"answered.", screen_a)
        # A late joiner gets the current screen, with the answer already on it.
        async with open_websocket_url(url, extra_headers=headers) as second:
            screen_b = bytearray()
            await _read_until(second, b"answered.", screen_b)
            await second.send_message(json.dumps({"type": "resize", "rows": 30, "cols": 100}))
        # The second viewer left; the first still drives the agent.
        await first.send_message(json.dumps({
            "type": "input", "data": base64.b64encode(b"typed in the console").decode()}))
        await trio.sleep(0.3)  # a TUI takes text and Enter in one read as a paste
        await first.send_message(b"\r")
        await trio.to_thread.run_sync(
            lambda: wait_hook(agents, sid, "Stop", count=2))
    assert any(b"typed in the console" in r.body for r in fake.model_requests())

    # Every viewer gone: the agent still runs.
    container = agents.session("console")["backend_id"]
    with closing(docker.from_env()) as client:
        alive = client.containers.get(container).exec_run(["tmux", "has-session", "-t", "agent"])
        assert alive.exit_code == 0
        # The container disappears; the reconciler recreates it and Claude resumes: its next
        # request carries the earlier conversation.
        client.containers.get(container).remove(force=True)
    s = await trio.to_thread.run_sync(lambda: wait_for(
        lambda: (x := agents.session("console"))["phase"] == "running"
        and x["backend_id"] not in (None, container) and x, timeout=90,
        what="the recreated container"))
    count = len(hooks(agents, sid))

    def screen() -> str:
        with closing(docker.from_env()) as client:
            out = client.containers.get(s["backend_id"]).exec_run(
                ["tmux", "capture-pane", "-p", "-t", "agent"]).output
        return out.decode(errors="replace")

    # The resumed agent shows the earlier conversation, then its input line.
    await trio.to_thread.run_sync(lambda: wait_for(
        lambda: "answered." in screen() and "bypass permissions on" in screen(),
        timeout=60, what="the resumed conversation on screen"))
    await trio.to_thread.run_sync(lambda: agents.client().post(
        f"/api/sessions/{sid}/message", {"text": "after the loss"}))
    await trio.to_thread.run_sync(
        lambda: wait_for(lambda: len(hooks(agents, sid)) > count and
                         hooks(agents, sid)[-1][0] == "Stop", timeout=90,
                         what="the resumed turn"))
    last = fake.model_requests()[-1].body
    assert b"after the loss" in last and PROMPT.encode() in last
    assert s["backend_id"] != container
