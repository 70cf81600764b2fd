"""A session's branch on its remote: pushed where, its pull request, CI, review (pure).

:class:`PullStatus` is what the appliance last learned about a session's branch on GitHub:
the commit it pushed, the pull request whose head is the branch (number, state, title, head
commit, base), the check runs on that head commit summed up (:class:`Checks`), the review
decision (:class:`Review`) and whether GitHub would merge it now (:class:`Mergeable`). It is
kept on the session row (the store writes :meth:`PullStatus.to_json`), so every UI gets it
with the session and live through ``/ws/events``; :func:`summary` and :func:`tone` are the
one wording and colour every UI shows. Built from GitHub's answers by
:mod:`appliance.github`; refreshed by the API on demand and by the reconciler on a schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from appliance.errors import Conflict

#: At most this many check runs are kept and shown (the counts cover them all).
MAX_RUNS = 50


class PullState(StrEnum):
    NONE = "none"  # no pull request has the branch as its head
    OPEN = "open"
    DRAFT = "draft"
    MERGED = "merged"
    CLOSED = "closed"


class Checks(StrEnum):
    NONE = "none"  # no check run on the head commit
    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"


class Review(StrEnum):
    NONE = "none"
    COMMENTED = "commented"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"


class Mergeable(StrEnum):
    """GitHub's ``mergeable_state``, with ``dirty`` named for what it means."""

    UNKNOWN = "unknown"  # not computed yet, or no open pull request
    CLEAN = "clean"
    CONFLICTING = "conflicting"
    BLOCKED = "blocked"  # branch protection: a review or a required check is missing
    BEHIND = "behind"
    UNSTABLE = "unstable"  # mergeable, but a check failed
    DRAFT = "draft"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckRun:
    name: str
    status: str  # queued | in_progress | completed
    conclusion: str | None  # success | failure | neutral | cancelled | skipped | ...
    url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PullStatus:
    repo: str  # owner/name
    branch: str
    pushed_sha: str | None = None
    pushed_at: str | None = None
    number: int | None = None
    url: str | None = None
    title: str | None = None
    state: PullState = PullState.NONE
    head_sha: str | None = None
    base: str | None = None
    checks: Checks = Checks.NONE
    passed: int = 0
    failed: int = 0
    pending: int = 0
    runs: tuple[CheckRun, ...] = field(default_factory=tuple)
    review: Review = Review.NONE
    mergeable: Mergeable = Mergeable.UNKNOWN
    checked_at: str | None = None
    #: Why the last refresh failed (kept beside what was learned before), or None.
    error: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state in (PullState.OPEN, PullState.DRAFT)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["runs"] = [asdict(r) for r in self.runs]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PullStatus:
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["runs"] = tuple(CheckRun(**r) for r in data.get("runs", ()))
        for key, kind in (("state", PullState), ("checks", Checks), ("review", Review),
                          ("mergeable", Mergeable)):
            if key in values:
                values[key] = kind(values[key])
        return cls(**values)

    def same_as(self, other: PullStatus | None) -> bool:
        """Whether ``other`` says the same, when it was learned aside."""
        return other is not None and replace(self, checked_at=None) == replace(
            other, checked_at=None)


def summary(p: PullStatus) -> str:
    """One line every UI shows: ``#12 open · checks 3/4 (1 pending) · approved``."""
    if p.state is PullState.NONE:
        head = f"pushed {p.pushed_sha[:7]}, no pull request" if p.pushed_sha \
            else "no pull request"
        return head + (f" ({p.error})" if p.error else "")
    parts = [f"#{p.number} {p.state}"]
    if p.is_open:
        total = p.passed + p.failed + p.pending
        if total:
            text = f"checks {p.passed}/{total}"
            if p.failed:
                text += f", {p.failed} failed"
            if p.pending:
                text += f", {p.pending} running"
            parts.append(text)
        if p.review is not Review.NONE:
            parts.append(str(p.review).replace("_", " "))
        if p.mergeable is not Mergeable.UNKNOWN:
            parts.append({Mergeable.CLEAN: "ready to merge",
                          Mergeable.CONFLICTING: "conflicts"}.get(p.mergeable,
                                                                   str(p.mergeable)))
    if p.error:
        parts.append(f"refresh failed: {p.error}")
    return " · ".join(parts)


def tone(p: PullStatus) -> str:
    """``good``, ``bad``, ``pending`` or ``neutral``: the badge's colour, everywhere."""
    if p.state is PullState.MERGED:
        return "good"
    if not p.is_open:
        return "neutral"
    if p.checks is Checks.FAILURE or p.review is Review.CHANGES_REQUESTED \
            or p.mergeable is Mergeable.CONFLICTING:
        return "bad"
    if p.checks is Checks.PENDING:
        return "pending"
    if p.mergeable is Mergeable.CLEAN or (p.checks is Checks.SUCCESS
                                          and p.review is Review.APPROVED):
        return "good"
    return "neutral"


def label(p: PullStatus) -> str:
    """The list's short badge: ``PR #12 ✓``, ``PR #12 ✗``, ``PR #12 …``, ``merged``."""
    if p.state is PullState.NONE:
        return "pushed" if p.pushed_sha else ""
    if p.state is PullState.MERGED:
        return f"PR #{p.number} merged"
    if p.state is PullState.CLOSED:
        return f"PR #{p.number} closed"
    mark = {"good": " ✓", "bad": " ✗", "pending": " …"}.get(tone(p), "")
    return f"PR #{p.number}{' draft' if p.state is PullState.DRAFT else ''}{mark}"


def to_merge(status: PullStatus, target: str, head_sha: str | None) -> int:
    """The number of the pull request to merge, or :class:`Conflict` saying why none is:
    none is open, it is a draft, its base is not ``target`` (the session's base: its agent
    may have retargeted it), or its head is not ``head_sha`` (the head the person saw)."""
    if not status.is_open or status.number is None:
        raise Conflict(f"{status.branch} has no open pull request to merge "
                       f"({'it is ' + str(status.state) if status.number else 'none'}); "
                       "open one with `clauderon push --pr`")
    if status.state is PullState.DRAFT:
        raise Conflict(f"#{status.number} is a draft; mark it ready for review first")
    if status.base != target:
        raise Conflict(f"#{status.number} now merges into {status.base or '?'}, not {target}, "
                       f"the branch this session was made from; set its base back to "
                       f"{target} on GitHub, or merge it there if you meant it", field="base")
    if head_sha is not None and status.head_sha != head_sha:
        raise Conflict(f"#{status.number}'s head moved to {(status.head_sha or '?')[:12]} "
                       f"since you looked ({head_sha[:12]}); look at it again, then merge",
                       field="head_sha")
    return status.number
