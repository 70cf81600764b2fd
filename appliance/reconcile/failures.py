"""The failure policy (pure): what a failed step means for its session.

Theory of operation
-------------------
A step that fails raises an error of the tree (:mod:`appliance.errors`). Whether trying again
can help is a property of the error, decided here once (:func:`is_permanent`): bad input, a
git refusal and a backend error marked not retryable (a missing image, a spec the engine
rejects) are permanent; an engine that is down or answered 5xx is not. :func:`after_failure`
turns that and the session's attempt count into an :class:`Outcome` — give up now (phase
``failed`` with the reason), or try again after an exponential back-off — and
:func:`failure_changes` says what that writes on the session as the store has it when the
failure is written down, so the reconciler only writes what it is told. All are table-tested.

A session that has failed already keeps the reason it failed: a later failure of an attempt
that was under way (a snapshot of it read before it failed) is told in its events, never
written over that reason, nor its phase or attempts. So is the failure of an attempt whose
session the person deleted meanwhile: ``failed`` over ``deleting`` would offer a retry of
what they deleted, and the delete goes on. Only a retry the person asks for (the
``retry`` verb: phase ``creating``, no reason, no attempts) starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from appliance.errors import BackendError, ClauderonError, GitError, InvalidInput
from appliance.sessions import Phase


@dataclass(frozen=True, slots=True, kw_only=True)
class FailurePolicy:
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    attempts: int
    #: None: the session fails now (``reason`` says why); otherwise wait this long.
    retry_in: float | None
    reason: str


def is_permanent(exc: ClauderonError) -> bool:
    """Whether trying the same step again cannot help."""
    if isinstance(exc, (InvalidInput, GitError)):
        return True
    return isinstance(exc, BackendError) and not exc.retryable


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Delay before attempt ``attempt + 1``: base, 2x base, 4x base, ... up to ``cap``."""
    if attempt <= 0:
        return 0.0
    return float(min(cap, base * 2 ** (attempt - 1)))


def after_failure(exc: ClauderonError, *, attempts: int, policy: FailurePolicy) -> Outcome:
    """The session's lot after its ``attempts``-th failed try, ending in ``exc``."""
    if is_permanent(exc):
        return Outcome(attempts=attempts, retry_in=None, reason=exc.message)
    if attempts >= policy.max_attempts:
        return Outcome(attempts=attempts, retry_in=None,
                       reason=f"gave up after {attempts} attempts: {exc.message}")
    delay = backoff_seconds(attempts, policy.backoff_seconds, policy.backoff_max_seconds)
    return Outcome(attempts=attempts, retry_in=delay,
                   reason=(f"attempt {attempts}/{policy.max_attempts} failed: {exc.message}; "
                           f"retrying in {delay:.0f}s"))


def failure_changes(phase: Phase, outcome: Outcome, now: datetime) -> dict[str, Any] | None:
    """What ``outcome`` writes on a session whose phase is ``phase`` as the store has it now;
    None: nothing (it has failed already, and why it failed is what the person reads until
    they retry it; or it is being deleted, which goes on)."""
    if phase in (Phase.FAILED, Phase.DELETING):
        return None
    if outcome.retry_in is None:
        return {"phase": Phase.FAILED, "status_reason": outcome.reason,
                "attempts": outcome.attempts, "retry_at": None}
    return {"attempts": outcome.attempts, "status_reason": outcome.reason,
            "retry_at": now + timedelta(seconds=outcome.retry_in)}
