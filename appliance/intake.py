"""Turning a create request into a new Session (pure apart from the git checks it is given).

The API calls :func:`parse_create` on the JSON body (every field checked, errors name their
field), then :func:`new_session` once the repository has been inspected. Validation that
needs the outside world (the repo, the image, the name's uniqueness) happens in the API;
this module only says what a well-formed request is.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import InvalidInput
from appliance.multirepo import REPOS_SCHEMA, RepoRequest, parse_repos
from appliance.resources import parse_cpu, parse_memory
from appliance.sessions import (
    NAME_MAX,
    NAME_PATTERN,
    AccessMode,
    Agent,
    BackendKind,
    ExtraRepo,
    Session,
    branch_for,
    new_session_id,
    utcnow,
    validate_name,
)
from appliance.tokens import Purpose, derive_token, hash_token

_IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,255}$")
PROMPT_MAX = 100_000
TITLE_MAX = 120
DESCRIPTION_MAX = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateRequest:
    repo_path: str
    name: str | None
    prompt: str
    agent: Agent
    model: str | None
    image: str | None
    cpu: float | None
    memory: str | None
    access_mode: AccessMode
    base: str | None
    skip_permissions: bool
    backend: BackendKind
    #: None: the appliance's default (``[agents] plan_mode``).
    plan_mode: bool | None = None
    print_mode: bool = False
    custom_agent: str | None = None
    title: str | None = None
    description: str | None = None
    #: Further repositories (multi-repo sessions: :mod:`appliance.multirepo`).
    repos: tuple[RepoRequest, ...] = ()


def _enum(body: Mapping[str, Any], key: str, kind: type[Any], default: Any) -> Any:
    raw = body.get(key)
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        allowed = ", ".join(str(v) for v in kind)
        raise InvalidInput(f"{key} {raw!r} is not one of: {allowed}", field=key) from None


def _str(body: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    raw = body.get(key)
    if raw is None or raw == "":
        if required:
            raise InvalidInput(f"{key} is required", field=key)
        return None
    if not isinstance(raw, str):
        raise InvalidInput(f"{key} must be a string", field=key)
    return raw


#: The create request, as the OpenAPI document publishes it (``api/openapi.py``).
CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["repo_path"],
    "additionalProperties": False,
    "properties": {
        "repo_path": {"type": "string", "description": "Absolute path inside a git repo."},
        "name": {"type": "string", "maxLength": NAME_MAX, "pattern": NAME_PATTERN},
        "prompt": {"type": "string", "maxLength": PROMPT_MAX},
        "agent": {"type": "string", "enum": [str(a) for a in Agent]},
        "model": {"type": "string"},
        "image": {"type": "string"},
        "cpu": {"type": ["number", "string"]},
        "memory": {"type": "string"},
        "access_mode": {"type": "string", "enum": [str(m) for m in AccessMode]},
        "base": {"type": "string"},
        "skip_permissions": {"type": "boolean"},
        "backend": {"type": "string", "enum": [str(b) for b in BackendKind]},
        "plan_mode": {"type": "boolean",
                      "description": "Plan before editing (default: [agents] plan_mode)"},
        "print_mode": {"type": "boolean", "description": "Answer the prompt once, then end "
                       "as completed (needs a prompt)"},
        "custom_agent": {"type": "string", "description": "With agent custom: the "
                         "[agents.custom.<name>] to run"},
        "title": {"type": "string", "maxLength": TITLE_MAX},
        "description": {"type": "string", "maxLength": DESCRIPTION_MAX},
        "repos": REPOS_SCHEMA,
    },
}
_KNOWN = frozenset(CREATE_SCHEMA["properties"])


def parse_create(body: Mapping[str, Any], *,
                 backends: Collection[str] = (str(BackendKind.DOCKER),)) -> CreateRequest:
    """A well-formed create request, or a 400 naming the field; ``backends``: the kinds this
    appliance is configured for (any other is refused, never silently run elsewhere)."""
    if not isinstance(body, Mapping):
        raise InvalidInput("the request body must be a JSON object")
    unknown = sorted(str(k) for k in body if k not in _KNOWN)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(_KNOWN))})",
                           field=unknown[0][:100])
    repo = _str(body, "repo_path", required=True)
    assert repo is not None
    name = _str(body, "name")
    if name is not None:
        validate_name(name)
    prompt = _str(body, "prompt") or ""
    if len(prompt) > PROMPT_MAX:
        raise InvalidInput(f"the prompt is over {PROMPT_MAX} characters", field="prompt")
    image = _str(body, "image")
    if image is not None and not _IMAGE_RE.fullmatch(image):
        raise InvalidInput(f"image {image!r} is not a valid image reference", field="image")
    memory = _str(body, "memory")
    if memory is not None:
        parse_memory(memory)
    base = _str(body, "base")
    skip, plan, printing = _modes(body, prompt)
    agent, custom_agent = _agent(body)
    title = clean_text(_str(body, "title"), TITLE_MAX, "title", one_line=True)
    description = clean_text(_str(body, "description"), DESCRIPTION_MAX, "description")
    repos = parse_repos(body.get("repos"))
    return CreateRequest(
        repo_path=repo, name=name, prompt=prompt, agent=agent, model=_str(body, "model"),
        image=image, cpu=parse_cpu(body.get("cpu")), memory=memory,
        access_mode=_enum(body, "access_mode", AccessMode, AccessMode.READ_WRITE), base=base,
        skip_permissions=skip, backend=_backend(body, backends), plan_mode=plan,
        print_mode=printing, custom_agent=custom_agent, title=title, description=description,
        repos=repos)


def _modes(body: Mapping[str, Any], prompt: str) -> tuple[bool, bool | None, bool]:
    """``skip_permissions``, ``plan_mode`` and ``print_mode``, checked (``plan_mode`` may
    be null: the configured default)."""
    skip = body.get("skip_permissions", False)
    if not isinstance(skip, bool):
        raise InvalidInput("skip_permissions must be true or false", field="skip_permissions")
    plan = body.get("plan_mode")
    printing = body.get("print_mode", False)
    for key, flag in (("plan_mode", plan), ("print_mode", printing)):
        if flag is not None and not isinstance(flag, bool):
            raise InvalidInput(f"{key} must be true or false", field=key)
    if printing and not prompt.strip():
        raise InvalidInput("print mode answers a prompt once: give a prompt", field="prompt")
    return skip, plan, printing


def _agent(body: Mapping[str, Any]) -> tuple[Agent, str | None]:
    """The agent, and the custom agent's name when (and only when) it is ``custom``."""
    agent = _enum(body, "agent", Agent, Agent.CLAUDE)
    custom_agent = _str(body, "custom_agent")
    if (agent is Agent.CUSTOM) != (custom_agent is not None):
        raise InvalidInput("custom_agent names the [agents.custom.<name>] to run, with agent "
                           "custom (and only then)", field="custom_agent")
    return agent, custom_agent


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean_text(raw: str | None, limit: int, key: str, *, one_line: bool = False
               ) -> str | None:
    """A title or description as stored: no control or bidirectional characters (a title
    is shown in terminals too), one line for a title, at most ``limit`` characters."""
    if raw is None:
        return None
    text = _CONTROL.sub("", raw.replace("\r", ""))
    if one_line:
        text = " ".join(text.split())
    text = text.strip()
    if len(text) > limit:
        raise InvalidInput(f"the {key} is over {limit} characters", field=key)
    return text


