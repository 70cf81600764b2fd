"""Session routes: list, create, show, delete, archive, unarchive, start, stop, retry,
access mode, attach, per-session events.

Handlers stay thin: parse, check against the world (repo, image, engine), write *desired*
state to the store and return. The reconciler does the work; progress shows on
``/ws/events`` and ``GET /api/sessions/{id}/events``.
"""

from __future__ import annotations

import os
from typing import Any

import trio
from quart import Quart, Response, request
from quart_trio import QuartTrio

from api.body import json_body
from api.context import ApiContext
from api.openapi import SESSION, RouteDoc, documented, err, ok
from appliance import hostgit, repos
from appliance.agents.boot import attach_argv
from appliance.errors import ClauderonError, Conflict, InvalidInput
from appliance.intake import new_session, parse_create, suggest_name
from appliance.sessions import AccessMode, Desired, Phase, Session, branch_for

#: How long deleting a session that is still being created waits for its create to be
#: cancelled and undone before answering (the delete goes on in the background after).
DELETE_WAIT_SECONDS = 30.0

LIST = {"type": "object", "properties": {"sessions": {"type": "array", "items": SESSION}}}
ONE = {"type": "object", "properties": {"session": SESSION}}


def one(session: Session, status: int = 200) -> tuple[dict[str, Any], int]:
    return {"session": session.to_json()}, status


