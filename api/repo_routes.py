"""Routes about repositories, for the create forms: recent ones, and checking a path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from quart import Blueprint, request

from api.context import current
from api.openapi import RouteDoc, documented, ok
from appliance import repos
from appliance.errors import ClauderonError

blueprint = Blueprint("repos", __name__)

RECENT = {"type": "object", "required": ["repos"], "properties": {"repos": {
    "type": "array", "items": {"type": "object", "properties": {
        "repo_path": {"type": "string"}, "subdirectory": {"type": "string"},
        "last_used": {"type": "string"}}}}}}
REPO_CHECK = {"type": "object", "required": ["ok"], "properties": {
    "ok": {"type": "boolean"}, "root": {"type": "string"}, "subdirectory": {"type": "string"},
    "branch": {"type": "string"}, "error": {"type": "string"}}}


@blueprint.get("/api/recent-repos")
@documented(RouteDoc(summary="Repositories used recently (most recent first)",
                     responses={"200": ok(RECENT)}))
async def recent_repos() -> dict[str, Any]:
    ctx = current()
    rows = await ctx.store.run(ctx.store.sync.recent_repos)
    alive = await trio.to_thread.run_sync(
        lambda: [r for r in rows if Path(r["repo_path"]).is_dir()])
    return {"repos": alive}


@blueprint.get("/api/repos/check")
@documented(RouteDoc(query=(("path", "an absolute path inside a git checkout"),),
                     summary="Whether a path can be a session's repo (always 200; see ok)",
                     responses={"200": ok(REPO_CHECK)}))
async def check_repo() -> dict[str, Any]:
    """200 either way: a form validating as you type is not an error."""
    path = request.args.get("path", "")
    try:
        repo = await trio.to_thread.run_sync(repos.inspect_repo, path)
        branch = await trio.to_thread.run_sync(repos.current_branch, repo)
    except ClauderonError as exc:
        return {"ok": False, "error": exc.message}
    return {"ok": True, "root": str(repo.root), "subdirectory": repo.subdirectory,
            "branch": branch}
