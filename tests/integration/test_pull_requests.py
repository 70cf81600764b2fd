"""Push, pull request, CI and merge per session, on the real appliance and a fake GitHub.

The appliance runs as processes (proxy, API, reconciler) with the proxy's ``[upstreams]``
sending ``github.com`` and ``api.github.com`` to :class:`FakeGitHub` on 127.0.0.1 (real
``git http-backend`` repositories, the REST calls the appliance makes); the GitHub token is
a canary in the proxy's environment only, and the fake answers nothing without it. Sessions
are real containers of the agent image (it has git and curl); what the agent does runs in
them as uid 1000. The person's side is the real CLI over the API's Unix socket.

Attacks: the agent, through its own proxy identity, cannot merge a pull request or push
``main``; what the agent does to other refs in its workspace never reaches the remote
through a person's push; the appliance's own identity cannot push ``main`` either; a pull
request of another branch is never merged, even when the list answers it for the session's,
nor one the agent retargeted at another base; a session changes no pull request but its own,
and none of the person's issues or comments.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from appliance.github_client import owner_proxy
from appliance.tokens import APPLIANCE_ID, load_or_create_instance_key
from tests.conftest import user_git
from tests.support import agent_app
from tests.support.agent_app import behind_proxy, create
from tests.support.appliance import BIN, Appliance, wait_for
from tests.support.fake_github import TOKEN, FakeGitHub, git
from tests.support.terminal import on_a_terminal

SLUG = "octo/app"
#: The agent's commands here may fail: each test checks the exit code itself.
in_container = partial(agent_app.in_container, ok=False)


@pytest.fixture
def app(tmp_path: Path, agent_image: str, github: FakeGitHub) -> Iterator[Appliance]:
    with behind_proxy(tmp_path / "home", agent_image, github.proxy_toml(),
                      config="[github]\nrefresh_seconds = 1\n", env={"GITHUB_TOKEN": TOKEN}) as a:
        yield a


@pytest.fixture
def origin(repo: Path, github: FakeGitHub) -> Path:
    """The user's repository, its origin on (the fake) GitHub."""
    user_git(repo, "remote", "add", "origin", f"https://github.com/{SLUG}.git")
    github.create_repo(SLUG, repo)
    return repo


def agent_commit(app: Appliance, s: dict[str, Any], name: str) -> str:
    code, out = in_container(app, s, f"echo {name} > {name}.txt && git add {name}.txt && "
                                     f"git commit -qm 'add {name}' && git rev-parse HEAD")
    assert code == 0, out
    return out.split()[-1]


def with_pull(app: Appliance, origin: Path, name: str, work: str = "mine") -> dict[str, Any]:
    """Session ``name``, its ``work`` committed and pushed with a pull request."""
    s = create(app, origin, name)
    agent_commit(app, s, work)
    app.cli("push", name, "--pr")
    return s


def cli_json(app: Appliance, *args: str) -> Any:
    return json.loads(app.cli(*args, "--json").stdout)


