"""GitHub's REST answers read into :class:`~appliance.pullstate.PullStatus` (pure).

What the appliance asks GitHub about a session's branch, and how it reads the answers:

* ``GET /repos/{o}/{r}/pulls?head={o}:{branch}&state=all``: the pull requests whose head is
  the branch (newest first); the newest is the session's (:func:`newest_pull`);
* ``GET /repos/{o}/{r}/pulls/{n}``: one open pull request with ``mergeable_state``, which the
  list leaves out (:func:`mergeable_of`);
* ``GET /repos/{o}/{r}/commits/{sha}/check-runs``: the runs on the head commit, paged by
  the ``Link`` header (:func:`checks_of`);
* ``GET /repos/{o}/{r}/pulls/{n}/reviews``: the review decision, each reviewer's latest
  approval or request for changes (:func:`review_of`; REST has no ``reviewDecision``).

Remotes: ``https://github.com/o/r(.git)`` and ``git@github.com:o/r(.git)`` (or
``ssh://git@github.com/o/r``) name a repository; pushes always go over https, where the
proxy injects the credential (:func:`push_url`). :func:`refusal` turns an error answer into
the error tree, keeping GitHub's own message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from appliance.errors import (
    ClauderonError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RemoteError,
)
from appliance.pullstate import (
    MAX_RUNS,
    CheckRun,
    Checks,
    Mergeable,
    PullState,
    PullStatus,
    Review,
)

HOST = "github.com"
API = "https://api.github.com"
_PART = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_SSH = re.compile(r"^(?:ssh://)?git@github\.com[:/](?P<path>[^?#]+)$")
_FAILED = frozenset({"failure", "timed_out", "cancelled", "action_required", "startup_failure",
                     "stale"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoSlug:
    owner: str
    name: str

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def path(self) -> str:
        return f"/repos/{self.owner}/{self.name}"


def repo_slug(url: str | None) -> RepoSlug | None:
    """The GitHub repository a remote URL names, or None (another host, or not a URL)."""
    if not url:
        return None
    found = _SSH.match(url)
    if found is not None:
        path = found.group("path")
    else:
        parts = urlsplit(url)
        if parts.scheme != "https" or (parts.hostname or "").lower() != HOST or parts.port:
            return None
        path = parts.path
    bits = path.strip("/").removesuffix(".git").split("/")
    if len(bits) != 2 or not all(_PART.fullmatch(b) for b in bits) or ".." in bits:
        return None
    return RepoSlug(owner=bits[0], name=bits[1])


def push_url(slug: RepoSlug) -> str:
    """Where the appliance pushes: https, no credential in it (the proxy adds one)."""
    return f"https://{HOST}/{slug.owner}/{slug.name}.git"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: Any, limit: int) -> str:
    """Text the agent may have chosen (a commit subject as the title, a workflow's job name
    as a check run's): control characters out, so no terminal that prints it obeys them."""
    return _CONTROL.sub(" ", str(text or ""))[:limit]


def _state(pr: Mapping[str, Any]) -> PullState:
    if pr.get("merged_at") or pr.get("merged"):
        return PullState.MERGED
    if pr.get("state") == "open":
        return PullState.DRAFT if pr.get("draft") else PullState.OPEN
    return PullState.CLOSED


def newest_pull(pulls: Sequence[Mapping[str, Any]], branch: str) -> Mapping[str, Any] | None:
    """The pull request whose head is ``branch``: an open one first, else the newest."""
    mine = [p for p in pulls if isinstance(p, Mapping)
            and (p.get("head") or {}).get("ref") == branch]
    open_ = [p for p in mine if p.get("state") == "open"]
    pool = open_ or mine
    return max(pool, key=lambda p: int(p.get("number") or 0)) if pool else None


def mergeable_of(pr: Mapping[str, Any]) -> Mergeable:
    state = pr.get("mergeable_state")
    if pr.get("mergeable") is False and state in (None, "unknown"):
        return Mergeable.CONFLICTING
    if state == "dirty":
        return Mergeable.CONFLICTING
    try:
        return Mergeable(str(state))
    except ValueError:
        return Mergeable.UNKNOWN  # has_hooks and whatever GitHub adds next


def checks_of(runs: Iterable[Mapping[str, Any]]) -> tuple[Checks, int, int, int,
                                                          tuple[CheckRun, ...]]:
    """The summary, passed, failed and pending counts, and the runs (the newest run of
    each name: a re-run replaces the run it repeats)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for run in runs:
        name = str(run.get("name") or "check")
        if name not in latest or int(run.get("id") or 0) > int(latest[name].get("id") or 0):
            latest[name] = run
    passed = failed = pending = 0
    kept: list[CheckRun] = []
    for name, run in sorted(latest.items()):
        status, conclusion = str(run.get("status") or "queued"), run.get("conclusion")
        if status != "completed":
            pending += 1
        elif conclusion in _FAILED:
            failed += 1
        else:
            passed += 1
        kept.append(CheckRun(name=clean(name, 200), status=clean(status, 40),
                             conclusion=clean(conclusion, 40) if conclusion else None,
                             url=_https(run.get("html_url"))))
    summary = (Checks.NONE if not latest else Checks.FAILURE if failed
               else Checks.PENDING if pending else Checks.SUCCESS)
    return summary, passed, failed, pending, tuple(kept[:MAX_RUNS])


def review_of(reviews: Iterable[Mapping[str, Any]]) -> Review:
    """Each reviewer's latest say (a comment does not undo an approval; a dismissal does)."""
    said: dict[str, str] = {}
    commented = False
    for r in reviews:
        who = str((r.get("user") or {}).get("login") or "")
        state = str(r.get("state") or "")
        if state in ("APPROVED", "CHANGES_REQUESTED"):
            said[who] = state
        elif state == "DISMISSED":
            said.pop(who, None)
        elif state == "COMMENTED":
            commented = True
    if "CHANGES_REQUESTED" in said.values():
        return Review.CHANGES_REQUESTED
    if "APPROVED" in said.values():
        return Review.APPROVED
    return Review.COMMENTED if commented else Review.NONE


def status_of(base: PullStatus, pr: Mapping[str, Any] | None, *,
              detail: Mapping[str, Any] | None = None,
              runs: Sequence[Mapping[str, Any]] = (),
              reviews: Sequence[Mapping[str, Any]] = (), now: str) -> PullStatus:
    """What is known now: ``base`` (what was pushed) with the pull request's facts."""
    pushed = PullStatus(repo=base.repo, branch=base.branch, pushed_sha=base.pushed_sha,
                        pushed_at=base.pushed_at, checked_at=now)
    if pr is None:
        return pushed
    full = detail or pr
    checks, passed, failed, pending, kept = checks_of(runs)
    state = _state(full)
    return replace(
        pushed, number=int(pr["number"]),
        url=_https(pr.get("html_url")), title=clean(pr.get("title"), 300),
        state=state, head_sha=str((pr.get("head") or {}).get("sha") or "") or None,
        base=str((pr.get("base") or {}).get("ref") or "") or None,
        checks=checks, passed=passed, failed=failed, pending=pending, runs=kept,
        review=review_of(reviews),
        mergeable=mergeable_of(full) if detail is not None and state is not PullState.MERGED
        else Mergeable.UNKNOWN)


def _https(url: Any) -> str | None:
    """A link every UI may offer: https only, no control characters."""
    text = clean(url, 500)
    return text if text.startswith("https://") and " " not in text else None


def message_of(body: Any) -> str:
    """GitHub's own words for an error answer (``message`` and the first ``errors``)."""
    if not isinstance(body, Mapping):
        return ""
    text = str(body.get("message") or "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        extra = first.get("message") if isinstance(first, Mapping) else str(first)
        if extra:
            text = f"{text}: {extra}" if text else str(extra)
    return text[:500]


def refusal(status: int, body: Any, what: str) -> ClauderonError:
    """An error answer as the error tree: whose fault, what to do, GitHub's words kept."""
    said = message_of(body) or f"HTTP {status}"
    if status == 401:
        return RemoteError(f"GitHub refused the credential for {what} ({said}): set "
                           "github_token in the appliance's credentials")
    if status == 403:
        return Forbidden(f"GitHub does not allow {what}: {said}")
    if status == 404:
        return NotFound(f"GitHub knows no {what} ({said}); is the token allowed to see the "
                        "repository?")
    if status == 405:
        return Conflict(f"GitHub will not {what}: {said}")
    if status == 409:
        return Conflict(f"GitHub will not {what}: {said}; refresh and try again")
    if status == 422:
        return InvalidInput(f"GitHub refused {what}: {said}")
    return RemoteError(f"GitHub answered {status} to {what}: {said}")
