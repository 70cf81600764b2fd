"""Routes the web UI reads a session through: its worktree (tree, file, diff), image uploads,
its proxy audit lines, and a repo-path check for the create form.

Handlers resolve the session, then hand the blocking work to :mod:`api.browse` in a worker
thread with the session's workspace reader (:mod:`appliance.readers`: on this host through
:mod:`appliance.safefs`, or inside a Kubernetes session's pod through :mod:`appliance.podfs`);
those own every rule about which paths may be read and how (never following a symlink the
agent made). Routes never ask which backend a session runs on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from quart import Blueprint, request

from api import browse
from api.context import current
from api.openapi import RouteDoc, documented, err, ok
from appliance.contract import CONTAINER_UPLOADS
from appliance.errors import InvalidInput, PayloadTooLarge
from appliance.readers import WorkspaceReader
from appliance.sessions import Session

OBJ = {"type": "object"}
ENTRY = {"type": "object", "required": ["name", "path", "type", "size"], "properties": {
    "name": {"type": "string", "description": "bytes that are not UTF-8 shown as U+FFFD"},
    "path": {"type": "string"},
    "type": {"type": "string", "enum": ["dir", "file", "symlink", "other"],
             "description": "symlinks are never followed; other: a FIFO, socket or device"},
    "size": {"type": ["integer", "null"], "description": "files only"}}}
LISTING = {"type": "object", "required": ["path", "entries", "truncated"], "properties": {
    "path": {"type": "string"}, "entries": {"type": "array", "items": ENTRY},
    "truncated": {"type": "boolean", "description": "the folder holds more than 10,000"}}}
FILE = {"type": "object", "required": ["path", "size", "binary", "truncated", "text"],
        "properties": {"path": {"type": "string"}, "size": {"type": "integer"},
                       "binary": {"type": "boolean"}, "truncated": {"type": "boolean"},
                       "text": {"type": "string"}}}
DIFF = {"type": "object", "required": ["base_ref", "files", "diff", "truncated"], "properties": {
    "base_ref": {"type": "string"}, "merge_base": {"type": ["string", "null"]},
    "files": {"type": "array", "items": {"type": "object", "properties": {
        "status": {"type": "string"}, "path": {"type": "string"}}}},
    "diff": {"type": "string"}, "truncated": {"type": "boolean"}}}
UPLOAD = {"type": "object", "required": ["name", "path", "container_path", "size", "mime"],
          "properties": {k: {"type": "string"} for k in ("name", "path", "container_path",
                                                         "mime")} | {"size": {"type": "integer"}}}
AUDIT = {"type": "object", "required": ["lines"], "properties": {
    "lines": {"type": "array", "items": OBJ}}}
REPO_CHECK = {"type": "object", "required": ["ok"], "properties": {
    "ok": {"type": "boolean"}, "root": {"type": "string"}, "subdirectory": {"type": "string"},
    "branch": {"type": "string"}, "error": {"type": "string"}}}
PATH_Q = (("path", "a path relative to the worktree (empty: its root); no '..', at most "
                   "4096 bytes"),)
REFUSED = err("The path is refused (field `path`): absolute, '..', a NUL byte, too long, "
              "through a symlink (symlinks are listed, never followed), or it names the "
              "wrong kind of thing (a folder for /file, a FIFO or socket)")


blueprint = Blueprint("files", __name__)


def no_tree(session: Session) -> str:
    return f"{session.name} has no workspace yet (it is {session.phase})"


async def reader(ref: str) -> WorkspaceReader:
    session = await current().resolve(ref)
    return current().reader_for(session, absent=no_tree(session))


@blueprint.get("/api/sessions/<ref>/files")
@documented(RouteDoc(query=PATH_Q,
                     summary="List a folder of the session's worktree",
                     responses={"200": ok(LISTING), "400": REFUSED,
                                "404": err("No such session, or nothing at that path")}))
async def list_files(ref: str) -> dict[str, Any]:
    rel = request.args.get("path", "")
    return await trio.to_thread.run_sync(browse.list_dir, await reader(ref), rel)


@blueprint.get("/api/sessions/<ref>/file")
@documented(RouteDoc(query=PATH_Q,
                     summary="One regular file of the worktree (text; the first 1 MiB)",
                     responses={"200": ok(FILE), "400": REFUSED,
                                "404": err("No such session, or nothing at that path")}))
async def read_file(ref: str) -> dict[str, Any]:
    rel = request.args.get("path", "")
    return await trio.to_thread.run_sync(browse.read_file, await reader(ref), rel)


@blueprint.get("/api/sessions/<ref>/diff")
@documented(RouteDoc(summary="The worktree's changes against where it forked from its base "
                             "(a Kubernetes session read in its pod: its branch as fetched)",
                     responses={"200": ok(DIFF), "404": err("No such session")}))
async def get_diff(ref: str) -> dict[str, Any]:
    found = await reader(ref)
    return await trio.to_thread.run_sync(found.diff)


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
    files = await request.files
    item = files.get("file")
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
        browse.audit_lines, current().settings.audit_path, session.id, limit)
    return {"lines": lines}
