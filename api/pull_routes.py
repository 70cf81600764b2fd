"""Push, pull request and merge routes: a session's branch on its remote.

Handlers parse, check the verb (:mod:`appliance.verbs`) and call :mod:`appliance.pulls`,
which pushes from the user's repository with the host's credential (the proxy's, under the
appliance's own identity: never inside the container) and reads or merges the pull request
through GitHub's API the same way. What was learned is on the session (``pull``) when they
answer, and on ``/ws/events`` for every other UI.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from api.body import json_body
from api.context import current
from api.openapi import SESSION, RouteDoc, documented, err, ok, one_session
from appliance import pulls, verbs, wire
from appliance.errors import InvalidInput
from appliance.verbs import Verb

blueprint = Blueprint("pulls", __name__)

ANSWER = {"type": "object", "required": ["session"], "properties": {
    "session": SESSION,
    "commit": {"type": "string", "description": "The commit pushed, or the merge's"}}}


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{key} must be true or false", field=key)
    return value


@blueprint.post("/api/sessions/<ref>/push")
@documented(RouteDoc(
    summary="Push the session's branch to the repository's remote with the host's "
            "credential (from your repository, after bringing the newest commit in); "
            "optionally open a pull request from it",
    body={"type": "object", "additionalProperties": False, "properties": {
        "force": {"type": "boolean", "description": "replace the remote branch's history"},
        "pr": {"type": "boolean", "description": "open a pull request when none is open"},
        "draft": {"type": "boolean", "description": "open it as a draft"},
        "commit": {"type": "string", "description": "The commit the person looked at (the "
                   "diff's committed part): refused (409), nothing sent, when the branch "
                   "is at another"}}},
    responses={"200": ok(ANSWER), "400": err("No https or GitHub remote"),
               "404": err("No such session"),
               "409": err("The remote branch has commits the session's does not (push with "
                          "force), the branch moved since the commit named, or the phase "
                          "does not allow it"),
               "502": err("GitHub or the proxy failed")}))
async def push(ref: str) -> dict[str, Any]:
    ctx = current()
    body = await json_body(known=("force", "pr", "draft", "commit"))
    expect = body.get("commit")
    if expect is not None and not isinstance(expect, str):
        raise InvalidInput("commit must be a commit id", field="commit")
    session = await ctx.resolve(ref)
    verbs.check(Verb.PUSH, session)
    done = await pulls.push(ctx.settings, ctx.instance_key, ctx.store, session,
                            force=_flag(body, "force"), open_pr=_flag(body, "pr"),
                            draft=_flag(body, "draft"), expect=expect)
    ctx.hub.poke()
    assert done.pull is not None
    return {"session": wire.session_json(done), "commit": done.pull.pushed_sha or ""}


@blueprint.post("/api/sessions/<ref>/pull/refresh")
@documented(RouteDoc(
    summary="Read the branch's pull request again now: state, checks, review, mergeability",
    responses={"200": one_session(),
               "400": err("Not a GitHub repository"), "404": err("No such session"),
               "502": err("GitHub or the proxy failed")}))
async def refresh(ref: str) -> dict[str, Any]:
    ctx = current()
    session = await ctx.resolve(ref)
    done = await pulls.refresh(ctx.settings, ctx.instance_key, ctx.store, session)
    ctx.hub.poke()
    return {"session": wire.session_json(done)}


@blueprint.post("/api/sessions/<ref>/merge")
@documented(RouteDoc(
    summary="Merge the branch's open pull request on GitHub (the head must be the one last "
            "read); optionally delete the remote branch after (your repository keeps it)",
    body={"type": "object", "required": ["method"], "additionalProperties": False,
          "properties": {"method": {"type": "string", "enum": list(pulls.METHODS)},
                         "delete_branch": {"type": "boolean"},
                         "head_sha": {"type": "string", "description": "The head commit the "
                                      "person saw: refused (409) when the head is another"}}},
    responses={"200": ok(ANSWER), "400": err("Bad method, or not a GitHub repository"),
               "403": err("GitHub does not allow it"), "404": err("No such session"),
               "409": err("No open pull request, not mergeable (GitHub's 405), or its head "
                          "moved (GitHub's 409)"),
               "502": err("GitHub or the proxy failed")}))
async def merge(ref: str) -> dict[str, Any]:
    ctx = current()
    body = await json_body(known=("method", "delete_branch", "head_sha"))
    method = body.get("method")
    head = body.get("head_sha")
    if head is not None and not isinstance(head, str):
        raise InvalidInput("head_sha must be a commit id", field="head_sha")
    if not isinstance(method, str):
        raise InvalidInput(f"method must be one of {', '.join(pulls.METHODS)}", field="method")
    session = await ctx.resolve(ref)
    if verbs.refusal(Verb.MERGE, session) is not None and session.phase in \
            verbs.RULES[Verb.MERGE].allowed:
        # What is known may be old (the agent opened the pull request itself): look again.
        session = await pulls.refresh(ctx.settings, ctx.instance_key, ctx.store, session)
    verbs.check(Verb.MERGE, session)
    done, commit = await pulls.merge(ctx.settings, ctx.instance_key, ctx.store, session,
                                     method=method, delete_branch=_flag(body, "delete_branch"),
                                     head_sha=head)
    ctx.hub.poke()
    return {"session": wire.session_json(done), "commit": commit}
