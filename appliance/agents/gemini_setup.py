"""Gemini CLI in a session's container: system settings, start script, transcript files.

Its settings go to :data:`SYSTEM_SETTINGS_PATH`, the system file that overrides every user
and project file, written as root: the agent cannot switch its hooks or the privacy
settings off. They say: API-key auth (the key is ``GEMINI_API_KEY``, a placeholder the
proxy swaps in ``x-goog-api-key`` for ``generativelanguage.googleapis.com``), no usage
statistics and no telemetry (they would go to ``play.googleapis.com``), no update checks,
and the status hooks: ``BeforeAgent`` / ``BeforeTool`` -> working, ``AfterAgent`` -> the
turn is over, a ``ToolPermission`` notification -> waiting for approval. Plan mode is
Gemini's own ``plan`` approval mode (read-only).

Gemini keeps its chats as JSON lines in ``~/.gemini/tmp/<project>/chats/session-*.jsonl``
(:mod:`appliance.agents.logs` parses them). The start script runs Gemini with the session
id as its own, and resumes the latest chat when one exists (the container was recreated).
"""

from __future__ import annotations

import shlex
from typing import Any

from appliance.agents.hooks import HOOK_SCRIPT_PATH, hook_table
from appliance.agents.modes import resume_or_start
from appliance.sessions import Session

SYSTEM_SETTINGS_PATH = "/etc/gemini-cli/settings.json"
#: The events that drive ``agent_status`` (``appliance.agents.hooks.HOOK_STATUS``).
HOOK_EVENTS = ("BeforeAgent", "BeforeTool", "AfterAgent", "Notification")
#: Gemini's hooks must print JSON: the status script prints nothing, so ``{}`` follows.
HOOK_COMMAND = f"bash {HOOK_SCRIPT_PATH}; echo '{{}}'"
CHATS = (".gemini", "tmp")


def system_settings(session: Session) -> dict[str, Any]:
    hooks = hook_table({"type": "command", "name": "clauderon-status",
                        "command": HOOK_COMMAND, "timeout": 10000},
                       HOOK_EVENTS, matchers={"BeforeTool": ".*"})
    general: dict[str, Any] = {"enableAutoUpdate": False,
                               "enableAutoUpdateNotification": False}
    if session.plan_mode:
        general["defaultApprovalMode"] = "plan"
    return {
        "general": general,
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False, "logPrompts": False},
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "hooks": hooks,
    }


def _common(session: Session) -> list[str]:
    out = []
    if session.model:
        out += ["--model", session.model]
    if session.plan_mode:
        out += ["--approval-mode", "plan"]
    elif session.skip_permissions:
        out += ["--approval-mode", "yolo"]
    return out


def print_argv(session: Session) -> list[str]:
    return ["gemini", "--skip-trust", *_common(session), "--session-id", session.id,
            "--prompt", session.initial_prompt]


def start_script(session: Session) -> str:
    common = ["--skip-trust", *_common(session)]
    fresh = ["gemini", *common, "--session-id", session.id]
    if session.initial_prompt:
        fresh += ["--prompt-interactive", session.initial_prompt]
    return resume_or_start('ls "$HOME"/.gemini/tmp/*/chats/session-*.jsonl >/dev/null 2>&1',
                           shlex.join(["gemini", *common, "--resume", "latest"]),
                           shlex.join(fresh))
