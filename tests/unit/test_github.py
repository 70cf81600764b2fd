"""GitHub's answers read into a session's pull status, and the one wording of it (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from appliance import github, hostgit, publish, pullstate
from appliance.errors import Conflict, Forbidden, InvalidInput, NotFound, RemoteError
from appliance.github import RepoSlug
from appliance.pullstate import Checks, Mergeable, PullState, PullStatus, Review

BASE = PullStatus(repo="o/r", branch="clauderon/fix", pushed_sha="a" * 40,
                  pushed_at="2024-05-01T12:00:00+00:00")


@pytest.mark.parametrize(("url", "slug"), [
    ("https://github.com/o/r.git", "o/r"),
    ("https://github.com/o/r", "o/r"),
    ("https://GitHub.com/o/r/", "o/r"),
    ("git@github.com:o/r.git", "o/r"),
    ("ssh://git@github.com/o/r.git", "o/r"),
    ("https://gitlab.com/o/r.git", None),
    ("https://github.com:8443/o/r.git", None),
    ("http://github.com/o/r.git", None),
    ("https://github.com/o/r/extra", None),
    ("https://github.com/../r", None),
    ("https://x@github.com.evil.test/o/r", None),
    ("", None),
    (None, None),
])
def test_which_remotes_name_a_github_repository(url: str | None, slug: str | None) -> None:
    found = github.repo_slug(url)
    assert (str(found) if found else None) == slug
    if found is not None:
        assert github.push_url(found) == f"https://github.com/{slug}.git"


def pr(number: int, state: str = "open", ref: str = "clauderon/fix", **more: Any) -> dict[str, Any]:
    return {"number": number, "state": state, "title": f"PR {number}",
            "html_url": f"https://github.com/o/r/pull/{number}",
            "head": {"ref": ref, "sha": "b" * 40}, "base": {"ref": "main"}, **more}


def test_the_sessions_pull_request_is_the_open_one_else_the_newest() -> None:
    assert github.newest_pull([], "clauderon/fix") is None
    found = github.newest_pull([pr(3, "closed"), pr(5, "open"), pr(9, "closed"),
                                pr(11, ref="clauderon/other")], "clauderon/fix")
    assert found is not None and found["number"] == 5
    found = github.newest_pull([pr(3, "closed"), pr(9, "closed")], "clauderon/fix")
    assert found is not None and found["number"] == 9


def run(name: str, status: str, conclusion: str | None, id: int = 1) -> dict[str, Any]:
    return {"id": id, "name": name, "status": status, "conclusion": conclusion,
            "html_url": f"https://ci.test/{name}"}


def test_checks_are_summed_with_the_newest_run_of_each_name() -> None:
    assert github.checks_of([])[0] is Checks.NONE
    summary, passed, failed, pending, runs = github.checks_of([
        run("lint", "completed", "failure", id=1), run("lint", "completed", "success", id=2),
        run("test", "in_progress", None), run("docs", "completed", "skipped")])
    assert (summary, passed, failed, pending) == (Checks.PENDING, 2, 0, 1)
    assert [r.name for r in runs] == ["docs", "lint", "test"]
    assert github.checks_of([run("t", "completed", "timed_out"), run("u", "queued", None)])[
        0] is Checks.FAILURE
    assert github.checks_of([run("t", "completed", "neutral")])[0] is Checks.SUCCESS


def review(who: str, state: str) -> dict[str, Any]:
    return {"user": {"login": who}, "state": state}


@pytest.mark.parametrize(("reviews", "decision"), [
    ([], Review.NONE),
    ([review("a", "COMMENTED")], Review.COMMENTED),
    ([review("a", "APPROVED"), review("a", "COMMENTED")], Review.APPROVED),
    ([review("a", "APPROVED"), review("b", "CHANGES_REQUESTED")], Review.CHANGES_REQUESTED),
    ([review("b", "CHANGES_REQUESTED"), review("b", "APPROVED")], Review.APPROVED),
    ([review("b", "CHANGES_REQUESTED"), review("b", "DISMISSED")], Review.NONE),
])
def test_the_review_decision(reviews: list[dict[str, Any]], decision: Review) -> None:
    assert github.review_of(reviews) is decision


@pytest.mark.parametrize(("fields", "mergeable"), [
    ({"mergeable": True, "mergeable_state": "clean"}, Mergeable.CLEAN),
    ({"mergeable": False, "mergeable_state": "dirty"}, Mergeable.CONFLICTING),
    ({"mergeable": False, "mergeable_state": "unknown"}, Mergeable.CONFLICTING),
    ({"mergeable": None, "mergeable_state": "unknown"}, Mergeable.UNKNOWN),
    ({"mergeable": True, "mergeable_state": "blocked"}, Mergeable.BLOCKED),
    ({"mergeable": True, "mergeable_state": "has_hooks"}, Mergeable.UNKNOWN),
])
def test_mergeability(fields: dict[str, Any], mergeable: Mergeable) -> None:
    assert github.mergeable_of(fields) is mergeable


def test_an_open_pull_request_read_whole() -> None:
    detail = pr(7, mergeable=True, mergeable_state="unstable")
    status = github.status_of(BASE, pr(7), detail=detail, now="t",
                              runs=[run("ci", "completed", "failure")],
                              reviews=[review("a", "APPROVED")])
    assert (status.number, status.state, status.checks, status.review, status.mergeable) == (
        7, PullState.OPEN, Checks.FAILURE, Review.APPROVED, Mergeable.UNSTABLE)
    assert status.pushed_sha == BASE.pushed_sha and status.head_sha == "b" * 40
    assert pullstate.summary(status) == "#7 open · checks 0/1, 1 failed · approved · unstable"
    assert pullstate.tone(status) == "bad" and pullstate.label(status) == "PR #7 ✗"
    assert PullStatus.from_json(status.to_json()) == status


def test_states_and_their_words() -> None:
    merged = github.status_of(BASE, pr(7, "closed", merged_at="2024-05-02T00:00:00Z"), now="t")
    assert merged.state is PullState.MERGED and pullstate.label(merged) == "PR #7 merged"
    assert pullstate.tone(merged) == "good"
    draft = github.status_of(BASE, pr(8, draft=True), now="t")
    assert draft.state is PullState.DRAFT and pullstate.label(draft) == "PR #8 draft"
    none = github.status_of(BASE, None, now="t")
    assert pullstate.summary(none) == "pushed aaaaaaa, no pull request"
    assert pullstate.label(none) == "pushed" and pullstate.tone(none) == "neutral"
    ready = github.status_of(BASE, pr(9), detail=pr(9, mergeable=True, mergeable_state="clean"),
                             runs=[run("ci", "completed", "success")], now="t")
    assert pullstate.summary(ready) == "#9 open · checks 1/1 · ready to merge"
    assert pullstate.label(ready) == "PR #9 ✓"
    pending = github.status_of(BASE, pr(9), runs=[run("ci", "queued", None)], now="t")
    assert pullstate.label(pending) == "PR #9 …"
    assert ready.same_as(github.status_of(BASE, pr(9), detail=pr(
        9, mergeable=True, mergeable_state="clean"), runs=[run("ci", "completed", "success")],
        now="later"))


@pytest.mark.parametrize(("status", "kind", "words"), [
    (401, RemoteError, "github_token"),
    (403, Forbidden, "Resource not accessible"),
    (404, NotFound, "Not Found"),
    (405, Conflict, "Pull Request is not mergeable"),
    (409, Conflict, "refresh and try again"),
    (422, InvalidInput, "A pull request already exists"),
    (502, RemoteError, "502"),
])
def test_error_answers_keep_githubs_words(status: int, kind: type[Exception],
                                          words: str) -> None:
    body = {405: {"message": "Pull Request is not mergeable"},
            403: {"message": "Resource not accessible by integration"},
            404: {"message": "Not Found"},
            422: {"message": "Validation Failed",
                  "errors": [{"message": "A pull request already exists for o:clauderon/x."}]},
            }.get(status, {"message": "Bad credentials"} if status == 401 else None)
    error = github.refusal(status, body, "merge #7")
    assert isinstance(error, kind) and words in error.message


def test_the_push_carries_no_credential_in_argv() -> None:
    sha = "ab" * 20
    argv = publish.push_argv("https://github.com/o/r.git", "clauderon/fix", sha, force=False,
                             ca=None)
    # The commit read, not the branch as a sync may have moved it since.
    assert argv[-2:] == ["https://github.com/o/r.git", f"{sha}:refs/heads/clauderon/fix"]
    assert "--end-of-options" in argv and "protocol.https.allow=always" in argv
    assert " ".join(hostgit.PACKING) in " ".join(argv)  # the agent's files packed streamed
    forced = publish.push_argv("https://github.com/o/r.git", "clauderon/fix", sha,
                               force=True, ca=None)
    assert forced[-1] == f"+{sha}:refs/heads/clauderon/fix"
    env = publish.proxy_env("http://clauderon:secret@127.0.0.1:1")
    assert env == {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.proxy",
                   "GIT_CONFIG_VALUE_0": "http://clauderon:secret@127.0.0.1:1"}
    assert not any("secret" in a for a in argv + forced)
    assert str(RepoSlug(owner="o", name="r")) == "o/r"


def test_text_the_agent_may_choose_carries_no_terminal_control() -> None:
    """A commit subject becomes the title, a workflow's job name a check run's: an agent
    could put escape sequences there for a person's terminal to obey."""
    evil = "ok\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\r\nx"
    status = github.status_of(BASE, pr(7, title=evil, html_url="javascript:alert(1)"),
                              detail=pr(7, mergeable_state="clean"),
                              runs=[{"id": 1, "name": evil, "status": "completed",
                                     "conclusion": "success",
                                     "html_url": "https://github.com/o/r/runs/1"}],
                              now="t")
    assert status.title is not None and status.runs
    for text in (status.title, status.runs[0].name, pullstate.summary(status)):
        assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text), repr(text)
    assert status.url is None  # not https: no link is offered
    assert status.runs[0].url == "https://github.com/o/r/runs/1"


