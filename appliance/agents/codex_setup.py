"""Codex in a session's container: ``config.toml``, a dummy ``auth.json``, start script.

The config sends Codex to the OpenAI Responses API at its real address
(``https://api.openai.com/v1``, reached through the proxy like everything else) over plain
HTTP streaming: ``supports_websockets = false`` skips the WebSocket attempts a proxy-less
setup would make first. The key comes from ``OPENAI_API_KEY``, a placeholder the proxy
replaces. ``notify`` runs the status hook when a turn completes. ``auth.json`` holds the
same placeholder so Codex never asks to log in. The start script resumes the last
conversation when one exists (the container was recreated).

When the person's Codex login is ChatGPT's and there is no API key, Codex runs as logged in
with ChatGPT instead (its own provider, ``chatgpt.com/backend-api/codex``): ``auth.json``
holds the account id, an unsigned copy of the id_token's claims and stand-ins for the
access and refresh tokens (the session's own ChatGPT placeholder), which the proxy replaces
(``proxy/inject.py``, ``proxy/token_refresh.py``) in requests that carry it alone.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping

from appliance.agents.hooks import HOOK_SCRIPT_PATH
from appliance.agents.modes import plan_first, resume_or_start
from appliance.sessions import Session

PROVIDER = "clauderon"
BASE_URL = "https://api.openai.com/v1"


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def config_toml(session: Session, *, workdir: str, chatgpt: bool = False) -> str:
    """``chatgpt``: Codex's own provider, for its ChatGPT login."""
    lines = ["# Written by clauderon at every start; changes here are replaced."]
    if not chatgpt:
        lines.append(f"model_provider = {_toml_str(PROVIDER)}")
    if session.model:
        lines.append(f"model = {_toml_str(session.model)}")
    if session.skip_permissions:
        lines += ['approval_policy = "never"', 'sandbox_mode = "danger-full-access"']
    lines += [
        f'notify = ["bash", {_toml_str(HOOK_SCRIPT_PATH)}]', ""]
    if not chatgpt:
        lines += [
            f"[model_providers.{PROVIDER}]",
            'name = "OpenAI through the clauderon proxy"',
            f"base_url = {_toml_str(BASE_URL)}",
            'env_key = "OPENAI_API_KEY"',
            'wire_api = "responses"',
            "supports_websockets = false",
            "",
        ]
    lines += [
        f"[projects.{_toml_str(workdir)}]",
        'trust_level = "trusted"',
        "",
    ]
    return "\n".join(lines)


def auth_json(api_key_placeholder: str) -> str:
    return json.dumps({"OPENAI_API_KEY": api_key_placeholder}) + "\n"


def chatgpt_auth_json(login: Mapping[str, str]) -> str:
    """Logged in with ChatGPT: ``login``'s account id, id_token copy and ``last_refresh``;
    for the tokens, the session's ChatGPT placeholder (``login["placeholder"]``), which
    the proxy alone takes for the person's login."""
    return json.dumps({"OPENAI_API_KEY": None, "tokens": {
        "id_token": login["id_token"], "access_token": login["placeholder"],
        "refresh_token": login["placeholder"], "account_id": login["account_id"]},
        "last_refresh": login["last_refresh"]}) + "\n"


def _common(session: Session) -> list[str]:
    common = []
    if session.model:
        common += ["--model", session.model]
    if session.skip_permissions:
        common.append("--dangerously-bypass-approvals-and-sandbox")
    return common


def prompt_for(session: Session) -> str:
    """Codex has no plan mode of its own: plan mode is a plan-first prompt."""
    return plan_first(session.initial_prompt) if session.plan_mode else session.initial_prompt


def print_argv(session: Session) -> list[str]:
    """Print mode: ``codex exec`` answers once (its rollout is the transcript)."""
    return ["codex", "exec", "--skip-git-repo-check", *_common(session), "--",
            prompt_for(session)]


def start_script(session: Session) -> str:
    common = _common(session)
    fresh = ["codex", *common]
    prompt = prompt_for(session)
    if prompt:
        fresh += ["--", prompt]
    return resume_or_start('ls "$HOME"/.codex/sessions/*/*/*/rollout-*.jsonl >/dev/null 2>&1',
                           shlex.join(["codex", "resume", "--last", *common]), shlex.join(fresh))
