"""The failure policy (pure): what a failed step means for its session.

Theory of operation
-------------------
A step that fails raises an error of the tree (:mod:`appliance.errors`). Whether trying again
can help is a property of the error, decided here once (:func:`is_permanent`): bad input, a
git refusal and a backend error marked not retryable (a missing image, a spec the engine
rejects) are permanent; an engine that is down or answered 5xx is not. :func:`after_failure`
turns that and the session's attempt count into an :class:`Outcome` — give up now (phase
``failed`` with the reason), or try again after an exponential back-off — so the reconciler
only writes down what it is told. Both are table-tested.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import BackendError, ClauderonError, GitError, InvalidInput


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