def _backend(body: Mapping[str, Any], available: Collection[str]) -> BackendKind:
    kind: BackendKind = _enum(body, "backend", BackendKind, BackendKind.DOCKER)
    if str(kind) not in available:
        raise InvalidInput(
            f"backend {str(kind)!r} is not configured on this appliance (available: "
            f"{', '.join(sorted(available))}); see [kubernetes] in config.toml", field="backend")
    return kind


def name_stem(text: str) -> str:
    """The first words of ``text`` joined by hyphens, lowercase (empty: no word)."""
    words = re.findall(r"[a-z0-9]+", text.lower())[:4]
    return "-".join(words)[:30].strip("-")


def suggest_name(prompt: str) -> str:
    """A readable name from the prompt's first words plus a short random suffix."""
    return f"{name_stem(prompt) or 'session'}-{secrets.token_hex(2)}"


def new_session(req: CreateRequest, *, name: str, repo_root: Path, subdirectory: str,
                base_ref: str, worktrees_dir: Path, default_image: str,
                default_cpu: float | None, default_memory: str | None, instance_key: bytes,
                default_plan_mode: bool = False, extra_repos: tuple[ExtraRepo, ...] = ()
                ) -> Session:
    sid = new_session_id()
    now = utcnow()
    return Session(
        id=sid,
        name=name,
        repo_path=str(repo_root),
        subdirectory=subdirectory,
        worktree_path=str(worktrees_dir / name),
        branch=branch_for(name),
        base_ref=base_ref,
        agent=req.agent,
        model=req.model,
        backend=req.backend,
        image=req.image or default_image,
        cpu=req.cpu if req.cpu is not None else default_cpu,
        memory=req.memory or default_memory,
        access_mode=req.access_mode,
        initial_prompt=req.prompt,
        skip_permissions=req.skip_permissions,
        plan_mode=default_plan_mode if req.plan_mode is None else req.plan_mode,
        print_mode=req.print_mode,
        custom_agent=req.custom_agent,
        title=req.title or "",
        description=req.description or "",
        proxy_token_hash=hash_token(derive_token(instance_key, sid, Purpose.PROXY)),
        hook_token_hash=hash_token(derive_token(instance_key, sid, Purpose.HOOK)),
        extra_repos=extra_repos,
        created_at=now,
        updated_at=now,
    )
