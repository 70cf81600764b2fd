"""The title call: the thin trio shell that sends :mod:`appliance.titles`' request.

It goes through the appliance's own proxy (127.0.0.1), authenticated as the appliance
itself (:func:`~appliance.github_client.owner_proxy`: :data:`~appliance.tokens.APPLIANCE_ID`,
with a proxy token derived from the instance key like a session's): the proxy swaps the
appliance's placeholder for the user's real credential, meters the call and writes its
audit line, exactly as for an agent. The appliance never holds the real credential either.

Bounded (``[titles] timeout_seconds``) and never raising: :func:`suggest` answers None when
no model is configured, the proxy or the model fails, or the answer is unusable; the
caller then names the session from the prompt.
"""

from __future__ import annotations

import logging

import httpx
import trio

from appliance.config import Settings
from appliance.github_client import owner_proxy
from appliance.placeholders import placeholder_env
from appliance.titles import TitleIdea, parse_answer, title_request
from appliance.tokens import APPLIANCE_ID

log = logging.getLogger(__name__)

#: The placeholder variable whose value stands for each provider's credential.
_PLACEHOLDER = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY",
                "gemini": "GEMINI_API_KEY"}
MAX_ANSWER = 64 * 1024


async def suggest(settings: Settings, key: bytes, prompt: str) -> TitleIdea | None:
    """A title idea from the configured model, or None (not configured, failed, late)."""
    if not settings.titles_model or not prompt.strip():
        return None
    provider = settings.titles_provider
    request = title_request(provider, settings.titles_model, prompt,
                            placeholder_env(key, APPLIANCE_ID)[_PLACEHOLDER[provider]])
    proxy = owner_proxy(settings, key)
    ca = settings.ca_cert_path
    with trio.move_on_after(settings.titles_timeout_seconds):
        try:
            # The whole call sits under the deadline above; httpx's own is its ceiling.
            timeout = httpx.Timeout(settings.titles_timeout_seconds)
            async with httpx.AsyncClient(proxy=proxy, verify=str(ca) if ca.exists() else True,
                                         trust_env=False, timeout=timeout) as client, \
                    client.stream("POST", f"https://{request.host}{request.path}",
                                  headers=request.headers, json=request.body) as answer:
                body = b""
                async for chunk in answer.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER:
                        log.warning("title call: the answer is over %d bytes", MAX_ANSWER)
                        return None
            if answer.status_code != 200:
                log.warning("title call: %s answered %d", request.host, answer.status_code)
                return None
            return parse_answer(provider, body)
        except (httpx.HTTPError, OSError) as exc:
            log.warning("title call failed: %s", exc)
            return None
    log.warning("title call: no answer within %.0fs", settings.titles_timeout_seconds)
    return None
