"""The answers the session's controls give instead of forwarding. Pure: facts in, Respond out.

Each says what happened and what to do, in a form the agent shows its user: a spent
budget is a 429 in the model API's own error format (Anthropic's or OpenAI's), with
``x-should-retry: false`` so the SDKs report it at once instead of retrying; an egress
refusal and a honeytoken are 403s with a plain sentence. Each carries the audit ``note``.
"""

from __future__ import annotations

import json

from appliance.audit import AUDIT_RESERVE_BYTES, AUDIT_RESERVE_FILES, Decision, Room
from proxy.honeytoken import Leak
from proxy.meter import Api
from proxy.pace import Pace
from proxy.policy import Respond

JSON = b"application/json"


def budget_exceeded(api: Api, session: str, why: str) -> Respond:
    message = (f"{why}. Clauderon stopped this model request; raise the budget with "
               f"`clauderon budget set {session} ...` or from the web UI, and the agent can "
               "go on (no restart needed).")
    return _model_error(api, message, note=f"budget: {why}")


def unmeterable(api: Api, session: str, path: str) -> Respond:
    """A model request whose usage Clauderon cannot meter, from a session with a budget."""
    message = (f"session {session} has a budget, and Clauderon cannot meter what {path} "
               "spends, so it stopped this model request. Under a budget, use the metered "
               "APIs (Anthropic Messages, OpenAI Responses and Chat Completions, Gemini's "
               "generateContent), or clear "
               f"the budget with `clauderon budget clear {session}` or from the web UI.")
    return _model_error(api, message, note=f"budget: {path} cannot be metered")


def crowded(api: Api, session: str, most: int) -> Respond:
    """A model call that found the session's calls under its budget all taken too long."""
    message = (f"session {session} has a budget, and {most} of its model calls were running "
               "for as long as this one could wait (each is checked against the budget as "
               "it starts and counted as it ends, so only so many run at once); try again.")
    return _model_error(api, message, note="budget: model calls all running", retry=True)


def _model_error(api: Api, message: str, *, note: str, retry: bool = False) -> Respond:
    """A 429 in the model API's own error format (Anthropic's, Gemini's, else OpenAI's)."""
    if api is Api.ANTHROPIC:
        doc: dict[str, object] = {"type": "error", "error": {
            "type": "rate_limit_error", "message": message}}
    elif api is Api.GEMINI:
        doc = {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}}
    else:
        doc = {"error": {"type": "insufficient_quota", "code": "insufficient_quota",
                         "message": message, "param": None}}
    return Respond(status=429, body=json.dumps(doc), decision=Decision.BLOCKED,
                   error_type="BUDGET_EXCEEDED", content_type=JSON,
                   headers=[(b"x-should-retry", b"true" if retry else b"false")], note=note)


def _blocked(said: str, error_type: str, note: str, *,
             decision: Decision = Decision.DENIED, close: bool = False) -> Respond:
    """A 403 with a plain sentence."""
    return Respond(status=403, body=f"Blocked by Clauderon: {said}\n", decision=decision,
                   error_type=error_type, close=close, note=note)


def egress_denied(session: str, mode: str, host: str, *, why: str) -> Respond:
    return _blocked(f"session {session!r} may not reach {host} ({why}; its egress mode is "
                    f"{mode}). Allow it with `clauderon egress allow {session} {host}` or "
                    "from the web UI.", "EGRESS_DENIED", f"egress {mode}: {why}")


def honeytoken(session: str, host: str, leak: Leak) -> Respond:
    return _blocked(f"this request to {host} carried {leak.note} (session {session!r}). "
                    "Placeholders only work at their own service; the attempt was recorded "
                    "and the session's owner alerted.", "HONEYTOKEN",
                    f"honeytoken: {leak.note}", decision=Decision.HONEYTOKEN, close=True)


def too_many_tunnels(session: str, pace: Pace, retry_after: int) -> Respond:
    """A CONNECT that came well ahead of the session's pace of new tunnels."""
    return Respond(status=429, body=(
        f"Held back by Clauderon: session {session!r} opens tunnels faster than its pace "
        f"({pace.per_hour} an hour, {pace.burst} at once), which keeps the proxy's time for "
        f"the other sessions. Reuse connections (keep-alive); try again in {retry_after} s.\n"),
        decision=Decision.BLOCKED, error_type="TUNNEL_PACE",
        headers=[(b"retry-after", str(retry_after).encode())],
        note=f"pace: tunnels over {pace.per_hour} an hour", close=True)


