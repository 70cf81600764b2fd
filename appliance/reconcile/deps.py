"""What the reconciler's actions are handed, and how they write a session down.

:class:`Deps` carries the collaborators (settings, store, the backends by kind, the host's
facts, the instance key, the clock), built once in ``__main__`` and passed to every action
module (:mod:`create`, :mod:`sync`, :mod:`loop`). Its helpers are the only way an action
records anything: a change of the session row, a progress step, an event — each logged with
the session's id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appliance.backends.base import Backend
from appliance.config import Settings
from appliance.contract import HostContext
from appliance.errors import ClauderonError, Conflict, InvalidInput
from appliance.reconcile.failures import FailurePolicy, after_failure, failure_changes
from appliance.sessions import Phase, Session
from appliance.store import AsyncStore

log = logging.getLogger(__name__)


def _still(phase: Phase) -> Callable[[Session], None]:
    """Refuse a write decided on ``phase`` once the session is in another."""
    def expect(current: Session) -> None:
        if current.phase is not phase:
            raise Conflict(f"{current.name} is {current.phase} now, not {phase}")
    return expect


@dataclass(frozen=True, slots=True, kw_only=True)
class Deps:
    settings: Settings
    store: AsyncStore
    backends: Mapping[str, Backend]
    host: HostContext
    key: bytes
    clock: Callable[[], datetime]
    #: Told of each failed create or start attempt, and whether it was the last (metrics).
    on_failure: Callable[[bool], None] = lambda _final: None

    @property
    def policy(self) -> FailurePolicy:
        s = self.settings
        return FailurePolicy(max_attempts=s.max_attempts, backoff_seconds=s.backoff_seconds,
                             backoff_max_seconds=s.backoff_max_seconds)

    def backend(self, kind: str) -> Backend:
        try:
            return self.backends[kind]
        except KeyError:
            raise InvalidInput(
                f"the {kind} backend is not configured on this appliance (configured: "
                f"{', '.join(sorted(self.backends)) or 'none'})", field="backend") from None

    def backend_for(self, s: Session) -> Backend:
        return self.backend(str(s.backend))

    async def update(self, s: Session, **changes: Any) -> Session:
        return await self.store.run(lambda: self.store.sync.update_session(s.id, **changes))

    async def event(self, s: Session | None, kind: str, payload: Mapping[str, Any]) -> None:
        sid = s.id if s is not None else None
        body = {"id": s.id, "name": s.name, **payload} if s is not None else dict(payload)
        await self.store.run(self.store.sync.append_event, sid, kind, body)

    async def progress(self, s: Session, step: str, message: str) -> None:
        log.info("%s: %s", s.name, message, extra={"session": s.id})
        await self.event(s, "progress", {"step": step, "message": message})

    async def mark(self, s: Session, phase: Phase, bid: str | None, *,
                   reason: str | None = None, **extra: Any) -> Session:
        changes: dict[str, Any] = {"phase": phase, "backend_id": bid, "status_reason": reason}
        if phase is Phase.ARCHIVED and s.archived_at is None:
            changes["archived_at"] = self.clock()
        return await self.update(s, **changes, **extra)

    async def fail(self, s: Session, exc: ClauderonError, *, what: str = "starting") -> None:
        """A create or start failed: fail the session now, or back off and try again. A
        session that failed meanwhile (``s`` is what the attempt read before) keeps the
        reason it failed, and one deleted meanwhile stays deleting; this failure (of
        ``what``) goes to its events
        (:func:`~appliance.reconcile.failures.failure_changes`)."""
        outcome = after_failure(exc, attempts=s.attempts + 1, policy=self.policy)
        log.warning("%s: %s", s.name, outcome.reason, extra={"session": s.id})
        current = await self.store.run(self.store.sync.get_session, s.id)
        if current is None:
            return  # deleted meanwhile: nothing of it to write on
        changes = failure_changes(current.phase, outcome, self.clock())
        if changes is None:
            await self.event(s, "action_failed", {"action": what, "reason": exc.message})
            return
        self.on_failure(outcome.retry_in is None)
        await self.update(s, expect=_still(current.phase), **changes)

    async def note(self, s: Session, what: str, exc: ClauderonError) -> None:
        """A step that is retried every pass (a delete, a stop) failed: say so on the session
        and in its events, once per distinct reason, not only in a log line."""
        reason = f"{what} failed: {exc.message}; trying again"
        log.warning("%s: %s", s.name, reason, extra={"session": s.id})
        if s.phase is Phase.FAILED:
            # Why it failed stays what the person reads (a pod on a cluster that ignores
            # NetworkPolicies is said so, not its delete's 500): this goes to its events.
            last = await self.store.run(self.store.sync.last_session_event, s.id,
                                        "action_failed")
            if last is None or last.payload.get("reason") != exc.message:
                await self.event(s, "action_failed", {"action": what, "reason": exc.message})
            return
        if s.status_reason != reason:
            await self.update(s, status_reason=reason)
            await self.event(s, "action_failed", {"action": what, "reason": exc.message})
