"""The status hook: a bash script the agent runs on its events, and Claude's hook settings.

After a container starts, the daemon writes both *inside* it (``docker exec``, never a host
mount): the script at :data:`HOOK_SCRIPT_PATH`, Claude's managed settings at
:data:`MANAGED_SETTINGS_PATH` (root-owned, so the agent cannot switch its hooks off).

The script reads the event as JSON (Claude and Gemini: on stdin; Codex's ``notify``: as its
last argument; the custom agents' pane watcher and the start script: on stdin),
and POSTs ``{"session_id", "event": {"type"}}`` with the session's hook token to
``$CLAUDERON_HOOK_URL`` (``/api/hooks``). It is silent, bounded (2 s to connect, 5 s in all)
and always exits 0: a hook must never stop the agent. A Notification counts only when it
says the agent is idle; Codex's ``agent-turn-complete`` counts as Stop.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from appliance.errors import InvalidInput
from appliance.sessions import AgentStatus, Desired, Session

HOOK_SCRIPT_PATH = "/etc/clauderon/hooks/send_status.sh"
MANAGED_SETTINGS_PATH = "/etc/claude-code/managed-settings.json"

#: What each event the script can send means for ``agent_status``. The script above sends
#: exactly these names (``IdlePrompt`` is its name for an idle Notification; Codex's
#: end-of-turn notify arrives as ``Stop``).
HOOK_STATUS: dict[str, AgentStatus] = {
    "UserPromptSubmit": AgentStatus.WORKING,
    "PreToolUse": AgentStatus.WORKING,
    "PostToolUse": AgentStatus.WORKING,
    "PermissionRequest": AgentStatus.WAITING_APPROVAL,
    "Stop": AgentStatus.WAITING_INPUT,
    "Notification": AgentStatus.IDLE,
    "IdlePrompt": AgentStatus.IDLE,
    # Gemini CLI's hooks (its ToolPermission notification arrives as PermissionRequest).
    "BeforeAgent": AgentStatus.WORKING,
    "BeforeTool": AgentStatus.WORKING,
    "AfterAgent": AgentStatus.WAITING_INPUT,
    #: Sent by a print-mode start script once the agent's one answer is out: the session
    #: asks for ``completed`` (the hook route; only a print-mode session does).
    "Completed": AgentStatus.IDLE,
    #: Sent by every start script once the agent's process has ended, whatever ended it:
    #: its terminal is a shell now, and only a restart brings the agent back.
    "Exited": AgentStatus.EXITED,
}

#: The event that ends a print-mode session.
COMPLETED_EVENT = "Completed"
#: The event that says the agent's process ended.
EXITED_EVENT = "Exited"

#: The Claude Code events that drive ``agent_status`` (DESIGN.md, Hooks).
CLAUDE_HOOK_EVENTS = ("UserPromptSubmit", "PreToolUse", "PermissionRequest", "Stop",
                      "Notification")
#: Claude's events that come with a tool, each for every tool.
_TOOL_MATCHERS = {"PreToolUse": "*", "PermissionRequest": "*"}

HOOK_SCRIPT = r"""#!/bin/bash
# Clauderon status hook: tells the appliance what the agent is doing.
# Silent, bounded, never fails the agent.
if [ "$#" -gt 0 ]; then input="${!#}"; else input="$(cat)"; fi
event="$(printf '%s' "$input" | grep -o '"hook_event_name" *: *"[A-Za-z]*"' | head -n 1 \
    | sed 's/.*"\([A-Za-z]*\)"$/\1/')"
if [ -z "$event" ]; then
    case "$input" in *'"agent-turn-complete"'*) event=Stop ;; esac
fi
if [ "$event" = Notification ]; then
    case "$input" in
        *'idle_prompt'*) event=IdlePrompt ;;
        *'"ToolPermission"'*) event=PermissionRequest ;;
        *) exit 0 ;;
    esac
fi
if [ -z "$event" ] || [ -z "${CLAUDERON_HOOK_URL:-}" ]; then exit 0; fi
curl -s -o /dev/null --connect-timeout 2 --max-time 5 --noproxy '*' \
    -H "Authorization: Bearer ${CLAUDERON_HOOK_TOKEN:-}" \
    -H 'Content-Type: application/json' \
    --data "{\"session_id\":\"${CLAUDERON_SESSION_ID:-}\",\"event\":{\"type\":\"$event\"}}" \
    "$CLAUDERON_HOOK_URL" >/dev/null 2>&1 || true
exit 0
"""


def status_for(event: object) -> AgentStatus:
    """The agent status a hook event means; a clear 400 for anything else."""
    status = HOOK_STATUS.get(event) if isinstance(event, str) else None
    if status is None:
        shown = repr(event)[:60]
        raise InvalidInput(f"unknown hook event {shown} (known: {', '.join(HOOK_STATUS)})",
                           field="event")
    return status


def hook_changes(event: object, session: Session) -> dict[str, Any]:
    """What a hook ``event`` from ``session``'s agent changes in its row (a clear 400 for an
    unknown event). A print-mode agent that says ``Completed`` ends its session; any other
    saying so only records the status (an agent cannot end what it is not). Once its
    session is asked to be anything but running (completed, stopped, archived, deleted), an
    agent changes nothing: its container runs on until the reconciler stops it, and in that
    moment it could make a session that is over say "waiting for you" or "needs your
    approval" (and notify the person), or "exited" (asking them to restart the agent of a
    session that is over: the start script says ``Exited`` once the one answer is out)."""
    status = status_for(event)
    if session.desired is not Desired.RUNNING:
        return {}
    changes: dict[str, Any] = {"agent_status": status}
    if event == COMPLETED_EVENT and session.print_mode and session.desired is Desired.RUNNING:
        changes["desired"] = Desired.COMPLETED
    return changes


def claude_managed_settings(*, skip_permissions: bool, plan_mode: bool = False
                            ) -> dict[str, Any]:
    """``managed-settings.json``: the status hooks, and the permission mode: plan in plan
    mode, bypass when asked for, otherwise the mode that asks a person before a tool runs."""
    settings: dict[str, Any] = {"hooks": hook_table(
        {"type": "command", "command": HOOK_SCRIPT_PATH, "timeout": 10}, CLAUDE_HOOK_EVENTS,
        matchers=_TOOL_MATCHERS)}
    if plan_mode:
        # Plan before editing: read-only until a person accepts the plan.
        settings["permissions"] = {"defaultMode": "plan"}
        if skip_permissions:
            settings["skipDangerousModePermissionPrompt"] = True
    elif skip_permissions:
        settings["permissions"] = {"defaultMode": "bypassPermissions"}
        settings["skipDangerousModePermissionPrompt"] = True
    else:
        # Ask before tools run: a person approves (status waiting_approval), not a model.
        settings["permissions"] = {"defaultMode": "default"}
    return settings


def hook_table(command: dict[str, Any], events: Iterable[str], *,
               matchers: Mapping[str, str]) -> dict[str, Any]:
    """An agent's ``hooks`` setting: each event runs ``command``; one in ``matchers`` for
    the tools its pattern matches (Claude's and Gemini's settings share this shape)."""
    def entry(event: str) -> dict[str, Any]:
        if event in matchers:
            return {"matcher": matchers[event], "hooks": [command]}
        return {"hooks": [command]}

    return {event: [entry(event)] for event in events}


def render_json(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode()