def paced(session: str, credential: str, pace: Pace, retry_after: int) -> Respond:
    """A request with a credential that came well ahead of the session's pace for it: JSON
    whose ``message`` GitHub's clients show and whose ``error.message`` the model SDKs do."""
    said = (f"Held back by Clauderon: session {session!r} sends requests with {credential} "
            f"faster than its pace ({pace.per_hour} an hour, {pace.burst} at once), which "
            f"keeps the credential's quota for the others. Try again in {retry_after} s; "
            "its owner can change the pace in proxy.toml [paces].")
    doc = {"message": said, "error": {"type": "rate_limit_error", "message": said}}
    return Respond(status=429, body=json.dumps(doc), decision=Decision.BLOCKED,
                   error_type="PACED", content_type=JSON,
                   headers=[(b"retry-after", str(retry_after).encode())],
                   note=f"pace: {credential} over {pace.per_hour} an hour")


def credential_use(session: str, credential: str, why: str) -> Respond:
    """A request that would mint a credential or publish with the person's."""
    return _blocked(f"{why} (session {session!r}).", "CREDENTIAL_USE",
                    f"credential {credential}: {why}")


def refresh_query(session: str, credential: str) -> Respond:
    """A token refresh whose URL has a query, which a server may read the grant from."""
    why = ("a token refresh URL has no query (the Codex CLI sends none); the proxy puts "
           f"the person's {credential} only into the body, so send the refresh's parameters "
           "there")
    return Respond(status=400, body=f"Refused by Clauderon: {why} (session {session!r}).\n",
                   decision=Decision.DENIED, error_type="CREDENTIAL_USE",
                   note=f"credential {credential}: {why}")


def remote_refused(session: str, host: str, why: str) -> Respond:
    """A push or a GitHub API write that would move more than the session's branch."""
    return _blocked(f"{why}. Session {session!r} works on its own branch clauderon/{session}; "
                    f"the repository's other refs are its owner's ({host}).", "REF_FORBIDDEN",
                    f"remote: {why}")


def owner_refused(host: str, why: str) -> Respond:
    """A write of the appliance's own identity beyond session branches and their pulls."""
    return _blocked(f"{why} ({host}).", "REF_FORBIDDEN", f"remote: {why}")


def unrecordable(room: Room) -> Respond:
    """The audit log cannot take the request's line: nothing is forwarded (a 503 the agent
    may retry once space is freed)."""
    files = ("" if room.free_files is None else
             f" and room for {room.free_files} more files (it keeps {AUDIT_RESERVE_FILES})")
    return Respond(
        status=503, decision=Decision.BLOCKED, error_type="AUDIT_UNAVAILABLE", close=True,
        body=(f"Clauderon cannot record this request: the disk holding its audit log has "
              f"{room.free_bytes // 2**20} MiB free (it keeps {AUDIT_RESERVE_BYTES // 2**20} "
              f"MiB){files}, or refuses writes, and the proxy forwards nothing it cannot "
              "record. Free disk space on the appliance's host (`clauderon status` shows it "
              "and the sessions using the most; their workspaces are under its worktrees "
              "folder); requests go through again at once.\n"),
        note="audit log unwritable")


def audit_share(session: str, bound: int) -> Respond:
    """``session``'s audit lines of the day reached ``audit_bytes_per_day``: a 429 (its
    refusals are counted a line a minute, not a line each: ``auditshare.py``)."""
    return Respond(
        status=429, decision=Decision.BLOCKED, error_type="AUDIT_SHARE",
        headers=[(b"retry-after", b"3600")],
        body=(f"Clauderon refused this request: session {session!r} has sent so many today "
              f"that their audit lines reached {_size(bound)} (`audit_bytes_per_day` "
              "in proxy.toml), and every line is kept on the appliance's disk. Its requests "
              "are refused until the next day (UTC), counted a line a minute; the other "
              "sessions go on. Stop the loop sending them, or raise the bound and reload "
              "the proxy.\n"),
        note="audit share spent")


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n // 1024} KiB"