SHA = "a" * 40


@pytest.mark.parametrize(("fields", "head", "field", "says"), [
    ({}, None, None, "has no open pull request"),
    ({"number": 3, "state": PullState.CLOSED}, None, None, "it is closed"),
    ({"number": 3, "state": PullState.DRAFT, "base": "main"}, None, None, "is a draft"),
    # The agent may edit its pull request: retargeted, it is not merged where it points.
    ({"number": 3, "state": PullState.OPEN, "base": "release"}, None, "base",
     "#3 now merges into release, not main"),
    ({"number": 3, "state": PullState.OPEN, "base": None}, None, "base", "into ?, not main"),
    ({"number": 3, "state": PullState.OPEN, "base": "main", "head_sha": "b" * 40}, SHA,
     "head_sha", "head moved to bbbbbbbbbbbb since you looked (aaaaaaaaaaaa)"),
])
def test_what_is_not_merged_and_why(fields: dict[str, Any], head: str | None,
                                    field: str | None, says: str) -> None:
    status = PullStatus(repo="o/r", branch="clauderon/x", **fields)
    with pytest.raises(Conflict) as refused:
        pullstate.to_merge(status, "main", head)
    assert refused.value.field == field and says in refused.value.message


def test_the_open_pull_request_on_the_sessions_base_is_merged() -> None:
    status = PullStatus(repo="o/r", branch="clauderon/x", number=3, state=PullState.OPEN,
                        base="main", head_sha=SHA)
    assert pullstate.to_merge(status, "main", SHA) == 3
    assert pullstate.to_merge(status, "main", None) == 3  # no head seen: the open one
