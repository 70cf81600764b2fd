"""The status hook script, run by the real bash and curl against a server on loopback."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from appliance.agents.hooks import HOOK_SCRIPT


class _Recorder(BaseHTTPRequestHandler):
    got: list[tuple[str, dict[str, Any]]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.got.append((self.headers["authorization"], json.loads(body)))
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    got: list[tuple[str, dict[str, Any]]] = []
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