def as_agent(app: Appliance, s: dict[str, Any], method: str, path: str,
             doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The agent's GitHub API call from inside its container: (status, JSON answer)."""
    _, out = in_container(app, s, (
        "curl -s -w '\\n%{http_code}' -H 'Authorization: Bearer x' "
        f"-H 'content-type: application/json' -X {method} -d '{json.dumps(doc)}' "
        f"https://api.github.com{path}"))
    body, _, code = out.strip().rpartition("\n")
    return code, json.loads(body[body.find("{"):]) if "{" in body else {}


def gql(mutation: str, node: str) -> dict[str, Any]:
    """A GraphQL mutation naming the node ``node`` by the variable ``$id``."""
    return {"query": f"mutation($id: ID!) {{ {mutation} }}", "variables": {"id": node}}


def test_push_open_a_pull_request_follow_ci_and_merge(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    s = create(app, origin, "feature")
    head = agent_commit(app, s, "one")
    github.checks[head] = [
        {"id": 1, "name": "lint", "status": "completed", "conclusion": "success"},
        {"id": 2, "name": "tests", "status": "in_progress", "conclusion": None}]

    done = cli_json(app, "push", "feature", "--pr")
    assert done["commit"] == head
    assert github.tip(SLUG, s["branch"]) == head  # the branch is on the remote
    pull = done["session"]["pull"]
    assert (pull["number"], pull["state"], pull["base"], pull["head_sha"]) == (1, "open",
                                                                              "main", head)
    assert (pull["checks"], pull["passed"], pull["pending"]) == ("pending", 1, 1)
    assert pull["label"] == "PR #1 …" and pull["tone"] == "pending"
    assert github.pull(1)["head"]["ref"] == s["branch"]

    # The push and the API calls went through the proxy as the appliance itself: the token
    # is nowhere in the user's repository, and every GitHub line in the audit is its own.
    assert TOKEN not in (origin / ".git" / "config").read_text()
    mine = app.audit(lambda x: x.get("host") in ("github.com", "api.github.com")
                     and x["status"] != 407)  # git asks once without proxy credentials first
    assert mine and {x.get("session") for x in mine} == {APPLIANCE_ID}
    assert {x["credential"] for x in mine if x["method"] != "CONNECT"} == {"github_token"}

    # CI and the review change on GitHub; the schedule (every second here) brings them in.
    github.checks[head][1].update(status="completed", conclusion="success")
    github.reviews[1] = [{"user": {"login": "reviewer"}, "state": "APPROVED"}]

    def caught_up() -> dict[str, Any] | None:
        now = app.session("feature")
        p = now.get("pull") or {}
        return now if (p.get("review"), p.get("checks")) == ("approved", "success") else None

    seen = wait_for(caught_up, what="CI and the review to show")
    assert seen["pull"]["mergeable"] == "clean" and seen["pull"]["passed"] == 2
    assert seen["pull"]["tone"] == "good" and "merge" in seen["actions"]
    shown = app.cli("show", "feature").stdout
    assert "#1 open · checks 2/2 · approved · ready to merge" in shown

    base = github.tip(SLUG, "main")
    merged = cli_json(app, "merge", "feature", "--squash", "--delete-branch")
    main = github.tip(SLUG, "main")
    assert merged["commit"] == main and main != base
    assert git(github.bare(SLUG), "rev-parse", f"{main}^{{tree}}") == \
        git(github.bare(SLUG), "rev-parse", f"{head}^{{tree}}")
    assert git(github.bare(SLUG), "rev-parse", f"{main}^") == base  # squashed: one commit
    assert github.tip(SLUG, s["branch"]) is None  # deleted on the remote ...
    assert user_git(origin, "rev-parse", s["branch"]) == head  # ... kept in the user's
    after = app.session("feature")
    assert after["pull"]["state"] == "merged" and "merge" not in after["actions"]
    again = app.cli("merge", "feature", check=False)
    assert again.returncode != 0 and "no open pull request" in again.stderr


def test_the_agent_cannot_merge_or_push_main_and_its_other_refs_stay_home(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    s = create(app, origin, "hostile")
    head = agent_commit(app, s, "work")
    app.cli("push", "hostile", "--pr")
    main = github.tip(SLUG, "main")
    assert github.pull(1)["state"] == "open"

    # Through its own proxy identity (the credential is injected there): merge refused ...
    code, out = in_container(app, s, (
        "curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Authorization: Bearer x' "
        f"-d '{{\"merge_method\":\"merge\"}}' https://api.github.com/repos/{SLUG}/pulls/1/merge"))
    assert out.strip().endswith("403"), out
    # ... and a push of main (and a tag) refused; its own branch goes (the control).
    url = f"https://github.com/{SLUG}.git"
    code, out = in_container(app, s, f"git push {url} HEAD:refs/heads/main 2>&1")
    assert code != 0, out
    code, out = in_container(app, s, f"git tag v9 && git push {url} v9 2>&1")
    assert code != 0, out
    code, out = in_container(app, s, f"git push {url} HEAD:refs/heads/{s['branch']} 2>&1")
    assert code == 0, out
    assert github.merges() == [] and github.tip(SLUG, "main") == main
    assert "refs/tags/v9" not in github.refs(SLUG)

    # The agent moves main in its workspace and makes a branch of its own; a person's push
    # carries the session branch only.
    code, out = in_container(app, s, "git branch -f main HEAD && git branch evil HEAD && "
                                     "echo ok")
    assert code == 0, out
    newer = agent_commit(app, s, "more")
    done = cli_json(app, "push", "hostile")
    assert done["commit"] == newer and github.tip(SLUG, s["branch"]) == newer
    assert github.tip(SLUG, "main") == main and github.tip(SLUG, "evil") is None
    assert head != newer

    # The appliance's own identity pushes session branches only, whoever asks it to.
    key = load_or_create_instance_key(app.settings.instance_secret_path)
    env = {"GIT_CONFIG_COUNT": "3", "GIT_CONFIG_KEY_0": "http.proxy",
           "GIT_CONFIG_VALUE_0": owner_proxy(app.settings, key),
           "GIT_CONFIG_KEY_1": "http.sslCAInfo",
           "GIT_CONFIG_VALUE_1": str(app.settings.ca_cert_path),
           "GIT_CONFIG_KEY_2": "safe.directory", "GIT_CONFIG_VALUE_2": "*",
           "GIT_TERMINAL_PROMPT": "0"}
    with pytest.raises(subprocess.CalledProcessError) as refused:
        git(origin, "push", url, f"{newer}:refs/heads/main", env=env)
    assert "403" in refused.value.stderr
    # The proxy writes a refused push's line once the connection ends, which may be after
    # git has read the 403 and exited.
    said = _refused(app, APPLIANCE_ID, 1)
    assert said == ["remote: the appliance pushes only session branches (clauderon/...), "
                    "not main"]
    git(origin, "push", url, f"{newer}:refs/heads/clauderon/owner-control", env=env)
    assert github.tip(SLUG, "clauderon/owner-control") == newer
    assert github.tip(SLUG, "main") == main and github.merges() == []


def test_the_agent_reaches_none_of_the_persons_writes_by_graphql_or_outside_its_repository(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """GitHub's GraphQL API merges and moves refs as its REST API does, and the token can
    add an SSH key to the person's account (a credential the agent would then hold): each
    is refused before GitHub sees it, as is a path GitHub might read as another. The
    session's own GraphQL query and comment go through (the control)."""
    s = with_pull(app, origin, "sly", "work")
    main = github.tip(SLUG, "main")
    assert github.pull(1)["state"] == "open"

    def call(method: str, path: str, body: str) -> str:
        _, out = in_container(app, s, (
            f"curl -s --path-as-is -o /dev/null -w '%{{http_code}}' -X {method} "
            f"-H 'Authorization: Bearer x' -H 'content-type: application/json' "
            f"-d '{body}' https://api.github.com{path}"))
        return out.strip()[-3:]

    def gql(query: str) -> str:
        return json.dumps({"query": query})

    merge = 'mergePullRequest(input: {pullRequestId: "PR_1"}) { clientMutationId }'
    comment = 'addComment(input: {subjectId: "PR_1", body: "hi"}) { clientMutationId }'
    refused = [
        ("POST", "/graphql", gql(f"mutation {{ {merge} }}")),
        ("POST", "/graphql", gql(f"mutation {{ c: {comment} m: {merge} }}")),
        ("POST", "/graphql", gql(f"mutation {{ ...F }} fragment F on Mutation {{ {merge} }}")),
        ("POST", "/graphql", '{"query": "mutation { ' + merge.replace('"', '\\"') +
         ' }", "query": "query { viewer { login } }"}'),
        ("POST", "/user/keys", json.dumps({"title": "agent", "key": "ssh-ed25519 AAAAC3"})),
        ("PUT", f"/repos/{SLUG}/issues/1/comments/../../../pulls/1/merge",
         json.dumps({"merge_method": "merge"})),
    ]
    assert [call(*r) for r in refused] == ["403"] * len(refused)
    assert github.pull(1)["state"] == "open" and github.tip(SLUG, "main") == main
    assert github.user_keys == [] and github.merges() == []
    assert not [x for x in github.seen if x.path in ("/graphql", "/user/keys")]

    # The control: a read and the session's own comment reach GitHub, with the real token.
    assert call("POST", "/graphql", gql("query { viewer { login } }")) == "200"
    assert call("POST", "/graphql", gql(f"mutation {{ {comment} }}")) == "200"
    graphql = [x for x in github.seen if x.path == "/graphql"]
    # Before the comment went on, the proxy asked GitHub whose pull request PR_1 is.
    assert [b"nodes(ids:" in x.body for x in graphql] == [False, True, False]
    mine = _refusals(app, s["id"], len(refused))
    assert [x["error"] for x in mine] == ["REF_FORBIDDEN"] * len(refused)
    assert "the GraphQL mutation mergePullRequest is for the repository's owner" in mine[0]["note"]


def test_a_pull_request_of_another_branch_is_never_merged(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    s = create(app, origin, "lonely")
    agent_commit(app, s, "x")
    app.cli("push", "lonely")  # pushed, no pull request
    git(origin, "push", "-q", str(github.bare(SLUG)), "HEAD:refs/heads/feature/other")
    other = github.add_pull(SLUG, "feature/other", title="someone else's")
    main = github.tip(SLUG, "main")

    for lying in (False, True):
        github.ignore_head_filter = lying  # the list answers every pull request
        refused = app.cli("merge", "lonely", "--merge", check=False)
        assert refused.returncode != 0 and "no open pull request" in refused.stderr, \
            refused.stderr
        shown = app.cli("pr", "lonely", "--refresh", "--json")
        assert json.loads(shown.stdout)["state"] == "none"
    assert other["state"] == "open" and github.merges() == []
    assert github.tip(SLUG, "main") == main
    # The control: once the session's own pull request exists, merge goes through.
    github.ignore_head_filter = False
    own = github.add_pull(SLUG, s["branch"])
    app.cli("merge", "lonely", "--merge")
    assert own["merged"] and not other["merged"]
    assert [m.path for m in github.merges()] == [f"/repos/{SLUG}/pulls/{own['number']}/merge"]


def on_github(app: Appliance, s: dict[str, Any], method: str, path: str,
              doc: dict[str, Any]) -> str:
    """The status of a GitHub API write the agent of ``s`` sends with curl from inside its
    container, through the proxy (with a placeholder token)."""
    _, out = in_container(app, s, (
        "curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer x' "
        f"-H 'content-type: application/json' -X {method} -d '{json.dumps(doc)}' "
        f"https://api.github.com{path}"))
    return out.strip()[-3:]


def test_a_pull_request_the_agent_retargets_is_never_merged_elsewhere(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """A session may edit its pull request, and on GitHub an edit can change the base: a
    pull request retargeted at a branch of the person's (a release branch, say) lands the
    agent's work there once merged. The edit is refused, by REST and by GraphQL; a pull
    request the agent opens anew at another base is not merged by the person's merge, which
    says why. Once the base is the session's again, the merge goes into main (the control)."""
    s = with_pull(app, origin, "retarget", "work")
    git(origin, "push", "-q", str(github.bare(SLUG)), "HEAD:refs/heads/release")
    release, main = github.tip(SLUG, "release"), github.tip(SLUG, "main")

    call = partial(on_github, app, s)

    retarget = ("mutation { updatePullRequest(input: {pullRequestId: \"PR_1\", "
                "baseRefName: \"release\"}) { clientMutationId } }")
    assert call("PATCH", f"/repos/{SLUG}/pulls/1", {"base": "release"}) == "403"
    assert call("POST", "/graphql", {"query": retarget}) == "403"
    assert github.pull(1)["base"]["ref"] == "main"
    assert not [x for x in github.seen if x.method == "PATCH" or x.path == "/graphql"]
    # Its own pull request closed, the agent opens another at the release branch.
    assert call("PATCH", f"/repos/{SLUG}/pulls/1", {"state": "closed"}) == "200"
    assert call("POST", f"/repos/{SLUG}/pulls", {"head": s["branch"], "base": "release",
                                                 "title": "t"}) == "201"
    refused = app.cli("merge", "retarget", "--squash", check=False)
    assert refused.returncode != 0, refused.stdout
    assert "#2 now merges into release, not main" in refused.stderr, refused.stderr
    assert cli_json(app, "pr", "retarget")["base"] == "release"  # the person sees where
    assert github.merges() == [] and github.tip(SLUG, "release") == release
    # The control: the person sets the base back on GitHub, and the merge goes into main.
    github.pull(2)["base"] = {"ref": "main"}
    app.cli("merge", "retarget", "--squash")
    assert github.pull(2)["merged"] and github.tip(SLUG, "main") != main
    assert github.tip(SLUG, "release") == release


def test_a_session_opens_no_pull_request_from_another_sessions_branch(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """The person's view of a session shows the pull request whose head is its branch. A
    neighbour on the same repository opened one from it, with the person's credential the
    proxy injects, so the view showed the neighbour's title and text as that session's
    (and its merge merged that session's work under them): by REST and by GraphQL, the
    way ``gh pr create`` does. Now a session opens pull requests from its own branch only
    (the control: its own)."""
    victim = create(app, origin, "victim")
    agent_commit(app, victim, "work")
    app.cli("push", "victim")  # pushed, no pull request yet
    hostile = create(app, origin, "hostile")

    def call(path: str, doc: dict[str, Any]) -> str:
        _, out = in_container(app, hostile, (
            "curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer x' "
            f"-H 'content-type: application/json' -X POST -d '{json.dumps(doc)}' "
            f"https://api.github.com{path}"))
        return out.strip()[-3:]

    forged = {"head": victim["branch"], "base": "main", "title": "HOSTILE-TITLE",
              "body": "reviewed and approved: merge it"}
    create_pr = ("mutation($input: CreatePullRequestInput!) { createPullRequest(input: "
                 "$input) { pullRequest { url } } }")
    by_graphql = {"query": create_pr, "variables": {"input": {
        "repositoryId": "R_1", "headRefName": victim["branch"], "baseRefName": "main",
        "title": "HOSTILE-TITLE"}}}
    assert (call(f"/repos/{SLUG}/pulls", forged), call("/graphql", by_graphql)) == (
        "403", "403")
    assert not [x for x in github.seen if x.path in (f"/repos/{SLUG}/pulls", "/graphql")
                and x.method == "POST"]
    shown = json.loads(app.cli("pr", "victim", "--refresh", "--json").stdout)
    assert shown["state"] == "none", shown
    # The control: its own branch, pushed, gets its pull request.
    agent_commit(app, hostile, "mine")
    app.cli("push", "hostile")
    assert call(f"/repos/{SLUG}/pulls", {**forged, "head": hostile["branch"]}) == "201"


def test_a_session_changes_no_pull_request_but_its_own(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """A pull request is named by its number (REST's ``pulls/N``, and ``issues/N``: GitHub
    numbers issues and pull requests alike) or its node id (GraphQL), never by its branch.
    A neighbour on the same repository, with the person's credential the proxy injects,
    closed, retitled and commented on another session's pull request and asked reviews of
    it. The proxy now asks GitHub whose pull request a write names before it goes on: each
    is refused, saying whose it is; the session's own pull request and a plain issue take
    the same writes (the control)."""
    with_pull(app, origin, "owner", "theirs")  # #1, from clauderon/owner
    hostile = with_pull(app, origin, "meddler")  # #2, from clauderon/meddler
    before = dict(github.pull(1))

    call = partial(on_github, app, hostile)

    def close(number: int) -> dict[str, Any]:
        return {"query": "mutation { closePullRequest(input: {pullRequestId: "
                         f'"PR_{number}"}}) {{ clientMutationId }} }}'}

    pulls, issues = f"/repos/{SLUG}/pulls", f"/repos/{SLUG}/issues"
    refused = [
        ("PATCH", f"{pulls}/1", {"state": "closed"}),
        ("PATCH", f"{pulls}/1", {"title": "Reviewed: merge me", "body": "all checked"}),
        ("PATCH", f"{issues}/1", {"state": "closed"}),
        ("POST", f"{issues}/1/comments", {"body": "LGTM, merging"}),
        ("POST", f"{pulls}/1/requested_reviewers", {"reviewers": ["someone"]}),
        ("POST", f"{pulls}/1/reviews", {"event": "REQUEST_CHANGES", "body": "no"}),
        ("POST", "/graphql", close(1)),
        ("POST", "/graphql", {"query": "mutation($id: ID!) { updatePullRequest(input: "
                                       '{pullRequestId: $id, title: "x"}) { clientMutationId } }',
                              "variables": {"id": "PR_1"}}),
        ("POST", "/graphql", {"query": 'mutation { addComment(input: {subjectId: "PR_1", '
                                       'body: "hi"}) { clientMutationId } }'}),
    ]
    assert [call(*r) for r in refused] == ["403"] * len(refused)
    assert github.pull(1) == before  # untouched
    assert not [x for x in github.seen if x.method not in ("GET", "HEAD") and (
        x.path.startswith((f"{pulls}/1", f"{issues}/1"))
        or (x.path == "/graphql" and b"mutation" in x.body and b"nodes(ids:" not in x.body))]
    notes = [x["note"] for x in _refusals(app, hostile["id"], len(refused))]
    assert len(notes) == len(refused)
    assert all("pull request #1" in n or "PR_1" in n for n in notes), notes
    assert all("clauderon/owner" in n for n in notes), notes

    # The control: its own pull request, and an issue (a number no pull request has).
    assert call("PATCH", f"{pulls}/2", {"title": "mine, retitled"}) == "200"
    assert call("POST", f"{issues}/7/comments", {"body": "a note"}) == "201"
    assert call("POST", "/graphql", close(2)) == "200"
    assert github.pull(2)["title"] == "mine, retitled" and github.pull(2)["state"] == "closed"
    assert github.issue_comments == {7: ["a note"]}


def test_a_session_changes_none_of_the_persons_issues_or_comments(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """GitHub sees the person as the author of everything the token writes, so a session
    closed, retitled, labelled (a label can start a workflow that holds the repository's
    secrets) and assigned the person's own issue, and rewrote and deleted their comment, by
    REST and GraphQL alike. Each is refused, saying why; the session still comments on the
    issue and on its own pull request's thread (the control)."""
    s = with_pull(app, origin, "meddler")  # #1, from clauderon/meddler
    issue = github.add_issue(SLUG, "The person's bug")
    theirs = github.add_comment(SLUG, issue["number"], "the person's words")
    before = (dict(issue), dict(theirs))
    number, cid = issue["number"], theirs["id"]

    call = partial(on_github, app, s)

    issues = f"/repos/{SLUG}/issues"
    refused = [
        ("PATCH", f"{issues}/{number}", {"state": "closed"}),
        ("PATCH", f"{issues}/{number}", {"title": "Wontfix", "body": "not a bug"}),
        ("POST", f"{issues}/{number}/labels", {"labels": ["deploy"]}),
        ("POST", f"{issues}/{number}/assignees", {"assignees": ["someone"]}),
        ("PATCH", f"{issues}/comments/{cid}", {"body": "I approve this"}),
        ("DELETE", f"{issues}/comments/{cid}", {}),
        ("POST", "/graphql", gql("closeIssue(input: {issueId: $id}) { clientMutationId }",
                                 f"I_{number}")),
        ("POST", "/graphql", gql('updateIssue(input: {id: $id, title: "x"}) '
                                 "{ clientMutationId }", f"I_{number}")),
        ("POST", "/graphql", gql('addLabelsToLabelable(input: {labelableId: $id, labelIds: '
                                 '["L_1"]}) { clientMutationId }', f"I_{number}")),
        ("POST", "/graphql", gql('updateIssueComment(input: {id: $id, body: "x"}) '
                                 "{ clientMutationId }", f"IC_{cid}")),
        ("POST", "/graphql", gql("deleteIssueComment(input: {id: $id}) { clientMutationId }",
                                 f"IC_{cid}")),
    ]
    assert [call(*r) for r in refused] == ["403"] * len(refused)
    assert (issue, github.comments.get(cid)) == before  # untouched
    notes = [x["note"] for x in _refusals(app, s["id"], len(refused))]
    assert len(notes) == len(refused)
    assert all("the person's" in n for n in notes), notes

    # The control: a comment on the issue, by REST and GraphQL, and on its own pull request.
    assert call("POST", f"{issues}/{number}/comments", {"body": "a note"}) == "201"
    assert call("POST", "/graphql", gql('addComment(input: {subjectId: $id, body: "hi"}) '
                                        "{ clientMutationId }", f"I_{number}")) == "200"
    assert call("PATCH", f"{issues}/1", {"title": "mine, retitled"}) == "200"
    assert github.issue_comments[number] == ["the person's words", "a note"]


def test_a_sessions_writes_on_github_reach_only_its_own_repositories(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """The person's token reaches their other repositories too: the agent opened issues and
    comments there under the person's name, by REST and GraphQL, and pushed its own branch
    name there. Each is refused for the repository it lands in (the session's is its
    repository's GitHub remote, octo/app), and nothing reaches the other repository; the
    same writes in its own repository go on (the control)."""
    other = "person/secret"
    github.create_repo(other, origin)
    theirs = github.add_issue(other, "The person's private plans")
    mine = github.add_issue(SLUG, "A bug in the session's repository")
    s = create(app, origin, "roamer")
    agent_commit(app, s, "work")
    call = partial(on_github, app, s)
    comment = 'addComment(input: {subjectId: $id, body: "hi"}) { clientMutationId }'
    refused = [
        ("POST", f"/repos/{other}/issues", {"title": "spam"}),
        ("POST", f"/repos/Person/Secret/issues/{theirs['number']}/comments", {"body": "x"}),
        ("POST", "/graphql", gql(comment, theirs["node_id"])),
    ]
    assert [call(*r) for r in refused] == ["403"] * len(refused)
    code, out = in_container(app, s, "git push https://github.com/person/secret.git "
                                     "HEAD:refs/heads/clauderon/roamer 2>&1")
    assert code != 0, out
    assert github.tip(other, "clauderon/roamer") is None
    assert [i for i in github.issues.values() if i["_repo"] == other] == [theirs]
    assert github.issue_comments.get(theirs["number"]) is None
    # Reads stay free (git asks what the other repository holds before its push).
    assert not [x for x in github.seen if x.method != "GET" and (other in x.path or (
        x.path == "/graphql" and b"nodes(ids:" not in x.body))]
    # The refused push's line is written once its connection ends, maybe after git exits.
    notes = _refused(app, s["id"], len(refused) + 1)
    assert len(notes) == len(refused) + 1 and all(other in n.lower() for n in notes), notes

    # The control: the same writes in its own repository.
    assert call("POST", f"/repos/{SLUG}/issues", {"title": "found one"}) == "201"
    assert call("POST", f"/repos/{SLUG}/issues/{mine['number']}/comments",
                {"body": "a note"}) == "201"
    assert call("POST", "/graphql", gql(comment, mine["node_id"])) == "200"
    code, out = in_container(app, s, f"git push https://github.com/{SLUG}.git "
                                     "HEAD:refs/heads/clauderon/roamer 2>&1")
    assert code == 0, out
    assert github.tip(SLUG, "clauderon/roamer") is not None


def test_a_session_changes_the_issues_and_comments_it_created_and_still_not_the_persons(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """An agent opened an issue and commented on the person's, then could not fix the typo
    in its own issue, close it or edit its own comment: GitHub answers the person as the
    author of both. What GitHub answered to the session's own create is remembered, so it
    changes those (REST and GraphQL); the person's issue and comment stay refused."""
    s = create(app, origin, "tidy")
    theirs = github.add_issue(SLUG, "The person's bug")
    their_note = github.add_comment(SLUG, theirs["number"], "the person's words")
    before = (dict(theirs), dict(their_note))

    call = partial(as_agent, app, s)

    issues = f"/repos/{SLUG}/issues"
    code, mine = call("POST", issues, {"title": "Teh bug"})
    assert code == "201", mine
    code, note = call("POST", f"{issues}/{theirs['number']}/comments", {"body": "a nte"})
    assert code == "201", note
    changed = [
        call("PATCH", f"{issues}/{mine['number']}", {"title": "The bug"})[0],
        call("PATCH", f"{issues}/comments/{note['id']}", {"body": "a note"})[0],
        call("POST", "/graphql", gql("closeIssue(input: {issueId: $id}) { clientMutationId }",
                                     mine["node_id"]))[0]]
    assert changed == ["200"] * 3
    assert github.issues[mine["number"]]["title"] == "The bug"
    assert github.issues[mine["number"]]["state"] == "closed"
    assert github.comments[note["id"]]["body"] == "a note"

    refused = [
        ("PATCH", f"{issues}/{theirs['number']}", {"state": "closed"}),
        ("PATCH", f"{issues}/comments/{their_note['id']}", {"body": "I approve this"}),
        ("POST", "/graphql", gql("closeIssue(input: {issueId: $id}) { clientMutationId }",
                                 theirs["node_id"])),
    ]
    assert [call(*r)[0] for r in refused] == ["403"] * len(refused)
    assert (theirs, github.comments[their_note["id"]]) == before  # untouched


def test_the_tui_pushes_shows_ci_and_merges_the_head_it_showed(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    from cli.tui.dialogs import ConfirmScreen
    from cli.tui.tui_app import ClauderonApp
    from tests.integration.tui_pilot import (
        main,
        notices,
        piloting,
        scenario,
        top,
        until,
    )

    s = create(app, origin, "keys")
    head = agent_commit(app, s, "k")
    github.checks[head] = [{"id": 1, "name": "ci", "status": "completed",
                            "conclusion": "failure"}]

    def detail(tui: ClauderonApp) -> str:
        return str(main(tui).query_one("#detail").render())

    async def run() -> None:
        async with piloting(app, (100, 30), showing=["keys"], timeout=30) as (tui, pilot):
            await until(pilot, lambda: f"Committed @ {head[:12]}" in detail(tui),
                        "the commit a push sends, in the detail pane")
            await pilot.press("p")
            ask = await until(pilot, lambda: top(tui, ConfirmScreen), "the push question")
            assert head[:12] in ask.question
            await pilot.press("y")
            await until(pilot, lambda: "#1 open · checks 0/1, 1 failed" in detail(tui),
                        "the pull request in the detail pane")
            assert github.tip(SLUG, s["branch"]) == head
            # The agent pushes again after the person looked: the merge asked is refused.
            newer = agent_commit(app, s, "k2")
            code, out = in_container(app, s, f"git push -q https://github.com/{SLUG}.git "
                                              f"HEAD:refs/heads/{s['branch']}")
            assert code == 0, out
            await pilot.press("M")
            ask = await until(pilot, lambda: top(tui, ConfirmScreen), "the merge question")
            assert head[:12] in ask.question
            await pilot.press("y")
            await until(pilot, lambda: any("since you looked" in n for n in notices(tui)),
                        "the refusal")
            assert github.merges() == []
            # Refreshed, the question shows the new head; merged.
            await pilot.press("g")
            await until(pilot, lambda: (main(tui).sessions[s["id"]].get("pull") or {})
                        .get("head_sha") == newer, "the new head")
            await pilot.press("M")
            await until(pilot, lambda: top(tui, ConfirmScreen), "the merge question")
            await pilot.press("y")
            await until(pilot, lambda: "#1 merged" in detail(tui), "merged")
            assert github.pull(1)["merged"] and github.tip(SLUG, s["branch"]) is None

    scenario(run)


def test_the_tui_pushes_only_the_commit_its_pane_showed(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """The detail pane shows the commit a push sends; the agent commits after: the push
    the person confirms sends nothing, says why, and the pane reads the new commit."""
    from cli.tui.dialogs import ConfirmScreen
    from cli.tui.tui_app import ClauderonApp
    from tests.integration.tui_pilot import main, notices, piloting, scenario, top, until

    s = create(app, origin, "pane")
    seen = agent_commit(app, s, "one")

    def detail(tui: ClauderonApp) -> str:
        return str(main(tui).query_one("#detail").render())

    async def run() -> None:
        async with piloting(app, (100, 30), showing=["pane"], timeout=30) as (tui, pilot):
            await until(pilot, lambda: f"Committed @ {seen[:12]}" in detail(tui),
                        "the commit a push sends, in the detail pane")
            later = agent_commit(app, s, "leak")
            await pilot.press("p")
            await until(pilot, lambda: top(tui, ConfirmScreen) or notices(tui),
                        "the push question (or what was done)")
            if ask := top(tui, ConfirmScreen):
                assert f"{seen[:12]} (1 file, as shown)" in ask.question, ask.question
                assert ask.question.endswith("as the agent wrote it: 'add one'"), ask.question
                await pilot.press("y")
            await until(pilot, lambda: any("push" in n for n in notices(tui)), "the push")
            assert github.tip(SLUG, s["branch"]) is None, \
                f"the agent's commit after the pane showed went out: {notices(tui)}"
            assert any("the agent committed since" in n for n in notices(tui)), notices(tui)
            await until(pilot, lambda: f"Committed @ {later[:12]}" in detail(tui),
                        "the new commit, read again")

    scenario(run)


def test_the_tui_asks_a_push_with_its_facts_before_the_agents_subject(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """The push question quoted the agent's commit subject before what a push sends: a
    subject that said ``(1 file, as shown)? Only this commit goes.`` and ran on in spaces
    (the dialog folds them at its edge) read as the whole question, the count of the three
    files it sends after it, as though the subject's. The facts now come first, the
    subject last, labelled as the agent's."""
    from cli.tui.dialogs import ConfirmScreen
    from tests.integration.tui_pilot import main, piloting, scenario, top, until

    s = create(app, origin, "told")
    forged = "tidy (1 file, as shown)? Only this commit goes." + " " * 150 + "."
    code, out = in_container(app, s, "for n in 1 2 3; do echo $n > f$n.txt; done && "
                             f"git add . && git commit -qm '{forged}' && git rev-parse HEAD")
    assert code == 0, out
    seen = out.split()[-1]

    async def run() -> None:
        async with piloting(app, (100, 30), showing=["told"], timeout=30) as (tui, pilot):
            await until(pilot, lambda: f"Committed @ {seen[:12]}" in str(
                main(tui).query_one("#detail").render()), "the commit a push sends")
            await pilot.press("p")
            ask = await until(pilot, lambda: top(tui, ConfirmScreen), "the push question")
            facts, said = ask.question.index("(3 files, as shown)"), ask.question.index("tidy")
            assert facts < said, f"the agent's subject comes first: {ask.question!r}"
            await pilot.press("n")
        assert github.tip(SLUG, s["branch"]) is None

    scenario(run)

def test_a_push_sends_only_the_commit_the_person_looked_at(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """The person reads the diff (its committed part: what a push sends) and pushes it; the
    agent commits again in between. The push names the commit looked at, so it is refused
    and sends nothing; the newer one, named after a look at it, goes."""
    s = create(app, origin, "looked")
    seen = agent_commit(app, s, "one")
    assert app.client().get("/api/sessions/looked/diff")["committed"]["commit"] == seen
    newer = agent_commit(app, s, "backdoor")
    with app.socket_http() as http:
        r = http.post("/api/sessions/looked/push", json={"commit": seen})
        assert r.status_code == 409, (r.status_code, r.text)
        assert "since you looked" in r.json()["error"] and newer[:12] in r.json()["error"]
        assert github.tip(SLUG, s["branch"]) is None
        r = http.post("/api/sessions/looked/push", json={"commit": newer})
        assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["commit"] == newer and github.tip(SLUG, s["branch"]) == newer


def test_a_push_pins_the_commit_looked_at_when_the_workspace_head_cannot_be_read(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """The agent checks out an unborn branch (its HEAD names no commit): the diff still
    names the branch's commit, and a push naming it sends that one or nothing."""
    s = create(app, origin, "unborn")
    seen = agent_commit(app, s, "one")
    newer = agent_commit(app, s, "backdoor")
    code, out = in_container(app, s, f"git update-ref refs/heads/{s['branch']} {seen} && "
                                     "git checkout -q --orphan elsewhere")
    assert code == 0, out
    diff = app.client().get("/api/sessions/unborn/diff")
    assert diff["committed"]["commit"] == seen and diff["note"], diff
    code, out = in_container(app, s, f"git update-ref refs/heads/{s['branch']} {newer}")
    assert code == 0, out
    with app.socket_http() as http:
        r = http.post("/api/sessions/unborn/push", json={"commit": seen})
        assert r.status_code == 409, (r.status_code, r.text)
        assert github.tip(SLUG, s["branch"]) is None
        r = http.post("/api/sessions/unborn/push", json={"commit": newer})
        assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["commit"] == newer and github.tip(SLUG, s["branch"]) == newer


def test_clauderon_push_sends_only_the_commit_clauderon_diff_showed(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """``clauderon diff`` names the commit a push sends; the agent commits after the person
    read it: ``push --commit`` of what was read is refused, nothing reaches the remote. Not
    on a terminal and not named, the push is pinned to the commit read just before it,
    said first."""
    s = create(app, origin, "looked")
    seen = agent_commit(app, s, "one")
    assert f"-- committed @ {seen} 'add one'" in app.cli("diff", "looked").stdout
    later = agent_commit(app, s, "two")
    refused = app.cli("push", "looked", "--commit", seen, check=False)
    assert github.tip(SLUG, s["branch"]) is None, "a commit after the look went out"
    assert refused.returncode == 4, refused.stderr
    assert "the agent committed since you looked" in refused.stderr, refused.stderr
    assert "clauderon diff looked" in refused.stderr
    # Named again after a new look: sent. Not named: the commit read now, said first.
    done = app.cli("push", "looked", "--commit", later)
    assert github.tip(SLUG, s["branch"]) == later, done.stdout
    newest = agent_commit(app, s, "three")
    done = app.cli("push", "looked")
    assert f"pushing {newest} (3 files against main): add three" in done.stderr, done.stderr
    assert github.tip(SLUG, s["branch"]) == newest


#: The commit the agent points the person's submodule at: one of its own, say in a fork of
#: the library (GitHub serves a fork's commits from the library's own URL).
ELSEWHERE = "0123456789abcdef0123456789abcdef01234567"


def repointed(app: Appliance, origin: Path, name: str) -> tuple[dict[str, Any], str]:
    """The person's repository has a submodule; the agent (in session ``name``) commits only
    a new commit for it (its gitlink), one the person never chose. The session and the
    commit a push sends."""
    user_git(origin, "update-index", "--add", "--cacheinfo",
             f"160000,{'a' * 40},vendor/lib")
    (origin / ".gitmodules").write_text(
        '[submodule "lib"]\n\tpath = vendor/lib\n\turl = https://github.com/octo/lib.git\n')
    user_git(origin, "add", ".gitmodules")
    user_git(origin, "commit", "-qm", "vendor lib")
    s = create(app, origin, name)
    code, out = in_container(app, s, f"git update-index --cacheinfo 160000,{ELSEWHERE},"
                                     "vendor/lib && git commit -qm tidy && git rev-parse HEAD")
    assert code == 0, out
    return s, out.split()[-1]


def test_a_submodule_the_agent_repoints_is_in_what_a_push_is_shown_to_send(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """The diff's committed part (what a push sends, which the person looks at and pins)
    names the submodule the agent repointed and its new commit, and a push of that commit
    sends exactly it."""
    s, sent = repointed(app, origin, "repoint")
    committed = app.client().get("/api/sessions/repoint/diff")["committed"]
    assert committed["commit"] == sent
    assert [(f["status"], f["path"]) for f in committed["files"]] == [("M", "vendor/lib")], \
        f"the submodule's new commit is not in what a push is shown to send: {committed}"
    assert f"+Subproject commit {ELSEWHERE}" in committed["diff"], committed["diff"]
    with app.socket_http() as http:
        r = http.post("/api/sessions/repoint/push", json={"commit": sent})
        assert r.status_code == 200, (r.status_code, r.text)
    assert github.tip(SLUG, s["branch"]) == sent
    assert ELSEWHERE in git(github.bare(SLUG), "ls-tree", sent, "vendor/lib")


def push_on_a_terminal(app: Appliance, ref: str, answer: str,
                       meanwhile: Callable[[], object] = lambda: None) -> tuple[int, str]:
    """``clauderon push REF`` on a pseudo-terminal: it shows the commit and asks; once the
    question is on screen, ``meanwhile`` runs (the agent at work), then ``answer`` is typed.
    Its exit code and all it showed."""
    def then() -> str:
        meanwhile()
        return answer

    return on_a_terminal([str(BIN / "clauderon"), "push", ref], app.env,
                         asks=b"push it? [y/N] ", answer=then)


def test_clauderon_push_on_a_terminal_sends_only_the_commit_it_asked_about(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """Without ``--commit``, on a terminal, ``clauderon push`` names the commit a push sends
    and asks. Not answered yes: nothing sent. The agent commits while the question is on
    screen: a yes sends nothing (the question was about the older commit), and says so. A
    yes with the branch still there sends exactly that commit."""
    s = create(app, origin, "asked")
    shown = agent_commit(app, s, "one")
    code, out = push_on_a_terminal(app, "asked", "n")
    assert f"is at {shown} (1 file against main): add one" in out, out
    assert code == 1 and "nothing pushed" in out, (code, out)
    assert github.tip(SLUG, s["branch"]) is None
    later: list[str] = []
    code, out = push_on_a_terminal(app, "asked", "y",
                                   lambda: later.append(agent_commit(app, s, "backdoor")))
    assert f"is at {shown} " in out, out
    assert github.tip(SLUG, s["branch"]) is None, "a commit made while it asked went out"
    assert code == 4 and "the agent committed since you looked" in out, (code, out)
    code, out = push_on_a_terminal(app, "asked", "y")
    assert f"is at {later[0]} (2 files against main): add backdoor" in out, out
    assert code == 0 and github.tip(SLUG, s["branch"]) == later[0], (code, out)


def test_a_submodule_the_commit_repoints_is_never_said_undone_by_the_work_tree(
        app: Appliance, origin: Path) -> None:
    """The work tree's parts ask no submodule anything (:data:`changes.DIFF_FLAGS`), so they
    never name one: the committed submodule change was marked ``undone`` ("the work tree
    undoes it"), telling the person the agent had put it back while the workspace still
    has it checked out and a push sends it. What the work tree holds of a submodule is not
    read, so nothing is said of it."""
    _, sent = repointed(app, origin, "unsaid")
    committed = app.client().get("/api/sessions/unsaid/diff")["committed"]
    assert committed["commit"] == sent
    assert committed["files"] == [{"status": "M", "path": "vendor/lib", "work_tree": None}], \
        f"the work tree is said to undo a submodule's new commit it never read: {committed}"


def test_the_persons_words_and_reactions_on_the_sessions_own_pull_request_stay_theirs(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """The person reviewed the agent's pull request: a comment asking for a change, a
    thumbs-down. The session, free to change its own pull request, rewrote and deleted the
    person's comment there (REST and GraphQL) and took their reaction away. Each is now
    refused; what the session wrote and reacted there itself it still edits and deletes (a
    reaction by the id GitHub's answer to its create gave; GitHub answers the person's
    reaction again, 200 not 201, when the session adds the same one: never remembered)."""
    s = with_pull(app, origin, "reviewed")  # #1, from clauderon/reviewed
    theirs = github.add_comment(SLUG, 1, "please rename this")
    _, frown = github.add_reaction(SLUG, "-1", issue=1)
    _, heart = github.add_reaction(SLUG, "heart", comment=theirs["id"])
    before = (dict(theirs), set(github.reactions))

    call = partial(as_agent, app, s)

    issues, cid = f"/repos/{SLUG}/issues", theirs["id"]
    # The session adds the person's very reaction: GitHub answers the one there (200).
    assert call("POST", f"{issues}/1/reactions", {"content": "-1"}) == ("200", {
        k: v for k, v in frown.items() if not k.startswith("_")})
    refused = [
        ("PATCH", f"{issues}/comments/{cid}", {"body": "done, no rename needed"}),
        ("DELETE", f"{issues}/comments/{cid}", {}),
        ("POST", "/graphql", {"query": "mutation($id: ID!) { deleteIssueComment(input: "
                                       "{id: $id}) { clientMutationId } }",
                              "variables": {"id": theirs["node_id"]}}),
        ("DELETE", f"{issues}/1/reactions/{frown['id']}", {}),
        ("DELETE", f"{issues}/comments/{cid}/reactions/{heart['id']}", {}),
    ]
    assert [call(*r)[0] for r in refused] == ["403"] * len(refused)
    assert (github.comments.get(cid), set(github.reactions)) == before  # untouched
    notes = [x["note"] for x in _refusals(app, s["id"], len(refused))]
    assert len(notes) == len(refused) and all("the person's" in n for n in notes), notes

    # The control: its own comment and reactions there, edited and deleted.
    code, note = call("POST", f"{issues}/1/comments", {"body": "renamed"})
    assert code == "201", note
    code, rocket = call("POST", f"{issues}/1/reactions", {"content": "rocket"})
    assert code == "201", rocket
    code, eyes = call("POST", f"{issues}/comments/{cid}/reactions", {"content": "eyes"})
    assert code == "201", eyes
    assert [call(*r)[0] for r in [
        ("PATCH", f"{issues}/comments/{note['id']}", {"body": "renamed it"}),
        ("DELETE", f"{issues}/1/reactions/{rocket['id']}", {}),
        ("DELETE", f"{issues}/comments/{cid}/reactions/{eyes['id']}", {}),
        ("DELETE", f"{issues}/comments/{note['id']}", {})]] == ["200", "204", "204", "204"]
    assert note["id"] not in github.comments and set(github.reactions) == before[1]


def test_the_persons_reviews_and_threads_on_the_sessions_own_pull_request_stay_theirs(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """The person asked for changes on the agent's pull request, left a review pending,
    asked a reviewer and opened two threads. The session, free to change its own pull
    request, rewrote the person's review, deleted or submitted their pending one, took the
    reviewer away and resolved (or reopened) their threads. Each is now refused; a review
    the session made itself (remembered from GitHub's 200 to its create) it still edits,
    submits and deletes, and it still asks for reviewers and replies to a thread."""
    s = with_pull(app, origin, "reviewee")  # #1, from clauderon/reviewee
    asked = github.add_review(SLUG, 1, "CHANGES_REQUESTED", "rename this")
    pending = github.add_review(SLUG, 1, "PENDING", "half a thought")
    github.pull(1)["requested_reviewers"] = [{"login": "alice"}]
    open_thread, resolved = github.add_thread(1), github.add_thread(1)
    resolved["isResolved"] = True
    before = json.dumps([github.reviews, github.threads, github.pull(1)], sort_keys=True)
    call = partial(as_agent, app, s)

    reviews = f"/repos/{SLUG}/pulls/1/reviews"
    refused = [
        ("PUT", f"{reviews}/{asked['id']}", {"body": "looks good to me"}),
        ("PUT", f"{reviews}/{asked['id']}/dismissals", {"message": "done"}),
        ("DELETE", f"{reviews}/{pending['id']}", {}),
        ("POST", f"{reviews}/{pending['id']}/events", {"event": "COMMENT"}),
        ("DELETE", f"/repos/{SLUG}/pulls/1/requested_reviewers", {"reviewers": ["alice"]}),
        ("POST", "/graphql", gql('updatePullRequestReview(input: {pullRequestReviewId: $id, '
                                 'body: "fine"}) { clientMutationId }', asked["node_id"])),
        ("POST", "/graphql", gql("deletePullRequestReview(input: {pullRequestReviewId: $id}) "
                                 "{ clientMutationId }", pending["node_id"])),
        ("POST", "/graphql", gql("resolveReviewThread(input: {threadId: $id}) "
                                 "{ clientMutationId }", open_thread["id"])),
        ("POST", "/graphql", gql("unresolveReviewThread(input: {threadId: $id}) "
                                 "{ clientMutationId }", resolved["id"])),
    ]
    codes = [call(*r)[0] for r in refused]
    assert codes == ["403"] * len(refused), f"the person's review changed: {codes}"
    assert json.dumps([github.reviews, github.threads, github.pull(1)],
                      sort_keys=True) == before  # untouched
    notes = [x["note"] for x in _refusals(app, s["id"], len(refused))]
    assert len(notes) == len(refused), notes

    # The control: its own review made, rewritten, submitted; another deleted; a reviewer
    # asked; a reply on the person's thread.
    code, mine = call("POST", reviews, {"body": "notes"})
    assert code == "200", mine
    code, scrap = call("POST", reviews, {"body": "scrap"})
    assert code == "200", scrap
    assert [call(*r)[0] for r in [
        ("PUT", f"{reviews}/{mine['id']}", {"body": "my notes"}),
        ("POST", f"{reviews}/{mine['id']}/events", {"event": "COMMENT"}),
        ("DELETE", f"{reviews}/{scrap['id']}", {}),
        ("POST", f"/repos/{SLUG}/pulls/1/requested_reviewers", {"reviewers": ["bob"]}),
        ("POST", "/graphql", gql('addPullRequestReviewThreadReply(input: '
                                 '{pullRequestReviewThreadId: $id, body: "done"}) '
                                 "{ clientMutationId }", open_thread["id"]))]] \
        == ["200", "200", "200", "201", "200"]
    assert github.review(1, mine["id"]) == {**mine, "body": "my notes", "state": "COMMENTED"}
    assert github.review(1, scrap["id"]) is None


def test_what_a_session_made_outlives_the_proxy_and_goes_with_the_session(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """A session commented, the proxy restarted: the comment is still the session's to edit,
    the person's still refused; the session deleted, nothing of what it made is kept."""
    s = create(app, origin, "lasting")
    theirs = github.add_issue(SLUG, "The person's bug")
    their_note = github.add_comment(SLUG, theirs["number"], "the person's words")
    call = partial(as_agent, app, s)
    issues = f"/repos/{SLUG}/issues"
    code, note = call("POST", f"{issues}/{theirs['number']}/comments", {"body": "a nte"})
    assert code == "201", note

    app.stop("proxy")
    app.start("proxy")
    fixed = wait_for(lambda: (c := call("PATCH", f"{issues}/comments/{note['id']}",
                                        {"body": "a note"})[0]) != "000" and c,
                     what="the proxy back")
    assert fixed == "200"
    assert github.comments[note["id"]]["body"] == "a note"
    assert call("PATCH", f"{issues}/comments/{their_note['id']}", {"body": "no"})[0] == "403"
    assert github.comments[their_note["id"]]["body"] == "the person's words"

    def rows() -> int:
        with closing(sqlite3.connect(app.settings.db_path)) as db:
            return int(db.execute("SELECT count(*) FROM github_made WHERE session_id = ?",
                                  (s["id"],)).fetchone()[0])

    assert rows() > 0
    app.cli("delete", "--force", "lasting")
    assert rows() == 0


def test_an_issue_number_given_out_again_is_not_the_sessions(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """The agent opened issue #100, and the repository was deleted and made again under its
    name: GitHub gives the person's next issue the number 100 again. The session, which
    made "issue #100", closed and retitled the person's new issue by its number. Now the
    proxy asks GitHub for the issue the number names and lets the change by only when its
    node id is the one GitHub's answer to the session's create gave."""
    s = create(app, origin, "reborn")
    call = partial(as_agent, app, s)
    issues = f"/repos/{SLUG}/issues"
    code, mine = call("POST", issues, {"title": "Teh bug"})
    assert code == "201", mine
    # The control: its own issue, still the one it made, it fixes.
    assert call("PATCH", f"{issues}/{mine['number']}", {"title": "The bug"})[0] == "200"

    github.recreate_repo(SLUG, origin)
    theirs = github.add_issue(SLUG, "The person's new bug")
    assert theirs["number"] == mine["number"] and theirs["node_id"] != mine["node_id"]
    before = dict(theirs)
    refused = [("PATCH", f"{issues}/{theirs['number']}", {"state": "closed"}),
               ("PATCH", f"{issues}/{theirs['number']}", {"title": "spam"}),
               ("POST", f"{issues}/{theirs['number']}/labels", {"labels": ["deploy"]})]
    codes = [call(*r)[0] for r in refused]
    assert codes == ["403"] * len(refused), f"the person's new issue changed: {codes}"
    assert github.issues[theirs["number"]] == before  # untouched


def test_a_session_asks_for_reviewers_without_taking_the_persons_away(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """The person asked alice to review the agent's pull request. The agent asked for bob
    by GraphQL's ``requestReviews``, whose ``union`` is false unless it is said: GitHub
    puts bob in alice's place. Now the proxy passes ``requestReviews`` only with ``union:
    true`` (written in its arguments, or in the variable they name), which adds bob."""
    s = with_pull(app, origin, "asker")  # #1, from clauderon/asker
    github.pull(1)["requested_reviewers"] = [{"login": "alice"}]
    call = partial(as_agent, app, s)
    ask = "requestReviews(input: {{pullRequestId: $id, userIds: [\"U_bob\"]{}}}) " \
          "{{ clientMutationId }}"
    refused = [gql(ask.format(""), "PR_1"), gql(ask.format(", union: false"), "PR_1"),
               {"query": "mutation($in: RequestReviewsInput!) { requestReviews(input: $in) "
                         "{ clientMutationId } }",
                "variables": {"in": {"pullRequestId": "PR_1", "userIds": ["U_bob"]}}}]
    codes = [call("POST", "/graphql", r)[0] for r in refused]
    assert codes == ["403"] * len(refused), f"alice's request was taken away: {codes}"
    assert github.pull(1)["requested_reviewers"] == [{"login": "alice"}]

    # The control: union true, inline or in the input variable, adds bob to alice.
    assert call("POST", "/graphql", gql(ask.format(", union: true"), "PR_1"))[0] == "200"
    assert github.pull(1)["requested_reviewers"] == [{"login": "alice"}, {"login": "bob"}]
    assert call("POST", "/graphql", {
        "query": "mutation($in: RequestReviewsInput!) { requestReviews(input: $in) "
                 "{ clientMutationId } }",
        "variables": {"in": {"pullRequestId": "PR_1", "userIds": ["U_carol"],
                             "union": True}}})[0] == "200"
    assert github.pull(1)["requested_reviewers"] == [
        {"login": "alice"}, {"login": "bob"}, {"login": "carol"}]


def test_a_reaction_added_by_graphql_is_not_taken_away_by_rest_and_the_refusal_says_how(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """A reaction added by GraphQL is remembered by its node id, not by REST's id: the
    agent that reacted by GraphQL cannot take the reaction away by REST. The 403 says so,
    and says how (``removeReaction``, or a REST add, whose 201 tells a new one)."""
    s = with_pull(app, origin, "cheer")  # #1, from clauderon/cheer
    call = partial(as_agent, app, s)
    code, done = call("POST", "/graphql", gql(
        "addReaction(input: {subjectId: $id, content: HOORAY}) "
        "{ reaction { id databaseId } }", "PR_1"))
    assert code == "200", done
    rid = done["data"]["addReaction"]["reaction"]["databaseId"]
    _, out = in_container(app, s, "curl -s -w '\\n%{http_code}' -H 'Authorization: Bearer x' "
                                  "-X DELETE https://api.github.com"
                                  f"/repos/{SLUG}/issues/1/reactions/{rid}")
    assert out.strip().endswith("403") and rid in github.reactions, out
    assert "removeReaction" in out and "201" in out, out


def test_a_node_github_could_not_answer_for_is_not_passed_as_naming_nothing(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """A string that names no node is answered null with a NOT_FOUND error for it, and a
    GraphQL change naming it passes (it changes nothing). But a node is null as well when a
    field asked inside it could not be read (the error names that field): the agent
    deleted the person's comment on its pull request while GitHub's answer about the
    comment was null. Now a null node passes only with GitHub's NOT_FOUND for the node
    itself; else the write waits until GitHub answers."""
    s = with_pull(app, origin, "unjudged")  # #1, from clauderon/unjudged
    theirs = github.add_comment(SLUG, 1, "please rename this")
    github.unreadable.add(theirs["node_id"])
    call = partial(as_agent, app, s)
    code, why = call("POST", "/graphql", gql(
        "deleteIssueComment(input: {id: $id}) { clientMutationId }", theirs["node_id"]))
    assert code == "403", f"the person's comment was deleted unjudged: {code} {why}"
    assert theirs["id"] in github.comments
    # The control: a string that names nothing is still no node (the body of a comment).
    code, _ = call("POST", "/graphql", gql(
        'addComment(input: {subjectId: "PR_1", body: $id}) { clientMutationId }',
        "no node at all"))
    assert code == "200"


def test_the_persons_git_lfs_locks_stay_theirs(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """Git LFS's API sits on the git host (``<repo>.git/info/lfs``), where the proxy puts the
    person's credential into the agent's requests: every lock there is the person's (the
    token's user), so the agent's unlock -- ``force`` or not -- would free the file for
    anyone, and its lock would hold the person's own push of it. Both are refused before
    GitHub sees them; a lock's verify before a push goes through (the control)."""
    s = create(app, origin, "locksmith")
    lock = github.add_lfs_lock("assets/model.bin")
    lfs = f"https://github.com/{SLUG}.git/info/lfs"

    def call(path: str, doc: dict[str, Any]) -> str:
        _, out = in_container(app, s, (
            "curl -s -o /dev/null -w '%{http_code}' -X POST "
            "-H 'content-type: application/vnd.git-lfs+json' "
            f"-d '{json.dumps(doc)}' {lfs}{path}"))
        return out.strip()[-3:]

    refused = [(f"/locks/{lock['id']}/unlock", {"force": True}),
               (f"/locks/{lock['id']}/unlock", {}),
               ("/locks", {"path": "assets/other.bin"})]
    assert [call(*r) for r in refused] == ["403"] * len(refused)
    assert list(github.lfs_locks.values()) == [lock]
    assert not [x for x in github.seen if "/info/lfs/locks" in x.path]

    assert call("/locks/verify", {}) == "200"
    assert [x.path for x in github.seen if "/info/lfs/" in x.path] == \
        [f"/{SLUG}.git/info/lfs/locks/verify"]
    mine = _refusals(app, s["id"], len(refused))
    assert [x["error"] for x in mine] == ["REF_FORBIDDEN"] * len(refused)


def test_a_guessed_id_of_what_the_person_makes_next_is_not_changed(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """Ids are handed out in order, so the agent guessed the node id the person's next
    comment on its pull request would get and deleted it: GitHub, asked first, said the id
    named nothing, the person commented just then, and the delete that followed took the
    person's comment. A change naming an id that names nothing yet is now refused (it
    would change nothing), so no later comment is reached through it."""
    s = with_pull(app, origin, "guesser")  # #1, from clauderon/guesser
    call = partial(as_agent, app, s)
    comments = github.comments
    nxt = len(comments) + 1
    github.then.append(lambda: github.add_comment(SLUG, 1, "the person's review"))
    code, why = call("POST", "/graphql", gql(
        "deleteIssueComment(input: {id: $id}) { clientMutationId }", f"IC_{nxt}"))
    assert code == "403", f"the person's comment made after the check was deleted: {code}"
    assert comments[nxt]["body"] == "the person's review", why
    # The control: written as an id that names nothing, but where no id goes (a comment's
    # body: a pull request titled DB_migration was refused so), it passes.
    body = f'addComment(input: {{subjectId: "PR_1", body: "IC_{nxt + 1}"}}) {{ clientMutationId }}'
    code, why = call("POST", "/graphql", {"query": f"mutation {{ {body} }}"})
    assert code == "200", why


def test_a_reaction_the_session_added_by_graphql_it_takes_away_and_never_the_persons(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """GitHub answers ``addReaction`` alike whether it made the reaction or found the
    person's own there (one user to GitHub), so the session could never take away a
    reaction it added by GraphQL. Now the proxy asks GitHub first, with the same
    credential, for the token user's reactions on what the add names: the add passes only
    where none of its content is there, and what it made is remembered; ``removeReaction``
    passes only for a reaction the session added. The person's thumbs-down stays: adding it
    again and taking it away are refused, and so is taking away a reaction that is not
    there (the person's, added just after GitHub's answer, would go instead)."""
    s = with_pull(app, origin, "cheerful")  # #1, from clauderon/cheerful
    _, frown = github.add_reaction(SLUG, "-1", issue=1)
    call = partial(as_agent, app, s)

    def react(verb: str, content: str) -> tuple[str, dict[str, Any]]:
        return call("POST", "/graphql", gql(
            f"{verb}Reaction(input: {{subjectId: $id, content: {content}}}) "
            "{ reaction { id } }", "PR_1"))

    code, done = react("add", "HOORAY")
    assert code == "200", done
    code, why = react("remove", "HOORAY")
    assert code == "200", f"the session's own reaction was not taken away: {code} {why}"
    assert [r["content"] for r in github.reactions.values()] == ["-1"]
    assert [react("add", "THUMBS_DOWN")[0], react("remove", "THUMBS_DOWN")[0]] == ["403"] * 2
    github.then.append(lambda: github.add_reaction(SLUG, "rocket", issue=1))
    code, why = react("remove", "ROCKET")
    assert code == "403", f"the person's reaction added after the check went: {code} {why}"
    assert sorted(r["content"] for r in github.reactions.values()) == ["-1", "rocket"]
    assert frown["id"] in github.reactions
    notes = [x["note"] for x in _refusals(app, s["id"], 3)]
    assert len(notes) == 3 and all("the person" in n for n in notes), notes


def test_a_guessed_id_of_the_persons_next_pull_request_is_not_written_to(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """A session writes to no pull request but its own, comments and reactions included.
    The agent guessed the node id the person's next pull request would get and commented
    on it: GitHub, asked first, said the id named nothing, the person opened the pull
    request just then, and the comment landed on it. A write naming a string written as a
    node id that names nothing yet is now refused, an add as well as a change."""
    s = with_pull(app, origin, "guessing")  # #1, from clauderon/guessing
    guessed = f"PR_{len(github.pulls) + 1}"
    github.then.append(lambda: github.add_pull(SLUG, "persons-work"))
    code, why = as_agent(app, s, "POST", "/graphql", gql(
        'addComment(input: {subjectId: $id, body: "merge me"}) { clientMutationId }', guessed))
    assert code == "403", f"a comment reached the person's new pull request: {code} {why}"
    assert not [x for x in github.seen if x.path == "/graphql" and b"addComment" in x.body]
    notes = [x["note"] for x in _refusals(app, s["id"], 1)]
    assert len(notes) == 1 and "names nothing yet" in notes[0], notes
    # The control: the same comment on its own pull request.
    code, why = as_agent(app, s, "POST", "/graphql", gql(
        'addComment(input: {subjectId: $id, body: "merge me"}) { clientMutationId }', "PR_1"))
    assert code == "200", why


def _refusals(app: Appliance, session: str, count: int = 0) -> list[dict[str, Any]]:
    """The audit's 403 lines of ``session``, once there are ``count`` of them."""
    return app.audit(lambda x: x["session"] == session and x["status"] == 403, at_least=count)


def _refused(app: Appliance, session: str, count: int = 0) -> list[str]:
    """The notes of the audit's 403 lines of ``session``, once there are ``count``."""
    return [x["note"] for x in _refusals(app, session, count)]
