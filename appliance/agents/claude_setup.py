"""Claude Code in a session's container: onboarding state, transcript path, start script.

``~/.claude.json`` marks onboarding done, trusts the working directory and approves the
placeholder API key (by its last 20 characters, which is how Claude Code remembers an
approved key), so the CLI never stops at a first-run prompt. The start script runs Claude
with the session id as its own session id, so its transcript lands at a known path
(:func:`transcript_path`); when that transcript exists (the container was recreated), it
resumes the conversation instead of starting a new one.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from appliance.agents.modes import resume_or_start
from appliance.sessions import Session

#: The placeholder Claude Code sees in ``ANTHROPIC_API_KEY`` (appliance.contract.PLACEHOLDERS).
APPROVED_KEY_SUFFIX_LEN = 20


def claude_json(*, workdir: str, api_key_placeholder: str,
                skip_permissions: bool) -> dict[str, Any]:
    return {
        "hasCompletedOnboarding": True,
        "bypassPermissionsModeAccepted": skip_permissions,
        "autoUpdates": False,
        "projects": {workdir: {"hasTrustDialogAccepted": True,
                               "hasCompletedProjectOnboarding": True}},
        "customApiKeyResponses": {
            "approved": [api_key_placeholder[-APPROVED_KEY_SUFFIX_LEN:]],
            "rejected": [],
        },
    }


def project_folder(workdir: str) -> str:
    """Claude's folder name for a working directory (every non-alphanumeric becomes ``-``)."""
    return re.sub(r"[^A-Za-z0-9]", "-", workdir)


def transcript_path(*, home: str, workdir: str, session_id: str) -> str:
    """Where Claude writes the session's transcript, relative to ``home``."""
    return f"{home}/.claude/projects/{project_folder(workdir)}/{session_id}.jsonl"


def _common(session: Session) -> list[str]:
    common = []
    if session.model:
        common += ["--model", session.model]
    if session.plan_mode:
        # Claude's own plan mode: read-only until a person accepts the plan.
        common += ["--permission-mode", "plan"]
        if session.skip_permissions:
            common.append("--allow-dangerously-skip-permissions")
    elif session.skip_permissions:
        common.append("--dangerously-skip-permissions")
    return common


def print_argv(session: Session) -> list[str]:
    """Print mode: one answer, printed; the transcript lands where it always does."""
    return ["claude", "--print", "--session-id", session.id, *_common(session), "--",
            session.initial_prompt]


def start_script(session: Session, *, workdir: str) -> str:
    common = _common(session)
    resume = ["claude", "--resume", session.id, *common]
    fresh = ["claude", "--session-id", session.id, *common]
    if session.initial_prompt:
        fresh += ["--", session.initial_prompt]
    transcript = transcript_path(home="$HOME", workdir=workdir, session_id=session.id)
    # Resumed when the transcript holds the conversation's first message. An agent killed
    # before that leaves a transcript of settings only: Claude finds no conversation in it
    # to resume, and will not start afresh under an id whose file exists, so that file is
    # moved aside (kept) and the session starts again, its prompt sent once more.
    return f't="{transcript}"\n' + resume_or_start(
        '''grep -qs '"type":"user"' "$t"''', shlex.join(resume),
        'if [ -e "$t" ]; then mv -f "$t" "$t.unstarted"; fi', shlex.join(fresh))
