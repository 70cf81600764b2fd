"""The answers the session's controls give instead of forwarding. Pure: facts in, Respond out.

Each says what happened and what to do, in a form the agent shows its user: a spent
budget is a 429 in the model API's own error format (Anthropic's or OpenAI's), with
``x-should-retry: false`` so the SDKs report it at once instead of retrying; an egress
refusal and a honeytoken are 403s with a plain sentence. Each carries the audit ``note``.
"""

from __future__ import annotations

import json

from appliance.audit import Decision
from proxy.honeytoken import Leak
from proxy.meter import Api
from proxy.policy import Respond

JSON = b"application/json"


def budget_exceeded(api: Api, session: str, why: str) -> Respond:
    message = (f"{why}. Clauderon stopped this model request; raise the budget with "
               f"`clauderon budget set {session} ...` or from the web UI, and the agent can "
               "go on (no restart needed).")
    if api is Api.ANTHROPIC:
        doc: dict[str, object] = {"type": "error", "error": {
            "type": "rate_limit_error", "message": message}}
    else:
        doc = {"error": {"type": "insufficient_quota", "code": "insufficient_quota",
                         "message": message, "param": None}}
    return Respond(status=429, body=json.dumps(doc), decision=Decision.BLOCKED,
                   error_type="BUDGET_EXCEEDED", content_type=JSON,
                   headers=[(b"x-should-retry", b"false")], note=f"budget: {why}")


def egress_denied(session: str, mode: str, host: str, *, why: str) -> Respond:
    return Respond(
        status=403,
        body=(f"Blocked by Clauderon: session {session!r} may not reach {host} ({why}; its "
              f"egress mode is {mode}). Allow it with `clauderon egress allow {session} "
              f"{host}` or from the web UI.\n"),
        decision=Decision.DENIED, error_type="EGRESS_DENIED", note=f"egress {mode}: {why}")


def honeytoken(session: str, host: str, leak: Leak) -> Respond:
    return Respond(
        status=403,
        body=(f"Blocked by Clauderon: this request to {host} carried {leak.note} "
              f"(session {session!r}). Placeholders only work at their own service; the "
              "attempt was recorded and the session's owner alerted.\n"),
        decision=Decision.HONEYTOKEN, error_type="HONEYTOKEN", close=True,
        note=f"honeytoken: {leak.note}")


def remote_refused(session: str, host: str, why: str) -> Respond:
    """A push or a GitHub API write that would move more than the session's branch."""
    return Respond(
        status=403,
        body=(f"Blocked by Clauderon: {why}. Session {session!r} works on its own branch "
              f"clauderon/{session}; the repository's other refs are its owner's "
              f"({host}).\n"),
        decision=Decision.DENIED, error_type="REF_FORBIDDEN", note=f"remote: {why}")


def owner_refused(host: str, why: str) -> Respond:
    """A write of the appliance's own identity beyond session branches and their pulls."""
    return Respond(
        status=403,
        body=f"Blocked by Clauderon: {why} ({host}).\n",
        decision=Decision.DENIED, error_type="REF_FORBIDDEN", note=f"remote: {why}")