def register(app: QuartTrio | Quart, ctx: ApiContext) -> None:
    store = ctx.store

    async def resolve(ref: str) -> Session:
        return await store.run(store.sync.resolve, ref)

    async def set_desired(ref: str, desired: Desired, *, allowed: set[Phase],
                          verb: str, **extra: Any) -> Session:
        session = await resolve(ref)

        def expect(current: Session) -> None:
            if current.phase not in allowed:
                raise Conflict(f"cannot {verb} {current.name}: it is {current.phase}"
                               + (f" ({current.status_reason})" if current.status_reason else ""))

        updated = await store.run(
            lambda: store.sync.update_session(session.id, expect=expect, desired=desired, **extra)
        )
        ctx.hub.poke()
        return updated

    @app.get("/api/sessions")
    @documented(RouteDoc(method="GET", path="/api/sessions", summary="List sessions",
                         query=(("archived", "true: only archived sessions"),
                                ("all", "true: every session")),
                         responses={"200": ok(LIST)}))
    async def list_sessions() -> Response:
        archived = None if request.args.get("all") == "true" else (
            request.args.get("archived") == "true")
        views = await store.run(lambda: store.sync.list_views(archived=archived))
        # The views are stored as JSON already: join them, do not parse and re-encode.
        return Response('{"sessions": [' + ", ".join(views) + "]}",
                        content_type="application/json")

    @app.post("/api/sessions")
    @documented(RouteDoc(
        method="POST", path="/api/sessions", summary="Create a session (asynchronous)",
        body={"$ref": "#/components/schemas/CreateSession"},
        responses={"202": ok(ONE, "Accepted: the reconciler creates it; watch /ws/events"),
                   "400": err("Invalid input"), "409": err("Name or branch taken"),
                   "503": err("Container engine not reachable")}))
    async def create_session() -> tuple[dict[str, Any], int]:
        req = parse_create(await json_body())
        image = req.image or ctx.settings.default_image
        # The engine checks run while git answers: a create is as slow as the slower one.
        engine_error: list[ClauderonError] = []
        image_present: list[bool] = []

        async def check_engine() -> None:
            try:
                await ctx.backend.ping()
                image_present.append(await ctx.backend.image_exists(image))
            except ClauderonError as exc:
                engine_error.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(check_engine)
            repo = await trio.to_thread.run_sync(repos.inspect_repo, req.repo_path)
        closed = await trio.to_thread.run_sync(hostgit.owner_can_reach,
                                               ctx.settings.worktrees_dir, repo.owner)
        if closed is not None:
            raise InvalidInput(
                f"the owner of {repo.root} (uid {repo.owner_uid}) cannot reach the workspaces "
                f"folder: {closed} is closed to them; make it traversable (chmod o+x {closed}) "
                "or move CLAUDERON_HOME", field="repo_path")
        base = req.base if req.base else await trio.to_thread.run_sync(repos.current_branch,
                                                                         repo)
        await trio.to_thread.run_sync(repos.resolve_ref, repo, base)
        name = req.name or suggest_name(req.prompt)
        if await store.run(store.sync.get_by_name, name) is not None:
            raise Conflict(f"a session named {name!r} already exists; pick another name",
                           field="name")
        branch = branch_for(name)
        if await trio.to_thread.run_sync(repos.branch_exists, repo, branch):
            raise Conflict(
                f"the branch {branch} already exists in {repo.root} (kept from an earlier "
                f"session); pick another name, or remove it with `git branch -D {branch}`",
                field="name")
        if await trio.to_thread.run_sync(os.path.lexists, ctx.settings.worktrees_dir / name):
            raise Conflict(f"the workspace folder for {name!r} already exists; pick another "
                           "name", field="name")
        if engine_error:
            raise engine_error[0]
        if not image_present[0]:
            raise InvalidInput(
                f"the image {image!r} is not on the Docker engine; build it "
                "(`clauderon image build`) or pull it", field="image")
        session = new_session(
            req, name=name, repo_root=repo.root, subdirectory=repo.subdirectory, base_ref=base,
            worktrees_dir=ctx.settings.worktrees_dir, default_image=ctx.settings.default_image,
            default_cpu=ctx.settings.default_cpu, default_memory=ctx.settings.default_memory,
            instance_key=ctx.instance_key)
        await store.run(lambda: store.sync.insert_session(session, limits=ctx.settings.limits))
        ctx.hub.poke()
        return one(session, 202)

    @app.get("/api/sessions/<ref>")
    @documented(RouteDoc(method="GET", path="/api/sessions/<ref>",
                         summary="One session, by id or name",
                         responses={"200": ok(ONE), "404": err("No such session")}))
    async def get_session(ref: str) -> tuple[dict[str, Any], int]:
        return one(await resolve(ref))

    @app.delete("/api/sessions/<ref>")
    @documented(RouteDoc(method="DELETE", path="/api/sessions/<ref>",
                         summary="Delete a session (asynchronous; the branch is kept)",
                         responses={"202": ok(ONE, "Accepted"), "404": err("No such session")}))
    async def delete_session(ref: str) -> tuple[dict[str, Any], int]:
        before = await resolve(ref)
        session = await set_desired(ref, Desired.DELETED, allowed=set(Phase), verb="delete",
                                    phase=Phase.DELETING)
        if before.phase is Phase.CREATING:
            # Its create may be queued or under way in the reconciler, which cancels it and
            # removes what it made: answer once that is done, so nothing appears afterwards.
            with trio.move_on_after(DELETE_WAIT_SECONDS):
                cursor = ctx.hub.latest
                while await store.run(store.sync.get_session, session.id) is not None:
                    await ctx.hub.wait_beyond(cursor)  # the reconciler wrote something
                    cursor = ctx.hub.latest
        return one(session, 202)

    @app.post("/api/sessions/<ref>/archive")
    @documented(RouteDoc(method="POST", path="/api/sessions/<ref>/archive",
                         summary="Archive: stop compute, keep worktree, branch and record",
                         responses={"202": ok(ONE), "409": err("Not archivable now")}))
    async def archive(ref: str) -> tuple[dict[str, Any], int]:
        s = await set_desired(ref, Desired.ARCHIVED, verb="archive",
                              allowed={Phase.RUNNING, Phase.STOPPED, Phase.ARCHIVED})
        return one(s, 202)

    @app.post("/api/sessions/<ref>/unarchive")
    @documented(RouteDoc(method="POST", path="/api/sessions/<ref>/unarchive",
                         summary="Unarchive: run the session again",
                         responses={"202": ok(ONE), "409": err("Not archived")}))
    async def unarchive(ref: str) -> tuple[dict[str, Any], int]:
        return one(await set_desired(ref, Desired.RUNNING, verb="unarchive",
                                     allowed={Phase.ARCHIVED}, archived_at=None,
                                     limits=ctx.settings.limits), 202)

    @app.post("/api/sessions/<ref>/start")
    @documented(RouteDoc(method="POST", path="/api/sessions/<ref>/start",
                         summary="Start a stopped session's container",
                         responses={"202": ok(ONE), "409": err("Cannot start now")}))
    async def start(ref: str) -> tuple[dict[str, Any], int]:
        return one(await set_desired(ref, Desired.RUNNING, verb="start",
                                     allowed={Phase.RUNNING, Phase.STOPPED, Phase.CREATING}), 202)

    @app.post("/api/sessions/<ref>/stop")
    @documented(RouteDoc(method="POST", path="/api/sessions/<ref>/stop",
                         summary="Stop a session's container (kept, restartable)",
                         responses={"202": ok(ONE), "409": err("Cannot stop now")}))
    async def stop(ref: str) -> tuple[dict[str, Any], int]:
        return one(await set_desired(ref, Desired.STOPPED, verb="stop",
                                     allowed={Phase.RUNNING, Phase.STOPPED}), 202)

    @app.post("/api/sessions/<ref>/retry")
    @documented(RouteDoc(method="POST", path="/api/sessions/<ref>/retry",
                         summary="Retry a failed session",
                         responses={"202": ok(ONE), "409": err("Not failed")}))
    async def retry(ref: str) -> tuple[dict[str, Any], int]:
        return one(await set_desired(ref, Desired.RUNNING, verb="retry", allowed={Phase.FAILED},
                                     phase=Phase.CREATING, attempts=0, retry_at=None,
                                     status_reason=None, limits=ctx.settings.limits), 202)

    @app.post("/api/sessions/<ref>/access-mode")
    @documented(RouteDoc(
        method="POST", path="/api/sessions/<ref>/access-mode",
        summary="Switch the proxy's enforcement for this session (applies to its next request)",
        body={"type": "object", "required": ["access_mode"], "properties": {
            "access_mode": {"type": "string", "enum": ["read-write", "read-only"]}}},
        responses={"200": ok(ONE), "400": err("Bad mode")}))
    async def access_mode(ref: str) -> tuple[dict[str, Any], int]:
        body = await json_body()
        try:
            mode = AccessMode(str(body.get("access_mode")))
        except ValueError:
            raise InvalidInput("access_mode must be read-write or read-only",
                               field="access_mode") from None
        session = await resolve(ref)
        updated = await store.run(
            lambda: store.sync.update_session(session.id, access_mode=mode))
        ctx.hub.poke()
        return one(updated)

    @app.get("/api/sessions/<ref>/events")
    @documented(RouteDoc(method="GET", path="/api/sessions/<ref>/events",
                         summary="The session's event history (progress, failures, drift)",
                         responses={"200": ok({"type": "object", "properties": {"events": {
                             "type": "array",
                             "items": {"$ref": "#/components/schemas/Event"}}}})}))
    async def session_events(ref: str) -> dict[str, Any]:
        session = await resolve(ref)
        events = await store.run(store.sync.session_events, session.id)
        return {"events": [e.to_json() for e in events]}

    @app.get("/api/sessions/<ref>/attach")
    @documented(RouteDoc(method="GET", path="/api/sessions/<ref>/attach",
                         summary="The command a local terminal runs to attach",
                         responses={"200": ok({"type": "object", "properties": {
                             "command": {"type": "array", "items": {"type": "string"}}}}),
                             "409": err("No container yet")}))
    async def attach(ref: str) -> dict[str, Any]:
        session = await resolve(ref)
        if not session.backend_id or session.phase not in (Phase.RUNNING, Phase.STOPPED):
            raise Conflict(f"{session.name} has no running container (it is {session.phase})")
        if ctx.settings.start_agents:
            # The agent's tmux session: the same terminal /ws/console shows.
            return {"command": ctx.backend.terminal_command(session.container_name,
                                                            attach_argv()),
                    "detach_keys": "ctrl-b d"}
        return {"command": await ctx.backend.attach_command(session.container_name),
                "detach_keys": "ctrl-q"}
