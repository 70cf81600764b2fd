"""The credentials doctor: what is configured, where from, and which agents can work (pure).

Only the proxy holds credentials. When it loads them (at start and on every SIGHUP) it
publishes :func:`published` -- each credential's name, source and *masked* value, and the
loader's warnings -- into the database (``meta``, key :data:`META_KEY`), through its
ledger. The API reads that back and answers ``GET /api/credentials`` with :func:`report`:
every known credential (set or not), and for each agent whether its model can be reached
with what is set (:data:`AGENT_CREDENTIALS`) and, when not, what to set
(:func:`missing_hint`). ``clauderon status`` prints it; ``clauderon create`` warns from it.
No value ever passes through here: the proxy masks before it publishes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appliance.credentials.chatgpt import unsigned_copy
from appliance.credentials.model import SPECS, CredentialSet
from appliance.sessions import Agent

META_KEY = "credentials"
#: The person's ChatGPT login as a session's Codex may see it, no token in it (the account
#: id and an unsigned copy of the id_token's claims), when Codex has no API key; else ``{}``.
CODEX_LOGIN_KEY = "codex_login"

#: What each agent's model host takes (the proxy's rules for api.anthropic.com and
#: api.openai.com, ``proxy/rules.py``; a test holds the two in step). Any one will do.
AGENT_CREDENTIALS: Mapping[Agent, tuple[str, ...]] = {
    Agent.CLAUDE: ("anthropic_oauth_token", "anthropic_api_key"),
    Agent.CODEX: ("openai_api_key",),
}
#: Codex's ChatGPT login, each part needed: with no API key, a session's Codex signs in with
#: it (:func:`published_login`), so Codex is ready with it too.
CHATGPT_LOGIN = ("codex_access_token", "codex_account_id", "codex_id_token")


@dataclass(frozen=True, slots=True, kw_only=True)
class Shown:
    """One credential as a person may see it: never its value."""

    name: str
    env: tuple[str, ...]
    source: str | None  # None: not set
    masked: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Readiness:
    agent: str
    ready: bool
    using: str | None  # the credential the proxy will put in (the first set of the agent's)
    hint: str | None  # what to set, when not ready


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    published: bool  # False: no proxy has loaded credentials into this database yet
    loaded_at: str | None
    credentials: tuple[Shown, ...]
    warnings: tuple[str, ...]
    agents: tuple[Readiness, ...]


def published(creds: CredentialSet, warnings: Iterable[str], now: datetime) -> str:
    """What the proxy writes after loading: names, sources, masked values, warnings."""
    return json.dumps({"loaded_at": now.isoformat(), "credentials": creds.summary(),
                       "warnings": list(warnings)})


def published_login(creds: CredentialSet) -> str:
    """What the proxy writes under :data:`CODEX_LOGIN_KEY`: Codex logs in with ChatGPT
    when the person has that login (an access token, an account id, an id_token) and no
    API key."""
    if "openai_api_key" in creds or not all(n in creds for n in CHATGPT_LOGIN):
        return "{}"
    account, id_token = (creds.get(n) for n in CHATGPT_LOGIN[1:])
    assert account is not None and id_token is not None
    return json.dumps({"account_id": account.value, "id_token": unsigned_copy(id_token.value)})


def codex_login(raw: str | None) -> dict[str, str] | None:
    """The login :func:`published_login` wrote, or None (Codex goes with the API key)."""
    doc = _parse(raw) or {}
    login = {k: v for k in ("account_id", "id_token") if isinstance(v := doc.get(k), str) and v}
    return login if len(login) == 2 else None


def missing_hint(agent: Agent) -> str:
    """What to do when ``agent`` has no model credential."""
    names = AGENT_CREDENTIALS[agent]
    env = " or ".join(next(s.env_vars[0] for s in SPECS if s.name == n) for n in names)
    login = (" (or sign Codex in with ChatGPT where the appliance runs: `codex login`, "
             "its ~/.codex/auth.json)") if agent is Agent.CODEX else ""
    return (f"no model credential for {agent}: set {env}{login} where the appliance runs "
            f"(its environment, an op:// 1Password reference, or a file secrets/{names[-1]} "
            "in CLAUDERON_HOME), then restart the proxy or send it SIGHUP")


def _parse(raw: str | None) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def report(raw: str | None) -> Report:
    """The doctor's answer from what the proxy published (``raw``: the ``meta`` value)."""
    doc = _parse(raw)
    found: dict[str, Mapping[str, Any]] = {}
    for item in (doc or {}).get("credentials") or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            found[item["name"]] = item
    shown = tuple(
        Shown(name=spec.name, env=spec.env_vars,
              source=str(found[spec.name].get("source")) if spec.name in found else None,
              masked=str(found[spec.name].get("masked")) if spec.name in found else None)
        for spec in SPECS)
    agents = []
    for agent, names in AGENT_CREDENTIALS.items():
        using = next((n for n in names if n in found), None)
        if using is None and agent is Agent.CODEX and all(n in found for n in CHATGPT_LOGIN):
            using = CHATGPT_LOGIN[0]
        agents.append(Readiness(agent=str(agent), ready=using is not None, using=using,
                                hint=None if using else missing_hint(agent)))
    warnings = [str(w) for w in (doc or {}).get("warnings") or [] if isinstance(w, str)]
    loaded_at = (doc or {}).get("loaded_at")
    return Report(published=doc is not None,
                  loaded_at=loaded_at if isinstance(loaded_at, str) else None,
                  credentials=shown, warnings=tuple(warnings), agents=tuple(agents))
