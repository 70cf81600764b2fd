"""The status hook script, and the start script that sends ``Exited`` through it once the
agent has ended, run by the real bash and curl against a server on loopback."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from appliance.agents import custom
from appliance.agents.boot import EXIT_SHELL, START_SCRIPT_PATH, boot_plan
from appliance.agents.hooks import HOOK_SCRIPT, HOOK_SCRIPT_PATH
from appliance.contract import WORKSPACE
from appliance.placeholders import placeholder_env
from appliance.sessions import Agent, Session, SessionId


class Posts(list[tuple[str, dict[str, Any]]]):
    """What the hooks posted, and an event set as each arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()


class _Recorder(BaseHTTPRequestHandler):
    got: Posts

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.got.append((self.headers["authorization"], json.loads(body)))
        self.got.arrived.set()
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def server() -> Iterator[tuple[str, Posts]]:
    got = Posts()
    handler = type("H", (_Recorder,), {"got": got})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api/hooks", got
    httpd.shutdown()
    httpd.server_close()


def run(tmp_path: Path, url: str, stdin: str = "", *args: str) -> int:
    script = tmp_path / "send_status.sh"
    script.write_text(HOOK_SCRIPT)
    env = {"PATH": "/usr/bin:/bin", "CLAUDERON_HOOK_URL": url,
           "CLAUDERON_HOOK_TOKEN": "tok", "CLAUDERON_SESSION_ID": "sid"}
    return subprocess.run(["bash", str(script), *args], input=stdin, env=env, text=True,
                          timeout=30, capture_output=True).returncode


def test_claude_events_are_posted_with_the_token(
    tmp_path: Path, server: tuple[str, list[Any]]
) -> None:
    url, got = server
    assert run(tmp_path, url, json.dumps({"session_id": "x", "hook_event_name": "PreToolUse",
                                          "tool_name": "Bash"})) == 0
    assert got == [("Bearer tok", {"session_id": "sid", "event": {"type": "PreToolUse"}})]


def test_notifications_count_only_when_idle(tmp_path: Path,
                                            server: tuple[str, list[Any]]) -> None:
    url, got = server
    run(tmp_path, url, json.dumps({"hook_event_name": "Notification",
                                   "notification_type": "permission_prompt"}))
    assert got == []
    run(tmp_path, url, json.dumps({"hook_event_name": "Notification",
                                   "notification_type": "idle_prompt"}))
    assert got[-1][1]["event"] == {"type": "IdlePrompt"}


def test_codex_turn_complete_is_a_stop(tmp_path: Path, server: tuple[str, list[Any]]) -> None:
    url, got = server
    run(tmp_path, url, "", json.dumps({"type": "agent-turn-complete", "turn-id": "1"}))
    assert got[-1][1]["event"] == {"type": "Stop"}


def test_an_unreachable_appliance_never_fails_the_agent(tmp_path: Path) -> None:
    assert run(tmp_path, "http://127.0.0.1:9/api/hooks",
               json.dumps({"hook_event_name": "Stop"})) == 0
    assert run(tmp_path, "", "not json at all") == 0


#: An agent that answers and exits 7, in both its forms (interactive and print mode).
QUITS = custom.parse_custom_agents({"quits": {
    "command": ["sh", "-c", 'echo "said $*"; exit 7', "quits"],
    "prompt_args": ["{prompt}"], "print_args": ["--once"]}}, "config.toml")


