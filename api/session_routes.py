"""Session routes: list, create, show, delete, the verbs, access mode, attach, events.

Handlers only parse, call the core and answer: what a verb may do in which phase is
:mod:`appliance.verbs`'s to say, a create's checks are :func:`appliance.admission.admit`'s,
the JSON is :mod:`appliance.wire`'s. They write *desired* state to the store and return; the
reconciler does the work, whose progress shows on ``/ws/events`` and
``GET /api/sessions/{id}/events``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import trio
from quart import Blueprint, Response, request

from api.body import choice, json_body
from api.context import current
from api.openapi import EVENT, OBJECT, SESSION, RouteDoc, documented, err, ok, one_session
from appliance import sentstore, titlecall, titles, verbs, wire
from appliance.admission import admit, check_agent
from appliance.agents.boot import attach_argv
from appliance.errors import Conflict, InvalidInput, ServiceUnavailable
from appliance.intake import (
    DESCRIPTION_MAX,
    TITLE_MAX,
    CreateRequest,
    clean_text,
    parse_create,
)
from appliance.sessions import AccessMode, Phase, Session
from appliance.verbs import Verb

#: How long deleting a session that is still being created waits for its create to be
#: cancelled and undone before answering (the delete goes on in the background after).
DELETE_WAIT_SECONDS = 30.0

blueprint = Blueprint("sessions", __name__)

LIST = {"type": "object", "required": ["sessions"],
        "properties": {"sessions": {"type": "array", "items": SESSION}}}
FILTER_Q = (("filter", "active | waiting | failed | archived (default: all but archived)"),
            ("archived", "true: only archived sessions (as filter=archived)"),
            ("all", "true: every session"))


def one(session: Session, status: int = 200) -> tuple[dict[str, Any], int]:
    return {"session": wire.session_json(session)}, status


async def act(ref: str, verb: Verb, **extra: Any) -> Session:
    """Apply ``verb`` to a session: checked against its rule inside the store's transaction
    (the phase may change under us), limits checked for verbs that revive compute."""
    ctx = current()
    session = await ctx.resolve(ref)
    limits = ctx.settings.limits if verbs.RULES[verb].revives else None
    changes = {**verbs.changes_for(verb, session), **extra}
    return await ctx.write(ctx.store.sync.update_session, session.id,
                           expect=lambda now: verbs.check(verb, now), limits=limits, **changes)


async def titled(req: CreateRequest) -> CreateRequest:
    """The request with a name, title and description from the prompt where it gave none:
    the configured model's (bounded), else the prompt's own words."""
    if not req.prompt.strip() or (req.name is not None and req.title is not None):
        return req
    ctx = current()
    idea = await titlecall.suggest(ctx.settings, ctx.instance_key, req.prompt) \
        or titles.fallback(req.prompt)
    return replace(req, name=req.name or titles.session_name(idea),
                   title=req.title if req.title is not None else idea.title,
                   description=req.description if req.description is not None
                   else idea.description)


def _list_filter() -> wire.ListFilter | Literal["unarchived"] | None:
    raw = request.args.get("filter")
    if raw is None:
        if request.args.get("all") == "true":
            return None
        if request.args.get("archived") == "true":
            return wire.ListFilter.ARCHIVED
        return "unarchived"
    try:
        return wire.ListFilter(raw)
    except ValueError:
        known = ", ".join(str(f) for f in wire.ListFilter)
        raise InvalidInput(f"filter {raw[:40]!r} is not one of: {known}", field="filter") \
            from None


@blueprint.get("/api/sessions")
@documented(RouteDoc(summary="List sessions (with filter=, the ones that filter shows)",
                     query=FILTER_Q, responses={"200": ok(LIST), "400": err("Bad filter")}))
async def list_sessions() -> Response:
    ctx = current()
    chosen = _list_filter()
    views = await ctx.store.run(lambda: ctx.store.sync.list_views(chosen))
    # The views are stored as JSON already: join them, do not parse and re-encode.
    return Response('{"sessions": [' + ", ".join(views) + "]}",
                    content_type="application/json")


@blueprint.post("/api/sessions")
@documented(RouteDoc(
    summary="Create a session (asynchronous)",
    body={"$ref": "#/components/schemas/CreateSession"},
    responses={"202": one_session("Accepted: the reconciler creates it; watch /ws/events"),
               "400": err("Invalid input"), "409": err("Name or branch taken"),
               "429": err("Too many sessions, or creates at once"),
               "503": err("Container engine not reachable")}))
async def create_session() -> tuple[dict[str, Any], int]:
    ctx = current()
    req = parse_create(await json_body(), backends=ctx.backends)
    check_agent(req, ctx.settings)  # before the title call: a bad agent fails at once
    req = await titled(req)
    session = await admit(req, settings=ctx.settings, store=ctx.store, backends=ctx.backends,
                          instance_key=ctx.instance_key)
    await ctx.write(ctx.store.sync.insert_session, session, limits=ctx.settings.limits)
    await ctx.store.run(sentstore.record_prompt, ctx.store.sync, session)
    ctx.metrics.creates.labels(agent=str(session.agent), backend=str(session.backend)).inc()
    return one(session, 202)


@blueprint.get("/api/sessions/<ref>")
@documented(RouteDoc(summary="One session, by id or name",
                     responses={"200": one_session(), "404": err("No such session")}))
async def get_session(ref: str) -> tuple[dict[str, Any], int]:
    return one(await current().resolve(ref))


@blueprint.delete("/api/sessions/<ref>")
@documented(RouteDoc(summary="Delete a session (asynchronous; the branch is kept)",
                     responses={"202": one_session("Accepted"),
                                "404": err("No such session")}))
async def delete_session(ref: str) -> tuple[dict[str, Any], int]:
    ctx = current()
    before = await ctx.resolve(ref)
    session = await act(ref, Verb.DELETE)
    if before.phase is Phase.CREATING:
        # Its create may be queued or under way in the reconciler, which cancels it and
        # removes what it made: answer once that is done, so nothing appears afterwards.
        with trio.move_on_after(DELETE_WAIT_SECONDS):
            cursor = ctx.hub.latest
            while await ctx.store.run(ctx.store.sync.get_session, session.id) is not None:
                await ctx.hub.wait_beyond(cursor)  # the reconciler wrote something
                cursor = ctx.hub.latest
    return one(session, 202)


def verb_route(on: Blueprint, verb: Verb, summary: str, conflict: str = "") -> None:
    """``POST /api/sessions/<ref>/<verb>`` on ``on``: the verb asked for (202, the session)."""
    async def view(ref: str) -> tuple[dict[str, Any], int]:
        return one(await act(ref, verb), 202)

    view.__name__ = f"verb_{verb.name.lower()}"
    documented(RouteDoc(summary=summary, responses={
        "202": one_session(), "404": err("No such session"),
        "409": err(f"Cannot {verb} it in its present phase{conflict}"),
        **({"429": err("No room for another active session")}
           if verbs.RULES[verb].revives else {})}))(view)
    on.post(f"/api/sessions/<ref>/{verb}")(view)


verb_route(blueprint, Verb.ARCHIVE, "Archive: stop compute, keep workspace, branch and record")
verb_route(blueprint, Verb.UNARCHIVE, "Unarchive: run the session again")
verb_route(blueprint, Verb.START, "Start a stopped session's container")
verb_route(blueprint, Verb.STOP, "Stop a session's container (kept, restartable)")
verb_route(blueprint, Verb.RETRY, "Retry a failed session")


@blueprint.patch("/api/sessions/<ref>")
@documented(RouteDoc(
    summary="Edit a session's title or description (data only)",
    body={"type": "object", "additionalProperties": False, "properties": {
        "title": {"type": "string", "maxLength": TITLE_MAX},
        "description": {"type": "string", "maxLength": DESCRIPTION_MAX}}},
    responses={"200": one_session(), "400": err("Bad title or description"),
               "404": err("No such session"), "409": err("Being deleted")}))
async def edit_session(ref: str) -> tuple[dict[str, Any], int]:
    body = await json_body(known=("title", "description"))
    changes: dict[str, Any] = {}
    for key, limit in (("title", TITLE_MAX), ("description", DESCRIPTION_MAX)):
        raw = body.get(key)
        if raw is None:
            continue
        if not isinstance(raw, str):
            raise InvalidInput(f"{key} must be a string", field=key)
        changes[key] = clean_text(raw, limit, key, one_line=key == "title")
    if not changes:
        raise InvalidInput("give a title or a description to change", field="title")
    return one(await act(ref, Verb.EDIT, **changes))


@blueprint.post("/api/sessions/<ref>/retitle")
@documented(RouteDoc(
    summary="Make the title and description again from the first prompt, with the model",
    responses={"200": one_session(), "404": err("No such session"),
               "409": err("No prompt, or being deleted"),
               "503": err("No title model configured, or it did not answer")}))
async def retitle(ref: str) -> tuple[dict[str, Any], int]:
    ctx = current()
    session = await ctx.resolve(ref)
    verbs.check(Verb.RETITLE, session)
    if not session.initial_prompt.strip():
        raise Conflict(f"{session.name} has no first prompt to make a title from; edit the "
                       "title instead")
    if not ctx.settings.titles_model:
        raise ServiceUnavailable("no title model is configured: set [titles] model in "
                                 "config.toml (and provider), or edit the title by hand")
    idea = await titlecall.suggest(ctx.settings, ctx.instance_key, session.initial_prompt)
    if idea is None:
        raise ServiceUnavailable("the title model did not give a usable answer in time "
                                 "(see the proxy's audit log); try again, or edit the "
                                 "title by hand")
    return one(await act(ref, Verb.RETITLE, title=idea.title, description=idea.description))


@blueprint.post("/api/sessions/<ref>/access-mode")
@documented(RouteDoc(
    summary="Switch the proxy's enforcement for this session (applies to its next request)",
    body={"type": "object", "required": ["access_mode"], "additionalProperties": False,
          "properties": {"access_mode": {"type": "string",
                                         "enum": [str(m) for m in AccessMode]}}},
    responses={"200": one_session(), "400": err("Bad mode"), "409": err("Being deleted")}))
async def access_mode(ref: str) -> tuple[dict[str, Any], int]:
    mode = choice(await json_body(known=("access_mode",)), "access_mode", AccessMode)
    return one(await act(ref, Verb.ACCESS_MODE, access_mode=mode))


@blueprint.get("/api/sessions/<ref>/events")
@documented(RouteDoc(summary="The session's event history (progress, failures, drift)",
                     responses={"200": ok({"type": "object", "required": ["events"],
                                           "properties": {"events": {"type": "array",
                                                                     "items": EVENT}}})}))
async def session_events(ref: str) -> dict[str, Any]:
    ctx = current()
    session = await ctx.resolve(ref)
    events = await ctx.store.run(ctx.store.sync.session_events, session.id)
    return {"events": [e.to_json() for e in events]}


@blueprint.get("/api/sessions/<ref>/attach")
@documented(RouteDoc(summary="The command a local terminal runs to attach",
                     responses={"200": ok({**OBJECT, "properties": {
                         "command": {"type": "array", "items": {"type": "string"}},
                         "detach_keys": {"type": "string"}}}),
                         "409": err("No container yet")}))
async def attach(ref: str) -> dict[str, Any]:
    ctx = current()
    session = await ctx.resolve(ref)
    verbs.check(Verb.ATTACH, session)
    backend = ctx.backend_for(session)
    if ctx.settings.start_agents:
        # The agent's tmux session: the same terminal /ws/console shows.
        return {"command": backend.terminal_command(session.workload_name, attach_argv()),
                "detach_keys": "ctrl-b d"}
    return {"command": await backend.attach_command(session.workload_name),
            "detach_keys": "ctrl-q"}
