"""The pull requests' schedule: each session's branch on GitHub, read again every so often.

Every ``[github] refresh_seconds`` (0 turns it off) the reconciler's watcher reads, for each
session whose repository is on GitHub, the pull request whose head is its branch — its
state, checks, review and mergeability (:func:`appliance.pulls.refresh`) — and writes it on
the session when something changed, so every UI's badge follows CI and reviews without a
person asking. A session the appliance never pushed is looked at too (its agent may have
pushed and opened a pull request itself), but is written only once a pull request shows.
Pull requests merged or closed are not read again (a person's refresh still does). One
session at a time, each call bounded; a failure is written on the status beside what was
known, and the next round tries again.
"""

from __future__ import annotations

import logging

import trio

from appliance import pulls
from appliance.errors import ClauderonError
from appliance.reconcile.deps import Deps
from appliance.sessions import Phase, Session

log = logging.getLogger(__name__)


def due(s: Session) -> bool:
    if s.phase in (Phase.CREATING, Phase.DELETING):
        return False
    return s.pull is None or s.pull.is_open or s.pull.number is None


async def watch(deps: Deps, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                ) -> None:
    task_status.started()
    every = deps.settings.github_refresh_seconds
    if every <= 0:
        return
    while True:
        await trio.sleep(every)
        await one_round(deps)


async def one_round(deps: Deps) -> None:
    sessions = await deps.store.run(deps.store.sync.list_sessions)
    for s in sessions:
        if not due(s):
            continue
        try:
            await pulls.refresh(deps.settings, deps.key, deps.store, s, quiet=True)
        except ClauderonError as exc:  # not a GitHub repository, no remote: nothing to read
            log.debug("no pull request to read for %s: %s", s.name, exc.message,
                      extra={"session": s.id})