def start_script(tmp_path: Path, *, print_mode: bool) -> Path:
    """The start script a ``quits`` session gets, its container paths (the hook script, the
    workspace) moved under ``tmp_path``."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    s = Session(id=SessionId("0b8f6a7e-0000-4000-8000-000000000001"), name="quits",
                repo_path="/src/app", worktree_path="/w/quits", branch="clauderon/quits",
                base_ref="main", image="img", created_at=now, updated_at=now,
                agent=Agent.CUSTOM, custom_agent="quits", initial_prompt="hi",
                print_mode=print_mode)
    plan = boot_plan(s, placeholder_env(b"k" * 32, s.id), agents=QUITS)
    [text] = [f.content.decode() for f in plan.files if f.path == START_SCRIPT_PATH]
    (tmp_path / "send_status.sh").write_text(HOOK_SCRIPT)
    (tmp_path / "home").mkdir(exist_ok=True)
    script = tmp_path / "start-agent.sh"
    script.write_text(text.replace(HOOK_SCRIPT_PATH, str(tmp_path / "send_status.sh"))
                      .replace(f"cd {WORKSPACE} ", f"cd {tmp_path} "))
    return script


def start(script: Path, url: str) -> str:
    """Run the start script to its end (the shell it leaves reads no input and exits)."""
    home = script.parent / "home"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "CLAUDERON_HOOK_URL": url,
           "CLAUDERON_HOOK_TOKEN": "tok", "CLAUDERON_SESSION_ID": "sid"}
    done = subprocess.run(["bash", str(script)], stdin=subprocess.DEVNULL, env=env,
                          text=True, timeout=30, capture_output=True)
    return done.stdout


def test_the_start_script_says_the_agent_exited(tmp_path: Path,
                                                server: tuple[str, list[Any]]) -> None:
    url, got = server
    out = start(start_script(tmp_path, print_mode=False), url)
    assert "said hi" in out and "the agent exited (7)" in out
    assert got == [("Bearer tok", {"session_id": "sid", "event": {"type": "Exited"}})]


def test_a_print_session_says_completed_then_exited(tmp_path: Path,
                                                    server: tuple[str, list[Any]]) -> None:
    url, got = server
    script = start_script(tmp_path, print_mode=True)
    assert "said --once hi" in start(script, url)
    assert [e["event"]["type"] for _, e in got] == ["Completed", "Exited"]
    # A container made again for the session carries on interactively: it exits again.
    assert "said hi" in start(script, url)
    assert [e["event"]["type"] for _, e in got] == ["Completed", "Exited", "Exited"]


def test_the_pane_watcher_ends_with_the_agent(tmp_path: Path,
                                              server: tuple[str, Posts]) -> None:
    """The watcher on a real tmux server of its own: it reads the agent's screen, and stops
    once the pane runs the shell left after the agent, whose screen would say otherwise."""
    url, got = server
    patterns = tmp_path / "pane-status"
    patterns.mkdir()
    (patterns / "working").write_text("Thinking\n")
    (patterns / "waiting_input").write_text("READY\n")
    (tmp_path / "send_status.sh").write_text(HOOK_SCRIPT)
    watcher = tmp_path / "watch.sh"
    watcher.write_text(custom.watcher_script(str(tmp_path / "send_status.sh"), "agent",
                                             EXIT_SHELL).replace(custom.PATTERNS_DIR,
                                                                 str(patterns)))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMUX_TMPDIR": str(tmp_path),
           "CLAUDERON_HOOK_URL": url, "CLAUDERON_HOOK_TOKEN": "tok",
           "CLAUDERON_SESSION_ID": "sid"}

    def tmux(*args: str) -> None:
        subprocess.run(["tmux", *args], env=env, check=True, timeout=10)

    tmux("new-session", "-d", "-s", "agent", "-x", "80", "-y", "10",
         "echo Thinking; sleep 60")
    try:
        proc = subprocess.Popen(["bash", str(watcher)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert got.arrived.wait(timeout=30), "the watcher posted nothing"
            assert [e["event"]["type"] for _, e in got] == ["PreToolUse"]
            # The agent exits; the shell left behind shows what would read as waiting.
            tmux("respawn-pane", "-k", "-t", "agent",
                 f"clear; echo READY; exec -a {EXIT_SHELL} bash --norc")
            assert proc.wait(timeout=10) == 0
        finally:
            proc.kill()
            proc.wait()
        assert [e["event"]["type"] for _, e in got] == ["PreToolUse"]
    finally:
        subprocess.run(["tmux", "kill-server"], env=env, timeout=10)
