"""``GET /api/health``: the API, the database and every backend, in one answer.

Open to anyone on the network (a load balancer, ``tailscale serve``): before sign-in it says
only whether the appliance is up and its version; signed-in callers and the Unix socket get
the details.
"""

from __future__ import annotations

from typing import Any

import trio
from quart import Blueprint, request

from api.context import current
from api.guard import caller_of
from api.openapi import OBJECT, RouteDoc, documented, ok
from appliance import __version__, wire
from appliance.audit import AUDIT_RESERVE_BYTES, AUDIT_RESERVE_FILES, Room, room_at
from appliance.diskuse import DU_SECONDS, largest_workspaces
from appliance.errors import BackendUnavailable, ClauderonError
from appliance.sessions import Session
from appliance.trees import home_dir, host_workspace

PING_SECONDS = 5.0

blueprint = Blueprint("health", __name__)

#: ``/api/disk`` (and health's ``disk`` part).
DISK = {"type": "object", "required": ["path", "full", "free_bytes", "reserve_bytes",
                                       "free_files", "reserve_files", "largest"],
        "properties": {
            "path": {"type": "string"},
            "full": {"type": "boolean", "description": "below the reserve of bytes or of "
                     "files: the proxy forwards nothing (it could not record it)"},
            "free_bytes": {"type": "integer"}, "reserve_bytes": {"type": "integer"},
            "free_files": {"type": ["integer", "null"], "description": "files (inodes) "
                           "that can still be made; null: the filesystem sets no number"},
            "reserve_files": {"type": "integer"},
            "largest": {"type": ["array", "null"], "description": "when below the reserve: "
                        "the sessions using the most (null: not measured, or not in time); "
                        "by files when the files ran out",
                        "items": {"type": "object", "required": [
                            "name", "bytes", "workspace_bytes", "container_bytes",
                            "audit_bytes", "files"],
                            "properties": {"name": {"type": "string"},
                                           "bytes": {"type": "integer"},
                                           "files": {"type": ["integer", "null"],
                                                     "description": "files and folders in "
                                                     "its workspace and home (counted when "
                                                     "the files ran out)"},
                                           "workspace_bytes": {"type": "integer"},
                                           "container_bytes": {
                                               "type": "integer", "description":
                                               "what it wrote in its container outside its "
                                               "workspace: its home and the container's "
                                               "layer"},
                                           "audit_bytes": {
                                               "type": "integer", "description":
                                               "its requests' lines in the audit log (and "
                                               "its archive) since the API started"}}}}}}

#: ``/api/backends`` (and health's ``backends`` part), by kind (``docker``, ``kubernetes``).
BACKENDS = {"type": "object", "additionalProperties": {
    "type": "object", "required": ["url", "reachable"],
    "properties": {"url": {"type": "string"}, "reachable": {"type": "boolean"},
                   "error": {"type": "string", "description": "why it did not answer"}}}}


async def _backends() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for kind, backend in current().backends.items():
        state: dict[str, Any] = {"url": backend.url, "reachable": True}
        try:
            with trio.fail_after(PING_SECONDS):
                await backend.ping()
        except (BackendUnavailable, trio.TooSlowError) as exc:
            state.update(reachable=False, error=getattr(exc, "message", "timed out"))
        out[kind] = state
    return out


@blueprint.get("/api/backends")
@documented(RouteDoc(summary="The backends sessions run on here, and whether each answers",
                     responses={"200": ok(BACKENDS)}))
async def backends() -> dict[str, Any]:
    """What the create form offers: always a 200 (health's 503 for a backend that is down
    would be an error in the form's console)."""
    return await _backends()


@blueprint.get("/api/disk")
@documented(RouteDoc(summary="The disk the audit log is on: below its reserve the proxy "
                             "forwards nothing; then the sessions using the most of it",
                     responses={"200": ok(DISK)}))
async def disk() -> dict[str, Any]:
    """What the web UI's notice reads on every page: always a 200 (health's 503 for a
    backend that is down would be an error in every page's console)."""
    ctx = current()
    sessions = await ctx.store.run(ctx.store.sync.list_sessions)
    return await _disk(room_at(ctx.settings.audit_path.parent), sessions)


async def _disk(room: Room, sessions: list[Session]) -> dict[str, Any]:
    ctx = current()
    out: dict[str, Any] = {"path": str(ctx.settings.audit_path.parent), "full": room.full,
                           "free_bytes": room.free_bytes, "reserve_bytes": AUDIT_RESERVE_BYTES,
                           "free_files": room.free_files, "reserve_files": AUDIT_RESERVE_FILES,
                           "largest": None}
    if room.full:  # which sessions to look at first (measured at most every 30 s)
        out["largest"] = await ctx.disk_census.get(
            lambda: _census(sessions, by_files=room.short_of_files))
    return out


async def _census(sessions: list[Session], *, by_files: bool) -> list[dict[str, Any]] | None:
    """The sessions using the most of the disk: workspaces, agent homes, containers'
    layers and their requests' audit lines (``by_files``: the files of the first two)."""
    layers = await _layers()
    homes = {s.id: str(home_dir(current().settings, s)) for s in sessions
             if host_workspace(s)}
    index = current().audit
    return await trio.to_thread.run_sync(
        lambda: largest_workspaces(sessions, containers=layers, homes=homes,
                                   by_files=by_files, audit=index.spent()))


async def _layers() -> dict[str, int]:
    """What each session's container wrote outside its workspace, by session id; what an
    engine cannot say in time (or at all) is left out rather than waited for."""
    out: dict[str, int] = {}
    for backend in current().backends.values():
        with trio.move_on_after(DU_SECONDS):
            try:
                out.update(await backend.disk_use())
            except ClauderonError:
                continue
    return out


@blueprint.get("/api/health")
@documented(RouteDoc(summary="Health of the API, the database and the backends (only status "
                             "and version before sign-in)",
                     responses={"200": ok(OBJECT),
                                "503": ok(OBJECT, "A backend is unreachable, or the disk is too "
                                                      "full for the proxy to forward (it "
                                                      "could not record)")}))
async def health() -> tuple[dict[str, Any], int]:
    ctx = current()
    backends = await _backends()
    # Below the reserve the proxy forwards nothing (it could not record it).
    room = room_at(ctx.settings.audit_path.parent)
    up = all(b["reachable"] for b in backends.values()) and not room.full
    status, code = ("ok", 200) if up else ("degraded", 503)
    if caller_of(request.scope) is None:
        # Open to anyone on the network: whether it is up, and nothing about the host.
        return {"status": status, "version": __version__}, code
    sessions = await ctx.store.run(ctx.store.sync.list_sessions)
    disk = await _disk(room, sessions)
    return {
        "status": status,
        "version": __version__,
        "backends": backends,
        "docker": backends.get("docker", {}),
        "disk": disk,
        "database": {"path": str(ctx.settings.db_path),
                     "schema_version": await ctx.store.run(ctx.store.sync.schema_version)},
        "sessions": wire.counts((s.phase, s.agent_status, s.model_error) for s in sessions),
        "latest_event": ctx.hub.latest,
    }, code
