"""Routes the web UI reads a session through: its worktree (tree, file, diff), image uploads
and its proxy audit lines (the repo-path check for the create form is ``api/repo_routes.py``).

A multi-repo session's tree and file routes read the repository ``?repo=`` names (the
primary by default; :func:`appliance.multirepo.select` looks the name up in the session
record, so a client never names a host path); its diff has a section per repository.

Handlers resolve the session, then hand the blocking work to :mod:`api.browse` in a worker
thread with the session's workspace reader (:mod:`appliance.readers`: on this host through
:mod:`appliance.safefs`, or inside a Kubernetes session's pod through :mod:`appliance.podfs`);
those own every rule about which paths may be read and how (never following a symlink the
agent made). Routes never ask which backend a session runs on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from quart import Blueprint, request

from api import browse
from api.context import current
from api.openapi import RouteDoc, documented, err, ok
from appliance import multirepo
from appliance.contract import CONTAINER_UPLOADS
from appliance.errors import InvalidInput, PayloadTooLarge
from appliance.multirepo import RepoView
from appliance.readers import WorkspaceReader
from appliance.sessions import Session

ENTRY = {"type": "object", "required": ["name", "path", "type", "size"], "properties": {
    "name": {"type": "string", "description": "bytes that are not UTF-8 shown as U+FFFD"},
    "path": {"type": "string"},
    "type": {"type": "string", "enum": ["dir", "file", "symlink", "other"],
             "description": "symlinks are never followed; other: a FIFO, socket or device"},
    "size": {"type": ["integer", "null"], "description": "files only"}}}
LISTING = {"type": "object", "required": ["path", "entries", "truncated"], "properties": {
    "path": {"type": "string"}, "entries": {"type": "array", "items": ENTRY},
    "truncated": {"type": "boolean", "description": "the folder holds more than 10,000, or "
                  "names that take more than 4 MiB of JSON: the first are listed"}}}
FILE = {"type": "object", "required": ["path", "size", "binary", "truncated", "text"],
        "properties": {"path": {"type": "string"}, "size": {"type": "integer"},
                       "binary": {"type": "boolean"}, "truncated": {"type": "boolean"},
                       "text": {"type": "string"}}}
CHANGED_FIELDS = {"status": {"type": "string"}, "path": {"type": "string"}}
CHANGED = {"type": "object", "required": ["status", "path"], "properties": CHANGED_FIELDS}
PART = {"files": {"type": "array", "items": CHANGED},
        "diff": {"type": "string"},
        "truncated": {"type": "boolean", "description": "the diff was cut at 2 MiB, or the "
                      "files at the first 10,000"}}
COMMITTED_FILE = {
    "type": "object", "required": ["status", "path", "work_tree"],
    "properties": {**CHANGED_FIELDS, "work_tree": {
        "type": ["string", "null"], "enum": ["undone", "differs", None],
        "description": "what the work tree holds of the file: null as committed (or not "
                       "read: a submodule); undone: as the fork has it (the work tree undoes "
                       "the committed change); differs: otherwise than the commit"}}}
CHANGES = {
    "base_ref": {"type": "string"}, "merge_base": {"type": ["string", "null"]},
    **PART,
    "committed": {
        "type": "object", "required": ["commit", "subject", "files", "diff", "truncated"],
        "description": "The session branch's commit against the fork point: what a push, a "
                       "pull request or a merge sends, whatever the work tree holds",
        "properties": {"commit": {"type": ["string", "null"]},
                       "subject": {"type": "string", "description": "The commit's subject "
                                   "(the agent's text; empty when it could not be read)"},
                       **PART,
                       "files": {"type": "array", "items": COMMITTED_FILE}}},
    "uncommitted": {
        "type": ["object", "null"], "required": ["files", "diff", "truncated"],
        "description": "The work tree against the branch's commit: what no push sends (null "
                       "when the work tree is not read: a Kubernetes session's branch)",
        "properties": PART},
    "note": {
        "type": ["string", "null"],
        "description": "Set when the workspace's HEAD cannot be read (the agent checked out "
                       "a branch with no commit yet, or broke .git/HEAD) while its branch "
                       "can: committed is in full, and the work tree is compared as if the "
                       "branch's commit were checked out, so it may be partial; null "
                       "otherwise. When neither can be read, the diff is refused"}}
DIFF_SECTION = {
    "type": "object", "description": "One repository's changes against its own base",
    "required": ["repo", "name", "primary", "path", "base_ref", "merge_base", "files", "diff",
                 "truncated", "committed", "uncommitted", "note", "error"],
    "properties": {
        "repo": {"type": "string", "description": "What ?repo= takes: '.' for the primary, "
                 "else the mount name"},
        "name": {"type": "string", "description": "How to show it: the primary's folder "
                 "name, or the mount"},
        "primary": {"type": "boolean"},
        "path": {"type": "string", "description": "Where the agent sees it (/workspace, "
                 "/workspace/<mount>)"},
        **CHANGES,
        "error": {"type": ["string", "null"], "description": "Why this repository's changes "
                  "could not be read (the others still show)"}}}
DIFF = {"type": "object", "required": ["repo", "base_ref", "files", "diff", "truncated",
                                       "committed", "uncommitted", "note", "repos"],
        "properties": {
            "repo": {"type": "string", "description": "The repository the top-level fields "
                     "describe: the primary, or the one ?repo= named"},
            **CHANGES,
            "repos": {"type": "array", "items": DIFF_SECTION,
                      "description": "A section per repository, the primary first (only "
                      "the one asked for with ?repo=)"}}}
UPLOAD = {"type": "object", "required": ["name", "path", "container_path", "size", "mime"],
          "properties": {k: {"type": "string"} for k in ("name", "path", "container_path",
                                                         "mime")} | {"size": {"type": "integer"}}}
_TEXT = {"type": ["string", "null"]}
AUDIT_LINE = {"type": "object", "required": [
    "ts", "id", "method", "host", "path", "status", "decision", "credential", "duration_ms",
    "bytes_in", "bytes_out", "error", "note", "phase", "stream"], "properties": {
    **{k: {"type": "string"} for k in ("ts", "id", "method", "host", "path", "decision")},
    **{k: {"type": "integer"} for k in ("status", "bytes_in", "bytes_out")},
    "duration_ms": {"type": "number"}, "session": {"type": "string"},
    "credential": _TEXT, "error": _TEXT, "note": _TEXT,
    "phase": {"type": ["string", "null"], "enum": ["open", "end", None],
              "description": "A long exchange (a WebSocket, a stream of events) has two "
              "lines: 'open' as it opens (its status is how it opened, not its outcome) "
              "and 'end' as it ends; null on an ordinary request's one line"},
    "stream": {"type": ["string", "null"],
               "description": "The opening line's id, on both lines of a long exchange: "
               "the proxy's run, a dot, an id"},
    "cut_off": {"type": "boolean",
                "description": "An 'open' line of an exchange an earlier run of the proxy "
                "opened and never ended (it was killed): no end line will come"}}}
AUDIT = {"type": "object", "required": ["lines"], "properties": {
    "lines": {"type": "array", "items": AUDIT_LINE}}}
REPO_HELP = ("which repository of a multi-repo session: '.' (the default) for the "
             "primary, else the mount name of a further one (at /workspace/<mount>)")
PATH_Q = (("path", "a path relative to the worktree (empty: its root); no '..', at most "
                   "4096 bytes"), ("repo", REPO_HELP))
REFUSED = err("The path is refused (field `path`): absolute, '..', a NUL byte, too long, "
              "through a symlink (symlinks are listed, never followed), or it names the "
              "wrong kind of thing (a folder for /file, a FIFO or socket); or the session "
              "has no such repository (field `repo`)")


blueprint = Blueprint("files", __name__)


async def reader(ref: str) -> tuple[WorkspaceReader, Session]:
    session = await current().resolve(ref)
    absent = f"{session.name} has no workspace yet (it is {session.phase})"
    return current().reader_for(session, absent=absent), session


async def browse_in(ref: str, read: Callable[[WorkspaceReader, str, RepoView], dict[str, Any]]
                    ) -> dict[str, Any]:
    """``read`` the ``?path=`` in the repository ``?repo=`` names (the primary by default)."""
    found, session = await reader(ref)
    view = multirepo.select(session, request.args.get("repo"))
    return await trio.to_thread.run_sync(read, found, request.args.get("path", ""), view)


@blueprint.get("/api/sessions/<ref>/files")
@documented(RouteDoc(query=PATH_Q,
                     summary="List a folder of the session's worktree",
                     responses={"200": ok(LISTING), "400": REFUSED,
                                "404": err("No such session, or nothing at that path")}))
async def list_files(ref: str) -> dict[str, Any]:
    return await browse_in(ref, browse.list_dir)


@blueprint.get("/api/sessions/<ref>/file")
@documented(RouteDoc(query=PATH_Q,
                     summary="One regular file of the worktree (text; the first 1 MiB)",
                     responses={"200": ok(FILE), "400": REFUSED,
                                "404": err("No such session, or nothing at that path")}))
async def read_file(ref: str) -> dict[str, Any]:
    return await browse_in(ref, browse.read_file)


@blueprint.get("/api/sessions/<ref>/diff")
@documented(RouteDoc(summary="Each repository's changes against where its branch forked "
                             "from its base, the primary first: the work tree (files, diff), "
                             "the branch's commit a push sends (committed) and the work tree "
                             "against it (uncommitted); a Kubernetes session: "
                             "its branch as fetched",
                     query=(("repo", "only this repository: '.' for the primary, else a "
                                     "mount name (default: every one)"),),
                     responses={"200": ok(DIFF), "400": err("No such repository (field "
                                                            "`repo`), or no workspace yet"),
                                "404": err("No such session"),
                                "409": err("The session is being made, or its container "
                                           "could not be held still for the read: try "
                                           "again")}))
async def get_diff(ref: str) -> dict[str, Any]:
    found, session = await reader(ref)
    raw = request.args.get("repo")
    views = (multirepo.select(session, raw),) if raw else multirepo.views(session)
    ctx = current()
    async with ctx.held_still(session), ctx.diff_turn(session):
        return await trio.to_thread.run_sync(browse.diff, found, views)


@blueprint.post("/api/sessions/<ref>/uploads")
@documented(RouteDoc(
    summary="Attach an image (multipart field `file`; PNG/JPEG/GIF/WebP, at most 10 MB)",
    responses={"201": ok(UPLOAD, "Stored; the agent sees it at container_path"),
               "400": err("No file"), "413": err("Larger than 10 MB"),
               "415": err("Not an image")}))
async def upload(ref: str) -> tuple[dict[str, Any], int]:
    session = await current().resolve(ref)
    if (request.content_length or 0) > browse.UPLOAD_LIMIT + 64 * 1024:
        raise PayloadTooLarge("the upload is larger than the 10 MB limit", field="file")
    item = (await request.files).get("file")
    if item is None:
        raise InvalidInput("send the image as the multipart field 'file'", field="file")
    data = item.read(browse.UPLOAD_LIMIT + 1)
    owner = await trio.to_thread.run_sync(
        browse.owner_of, (Path(session.worktree_path), Path(session.repo_path)))
    stored = await trio.to_thread.run_sync(
        browse.store_upload, current().settings.uploads_dir, session.id,
        item.filename or "image", data, owner)
    return {"name": stored.name, "path": str(stored.path),
            "container_path": f"{CONTAINER_UPLOADS}/{stored.name}",
            "size": stored.size, "mime": stored.mime}, 201


@blueprint.get("/api/sessions/<ref>/audit")
@documented(RouteDoc(query=(("limit", "how many recent lines (default 100, at most 1000)"),),
                     summary="This session's recent proxy audit lines (newest last)",
                     responses={"200": ok(AUDIT), "404": err("No such session")}))
async def audit(ref: str) -> dict[str, Any]:
    session = await current().resolve(ref)
    try:
        limit = min(max(int(request.args.get("limit", "100")), 1), 1000)
    except ValueError:
        raise InvalidInput("limit must be a number", field="limit") from None
    lines = await trio.to_thread.run_sync(
        browse.audit_lines, current().audit, session.id, limit)
    return {"lines": lines}
