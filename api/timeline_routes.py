"""``GET /api/sessions/{id}/timeline``: the session's one timeline, a page at a time.

The route reads each source before the cursor on a worker thread (the transcript and the
audit log a bounded window each, the commits of every repository of the session through a
checked shadow, the journal by id) and merges
them with :func:`appliance.timeline.merge` (the theory of the cursor and of agent-written
times is there). The newest page has no ``before``; clients that follow it live ask for it
again when ``/ws/events`` says the session changed, or on a short timer, and merge by
``key``. Reads share the transcript readers' limiter, so many pages at once of a hostile
log cannot add up, and a session reads one page at a time (``ApiContext.read_turn``): its
branch can keep git's log walking for seconds, and must not hold every reader.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import trio
from quart import Blueprint, request

from api.context import current
from api.openapi import RouteDoc, documented, err, ok
from appliance import (
    multirepo,
    repos,
    sentstore,
    timeline,
    timeline_git,
    timeline_read,
    trees,
    wire,
    workspaces,
)
from appliance.audit_index import AuditIndex
from appliance.config import Settings
from appliance.errors import ClauderonError
from appliance.readers import WorkspaceReader
from appliance.sessions import Session, utcnow
from appliance.store import Store
from appliance.timeline import Source
from appliance.wire_fields import render

blueprint = Blueprint("timeline", __name__)


def read_page(settings: Settings, store: Store, audit: AuditIndex, session: Session,
              reader: WorkspaceReader, *, cursor: dict[timeline.Source, int],
              limit: int) -> timeline.Page:
    """One page, from every source (blocking: runs on a worker thread). A source that
    cannot be read (the agent turned its log into a FIFO, the repository is gone) is left
    out with a note: the agent must not be able to blank the rest of its timeline."""
    now = utcnow()
    notes: list[str] = []

    def messages() -> timeline.Batch:
        return timeline_read.messages(reader.home, session, cursor.get(Source.MESSAGE),
                                      now=now, limit=limit,
                                      said=partial(sentstore.from_person, store, session.id))

    readers = [(Source.MESSAGE, "the transcript", messages)]
    if trees.host_workspace(session):
        readers.append((Source.COMMIT, "the branch's commits", partial(
            _commits, settings, session, cursor.get(Source.COMMIT), now=now, notes=notes)))
    batches = [
        timeline_read.audits(audit, session.id, cursor.get(Source.AUDIT)),
        timeline_read.events(
            store.session_events_before(session.id, cursor.get(Source.EVENT), limit),
            cursor.get(Source.EVENT), limit, store.last_event_id()),
    ]
    for source, what, read in readers:
        try:
            batches.append(read())
        except ClauderonError as exc:
            notes.append(f"{what} is not shown: {exc.message}")
            batches.append(timeline_read.nothing(source, cursor.get(source)))
    page = timeline.merge(batches, limit)
    return replace(page, notes=(*notes, *page.notes))


def _commits(settings: Settings, session: Session, before: int | None, *, now: datetime,
             notes: list[str]) -> timeline.Batch:
    """The commits on the session's branch in each of its repositories; one that cannot be
    read is left out with a note in ``notes``."""
    logs = []
    for view in multirepo.views(session):
        workspace = (trees.workspace_dir(settings, session) if view.primary
                     else Path(view.worktree_path))
        if not workspaces.is_workspace(workspace):
            continue
        try:
            logs.append(timeline_git.branch_log(
                repos.repo_facts(view.repo_path), workspace, view, session.branch,
                settings.shadows_dir / session.id, max_bytes=settings.max_sync_mib << 20))
        except ClauderonError as exc:  # one repository's trouble hides no other's
            notes.append(f"the commits in {view.label} are not shown: {exc.message}")
    return timeline_git.commits(logs, session, before, now=now)


@blueprint.get("/api/sessions/<ref>/timeline")
@documented(RouteDoc(
    summary="The session's timeline: transcript messages, proxied requests, commits on its "
            "branch and journal events, merged in time order, a page at a time",
    query=(("before", "the cursor of the previous page (default: the newest items)"),
           ("limit", f"items a page, 1 to {timeline.MAX_LIMIT} "
                     f"(default {timeline.DEFAULT_LIMIT})")),
    responses={"200": ok({"$ref": "#/components/schemas/TimelinePage"}),
               "400": err("The cursor or the limit is not one this route gives or takes"),
               "404": err("No such session"),
               "409": err("The agent made its log something that is not read: a symlink, "
                          "a FIFO, too many files")}))
async def get_timeline(ref: str) -> dict[str, Any]:
    ctx = current()
    session = await ctx.resolve(ref)
    raw = request.args.get("before")
    cursor = timeline.parse_cursor(raw) if raw else {}
    limit = timeline.parse_limit(request.args.get("limit"))
    async with ctx.read_turn(session):
        page = await trio.to_thread.run_sync(
            partial(read_page, ctx.settings, ctx.store.sync, ctx.audit, session,
                    ctx.reader_for(session, absent=f"{session.name} has no home yet"),
                    cursor=cursor, limit=limit))
    return render(wire.TIMELINE_PAGE, page)
