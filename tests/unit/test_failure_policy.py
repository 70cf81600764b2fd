"""The failure policy as a table: which errors are permanent, and what a session's
``attempts``-th failure means for it (fail now, or try again after a back-off)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from appliance.errors import (
    BackendError,
    BackendUnavailable,
    ClauderonError,
    GitError,
    InvalidInput,
    ServiceUnavailable,
)
from appliance.reconcile.failures import (
    FailurePolicy,
    Outcome,
    after_failure,
    failure_changes,
    is_permanent,
)
from appliance.sessions import Phase

POLICY = FailurePolicy(max_attempts=3, backoff_seconds=30.0, backoff_max_seconds=300.0)


@pytest.mark.parametrize(("exc", "permanent"), [
    (InvalidInput("bad name"), True),
    (GitError("no such base"), True),
    (BackendError("no image", retryable=False), True),
    (BackendError("engine answered 500"), False),
    (BackendUnavailable("engine down"), False),
    (ServiceUnavailable("busy"), False),
])
def test_is_permanent(exc: ClauderonError, permanent: bool) -> None:
    assert is_permanent(exc) is permanent


@pytest.mark.parametrize(("exc", "attempts", "expected"), [
    # Permanent: fails at once, whatever the count, with the error's own words.
    (InvalidInput("bad name"), 1, Outcome(attempts=1, retry_in=None, reason="bad name")),
    (BackendError("no image", retryable=False), 2,
     Outcome(attempts=2, retry_in=None, reason="no image")),
    # Retryable: exponential back-off while attempts remain ...
    (BackendError("500"), 1, Outcome(
        attempts=1, retry_in=30.0, reason="attempt 1/3 failed: 500; retrying in 30s")),
    (BackendUnavailable("down"), 2, Outcome(
        attempts=2, retry_in=60.0, reason="attempt 2/3 failed: down; retrying in 60s")),
    # ... then gives up, saying how often it tried.
    (BackendError("500"), 3, Outcome(
        attempts=3, retry_in=None, reason="gave up after 3 attempts: 500")),
    (BackendError("500"), 7, Outcome(
        attempts=7, retry_in=None, reason="gave up after 7 attempts: 500")),
])
def test_after_failure(exc: ClauderonError, attempts: int, expected: Outcome) -> None:
    assert after_failure(exc, attempts=attempts, policy=POLICY) == expected


def test_the_back_off_stops_at_its_cap() -> None:
    many = FailurePolicy(max_attempts=100, backoff_seconds=30.0, backoff_max_seconds=300.0)
    assert after_failure(BackendError("500"), attempts=20, policy=many).retry_in == 300.0


NOW = datetime(2026, 1, 1, tzinfo=UTC)
GIVE_UP = Outcome(attempts=3, retry_in=None, reason="gave up after 3 attempts: 500")
AGAIN = Outcome(attempts=1, retry_in=30.0, reason="attempt 1/3 failed: 500; retrying in 30s")


@pytest.mark.parametrize(("phase", "outcome", "expected"), [
    # Not failed yet: a final failure fails it, a retryable one backs off.
    (Phase.CREATING, GIVE_UP, {"phase": Phase.FAILED, "status_reason": GIVE_UP.reason,
                               "attempts": 3, "retry_at": None}),
    (Phase.RUNNING, GIVE_UP, {"phase": Phase.FAILED, "status_reason": GIVE_UP.reason,
                              "attempts": 3, "retry_at": None}),
    (Phase.CREATING, AGAIN, {"status_reason": AGAIN.reason, "attempts": 1,
                             "retry_at": NOW + timedelta(seconds=30)}),
    (Phase.STOPPED, AGAIN, {"status_reason": AGAIN.reason, "attempts": 1,
                            "retry_at": NOW + timedelta(seconds=30)}),
    # Failed already: nothing is written over why (nor its phase, attempts, back-off).
    (Phase.FAILED, AGAIN, None),
    (Phase.FAILED, GIVE_UP, None),
    # Being deleted: the delete goes on; neither failed nor a back-off is written over it.
    (Phase.DELETING, AGAIN, None),
    (Phase.DELETING, GIVE_UP, None),
])
def test_what_a_failure_writes(phase: Phase, outcome: Outcome,
                               expected: dict[str, object] | None) -> None:
    assert failure_changes(phase, outcome, NOW) == expected
