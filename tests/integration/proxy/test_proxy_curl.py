"""Real curl through the running proxy: injection, 407, read-only, the audit line."""

from __future__ import annotations

import json

import trio
from conftest import SECRETS, Proxy
from proxy_fakes import FakeUpstream, GitServer

from appliance.audit import parse_line
from appliance.sessions import AccessMode


async def curl(proxy: Proxy, url: str, *args: str, auth: tuple[str, str] | None) -> tuple[int, str]:
    cmd = ["curl", "-sS", "--max-time", "20", "--cacert", str(proxy.ca_path)]
    if auth:
        cmd += ["--proxy", proxy.url(*auth)]
    else:
        cmd += ["--proxy", f"http://127.0.0.1:{proxy.port}"]
    cmd += ["-w", "\n%{http_code} %{http_connect}", *args, url]
    with trio.fail_after(30):
        done = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False)
    out = done.stdout.decode()
    body, _, codes = out.rpartition("\n")
    code, connect = codes.split()
    return int(code) or int(connect), body


async def test_oauth_token_injected_and_placeholder_gone(proxy: Proxy, fake: FakeUpstream) -> None:
    auth = proxy.add_session("alpha")
    status, body = await curl(
        proxy, "https://api.anthropic.com/v1/messages?beta=true", "-X", "POST",
        "-H", "x-api-key: placeholder-key", "-H", "anthropic-beta: tools-2024", "-d", "{}",
        auth=auth,
    )
    assert status == 200, body
    seen = fake.seen[-1]
    assert seen.header("authorization") == [f"Bearer {SECRETS['anthropic_oauth_token']}"]
    assert seen.header("x-api-key") == []
    assert seen.header("anthropic-beta") == ["tools-2024,oauth-2025-04-20"]
    assert seen.header("proxy-authorization") == []
    assert "placeholder" not in json.dumps(seen.headers)


async def test_missing_or_wrong_credentials_get_407_and_an_audit_line(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    sid, _ = proxy.add_session("beta")
    status, _ = await curl(proxy, "https://api.github.com/user", auth=None)
    assert status == 407
    status, _ = await curl(proxy, "https://api.github.com/user", auth=(sid, "wrong"))
    assert status == 407
    assert fake.seen == []
    records = [parse_line(line) for line in proxy.audit_path.read_text().splitlines()]
    # A wrong token names no session: any client can name any session's id.
    assert [(r.status, r.decision, r.session) for r in records] == [
        (407, "rejected", None), (407, "rejected", None)]


async def test_a_claim_too_long_to_name_a_session_names_none(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    """A proxy URL whose user name runs to tens of kilobytes names no session: 407 as for
    none, and nothing of the claim is kept. Each distinct claim used to be looked up and
    kept (the session cache, the model-health ledger, the audit line): ten thousand of
    them, from any container, held half a gigabyte of the proxy every session shares."""
    claims = [f"{i}-" + "x" * 40_000 for i in range(3)]
    for claim in claims:
        status, _ = await curl(proxy, "https://api.github.com/user", auth=(claim, "tok"))
        assert status == 407
    assert fake.seen == []
    records = [parse_line(line) for line in proxy.audit_path.read_text().splitlines()]
    assert [(r.status, r.decision, r.session) for r in records] == [(407, "rejected", None)] * 3


async def test_read_only_blocks_writes_except_to_model_hosts(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    auth = proxy.add_session("gamma", AccessMode.READ_ONLY)
    status, body = await curl(proxy, "https://api.github.com/repos/o/r/issues", "-X", "POST",
                              "-d", "{}", auth=auth)
    assert status == 403
    assert "read-only" in body
    assert fake.seen == []
    status, _ = await curl(proxy, "https://api.github.com/repos/o/r", auth=auth)
    assert status == 200
    status, _ = await curl(proxy, "https://api.anthropic.com/v1/messages", "-X", "POST",
                           "-d", "{}", auth=auth)
    assert status == 200
    decisions = [parse_line(x).decision for x in proxy.audit_path.read_text().splitlines()]
    assert decisions == ["blocked", "injected", "injected"]


async def test_access_mode_change_applies_to_the_next_request(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    sid, token = proxy.add_session("delta")
    issues = "https://api.github.com/repos/o/r/issues"
    status, _ = await curl(proxy, issues, "-X", "POST", auth=(sid, token))
    assert status == 200
    proxy.store.update_session(sid, access_mode=AccessMode.READ_ONLY)
    status, _ = await curl(proxy, issues, "-X", "POST", auth=(sid, token))
    assert status == 403


async def test_unlisted_host_is_denied(proxy: Proxy) -> None:
    auth = proxy.add_session("eps")
    status, _ = await curl(proxy, "https://unlisted.invalid/", auth=auth)
    assert status == 403


async def test_github_api_writes_move_only_the_sessions_branch(
        proxy: Proxy, fake: FakeUpstream) -> None:
    """With the user's GitHub token injected, an agent could merge pull requests, move
    ``main`` or add a deploy key: those writes stop at the proxy; its own branch passes."""
    sid, token = proxy.add_session("mine")
    auth = (sid, token)
    for args in (["-X", "PUT", "-d", '{"merge_method":"squash"}'],):
        status, body = await curl(proxy, "https://api.github.com/repos/o/r/pulls/7/merge",
                                  *args, auth=auth)
        assert status == 403 and "owner" in body
    status, body = await curl(proxy, "https://api.github.com/repos/o/r/git/refs/heads/main",
                              "-X", "PATCH", "-d", '{"sha":"' + "1" * 40 + '","force":true}',
                              auth=auth)
    assert status == 403 and "clauderon/mine" in body
    status, _ = await curl(proxy, "https://api.github.com/repos/o/r/keys", "-X", "POST",
                           "-d", '{"key":"ssh-ed25519 AAAA"}', auth=auth)
    assert status == 403
    assert fake.seen == []  # none of them reached GitHub
    status, _ = await curl(proxy, "https://api.github.com/repos/o/r/git/refs/heads/clauderon/mine",
                           "-X", "PATCH", "-d", '{"sha":"' + "1" * 40 + '"}', auth=auth)
    assert status == 200 and len(fake.seen) == 1  # its own branch goes through
    status, _ = await curl(proxy, "https://api.github.com/repos/o/r/pulls", "-X", "POST",
                           "-d", '{"head":"clauderon/mine","base":"main"}', auth=auth)
    assert status == 200 and len(fake.seen) == 2  # opening a pull request is fine


def pull(head: str) -> dict[str, object]:
    """A pull request of ``o/r`` as GitHub answers it, from ``head``."""
    return {"head": {"ref": head, "repo": {"full_name": "o/r"}}}


async def test_a_write_to_a_pull_request_goes_on_once_github_says_it_is_the_sessions(
        proxy: Proxy, fake: FakeUpstream) -> None:
    """A pull request's number says nothing of whose it is: the proxy asks GitHub, with the
    credential the write carries, before the write goes on. Another session's is refused,
    and one GitHub says nothing readable about is refused too; the session's own goes on."""
    auth = proxy.add_session("mine")
    fake.github.update({"/repos/o/r/pulls/7": pull("clauderon/other"),
                        "/repos/o/r/pulls/8": pull("clauderon/mine")})
    for path in ("pulls/7", "issues/7", "pulls/9"):
        status, body = await curl(proxy, f"https://api.github.com/repos/o/r/{path}",
                                  "-X", "PATCH", "-d", '{"state": "closed"}', auth=auth)
        assert status == 403, body
        assert ("its head is clauderon/other" if "7" in path else "could not be learnt") in body
    asked = [(s.method, s.target, s.header("authorization")) for s in fake.seen]
    token = [f"Bearer {SECRETS['github_token']}"]
    assert asked == [("GET", "/repos/o/r/pulls/7", token)] * 2 + [
        ("GET", "/repos/o/r/pulls/9", token)]  # asked with the person's credential; no write
    status, body = await curl(proxy, "https://api.github.com/repos/o/r/pulls/8",
                              "-X", "PATCH", "-d", '{"state": "closed"}', auth=auth)
    assert status == 200, body
    assert [(s.method, s.target) for s in fake.seen[3:]] == [
        ("GET", "/repos/o/r/pulls/8"), ("PATCH", "/repos/o/r/pulls/8")]


async def test_a_comment_is_changed_only_on_the_sessions_pull_request(
        proxy: Proxy, fake: FakeUpstream) -> None:
    """A comment is named by its id: with the person's credential, an agent edited or
    deleted a comment anywhere in the repository (the person's review of another session's
    pull request). A comment's edit or deletion, and a reaction's, is the person's unless
    the session made it (refused unasked, on its own pull request too); for a reaction
    added, GitHub is asked what the comment is on, then whose that pull request is."""
    auth = proxy.add_session("mine")
    base = "/repos/o/r"
    fake.github.update({
        f"{base}/pulls/7": pull("clauderon/other"), f"{base}/pulls/8": pull("clauderon/mine"),
        f"{base}/issues/comments/1": {"issue_url": f"https://api.github.com{base}/issues/7"},
        f"{base}/pulls/comments/2": {"pull_request_url": f"https://api.github.com{base}/pulls/7"},
        f"{base}/issues/comments/3": {"issue_url": f"https://api.github.com{base}/issues/8"},
        f"{base}/issues/comments/4": {"issue_url": f"https://api.github.com{base}/issues/9"},
        f"{base}/pulls/9": None})
    refused = [("PATCH", "issues/comments/1", "comment 1 is the person's"),
               ("DELETE", "issues/comments/1", "comment 1 is the person's"),
               ("PATCH", "pulls/comments/2", "comment 2 is the person's"),
               ("POST", "issues/comments/1/reactions", "#7 is not this session's"),
               ("DELETE", "pulls/comments/2/reactions/5", "reaction 5 (on comment 2) may be"),
               ("PATCH", "issues/comments/3", "comment 3 is the person's"),  # on its own
               ("PATCH", "issues/comments/4", "comment 4 is the person's")]
    for method, path, why in refused:
        status, body = await curl(proxy, f"https://api.github.com{base}/{path}", "-X", method,
                                  "-d", '{"body": "edited"}', auth=auth)
        assert status == 403 and why in body, (path, body)
    assert {s.method for s in fake.seen} == {"GET"}  # asked, never written
    passed = []
    for path in ("3/reactions", "4/reactions"):  # on its own pull request; on an issue's
        status, body = await curl(proxy, f"https://api.github.com{base}/issues/comments/"
                                  f"{path}", "-X", "POST", "-d", '{"content": "+1"}', auth=auth)
        assert status == 200, body
        passed.append(json.loads(body)["target"])
    assert passed == [f"{base}/issues/comments/3/reactions",
                      f"{base}/issues/comments/4/reactions"]


async def test_no_write_reaches_beyond_the_branch_by_a_ref_label_or_issue_of_the_persons(
        proxy: Proxy, fake: FakeUpstream) -> None:
    """Three writes the rules once let through with the person's credential: a ref outside
    ``refs/heads`` spelt with the session's branch name (``refs/clauderon/<name>``, no
    branch: moved and deleted at will), a repository label renamed or deleted (from every
    issue and pull request at once), and a pull request opened from an issue (the person's
    issue becomes the session's pull request, its text and discussion with it). Each is
    refused before GitHub sees it; the branch itself, a new label and a comment on an issue
    go (the control), and a label on the person's issue is refused once GitHub says it is
    no pull request."""
    auth = proxy.add_session("mine")
    api = "https://api.github.com/repos/o/r"
    sha = '"' + "1" * 40 + '"'
    refused = [
        ("POST", "git/refs", '{"ref": "refs/clauderon/mine", "sha": ' + sha + "}"),
        ("PATCH", "git/refs/clauderon/mine", '{"sha": ' + sha + ', "force": true}'),
        ("DELETE", "git/refs/refs/heads/main", ""),
        ("PUT", "contents/a.txt", '{"message": "m", "content": "eA==", '
                                  '"branch": "heads/clauderon/mine"}'),
        ("PATCH", "labels/bug", '{"new_name": "renamed"}'),
        ("DELETE", "labels/bug", ""),
        ("POST", "pulls", '{"head": "clauderon/mine", "base": "main", "issue": 3}'),
    ]
    for method, path, body in refused:
        status, answer = await curl(proxy, f"{api}/{path}", "-X", method,
                                    *(["-d", body] if body else []), auth=auth)
        assert status == 403, (method, path, answer)
    assert fake.seen == []
    passed = [
        ("POST", "git/refs", '{"ref": "refs/heads/clauderon/mine", "sha": ' + sha + "}"),
        ("DELETE", "git/refs/heads/clauderon/mine", ""),
        ("POST", "issues/3/comments", '{"body": "a note"}'),
        ("POST", "labels", '{"name": "agent"}'),
    ]
    fake.github["/repos/o/r/pulls/3"] = None  # issue 3 is no pull request
    for method, path, body in passed:
        status, answer = await curl(proxy, f"{api}/{path}", "-X", method,
                                    *(["-d", body] if body else []), auth=auth)
        assert status == 200, (method, path, answer)
    status, answer = await curl(proxy, f"{api}/issues/3/labels", "-X", "POST",
                                "-d", '{"labels": ["deploy"]}', auth=auth)
    assert status == 403 and "issue #3 is the person's" in answer, answer


async def test_a_path_rules_credential_goes_to_no_other_path_a_server_reads(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    """The refresh token goes in for ``/oauth/token`` only: a path that starts so but that a
    server reads as another (dot segments, escaped or not, a parameter on ``..``, a longer
    last segment such as ``/oauth/token-echo``) carries
    the container's dummy, as any other path of that host does."""
    auth = proxy.add_session("refresh")
    fake.refresh_answer = {"access_token": "NEW-ACCESS", "refresh_token": "NEW-REFRESH"}
    body = json.dumps({"grant_type": "refresh_token",
                       "refresh_token": "DUMMY"})
    for path in ("/oauth/token/../../v1/echo", "/oauth/token/%2e%2e/%2e%2e/v1/echo",
                 "/oauth/token%2f..%2f..%2fv1/echo", "/oauth/token/..;/..;/v1/echo",
                 "/oauth/token/%252e%252e/%252e%252e/v1/echo", "/oauth/token-echo",
                 "/oauth/tokens/v1/echo", "/oauth/token%2e%2e/v1/echo"):
        status, answer = await curl(proxy, f"https://auth.openai.com{path}", "--path-as-is",
                                    "-X", "POST", "-H", "content-type: application/json",
                                    "-d", body, auth=auth)
        assert status == 200, (path, answer)
        seen = fake.seen[-1]
        assert seen.target == path
        assert SECRETS["codex_refresh_token"] not in seen.body.decode(), path
        assert json.loads(seen.body)["refresh_token"] == "DUMMY"
    # The refresh itself still gets the real one.
    status, answer = await curl(proxy, "https://auth.openai.com/oauth/token", "-X", "POST",
                                "-H", "content-type: application/json", "-d", body, auth=auth)
    assert status == 200, answer
    assert json.loads(fake.seen[-1].body)["refresh_token"] == SECRETS["codex_refresh_token"]


async def test_a_path_rules_credential_goes_to_no_path_a_lenient_server_reads_otherwise(
    proxy: Proxy, fake: FakeUpstream
) -> None:
    """Servers differ in what they undo before they resolve dot segments: IIS reads
    ``%u002e`` as a dot, lenient decoders read the overlong ``%c0%ae`` as one, some drop a
    NUL or a tab, and one may decode once more than the proxy does. A path that holds such a
    spelling once read carries the container's dummy, never the refresh token."""
    auth = proxy.add_session("lenient")
    fake.refresh_answer = {"access_token": "NEW-ACCESS", "refresh_token": "NEW-REFRESH"}
    body = json.dumps({"grant_type": "refresh_token",
                       "refresh_token": "DUMMY"})
    for path in ("/oauth/token/%u002e%u002e/%u002e%u002e/v1/echo",
                 "/oauth/token/%c0%ae%c0%ae/%c0%ae%c0%ae/v1/echo",
                 "/oauth/token/..%00/..%00/v1/echo", "/oauth/token/..%09/..%09/v1/echo",
                 "/oauth/token/%252525252e%252525252e/v1/echo"):
        status, answer = await curl(proxy, f"https://auth.openai.com{path}", "--path-as-is",
                                    "-X", "POST", "-H", "content-type: application/json",
                                    "-d", body, auth=auth)
        assert status == 200, (path, answer)
        assert fake.seen[-1].target == path
        assert json.loads(fake.seen[-1].body)["refresh_token"] == "DUMMY", path



#: The person's other repository, which the token reaches: not the session's (``o/r``).
THEIRS = "person/secret"
ELSEWHERE = f"{THEIRS} is not one of this session's repositories"
NODES = {"R_theirs": {"__typename": "Repository", "nameWithOwner": THEIRS},
         "R_mine": {"__typename": "Repository", "nameWithOwner": "o/r"},
         "I_theirs": {"__typename": "Issue", "repository": {"nameWithOwner": THEIRS}},
         "I_mine": {"__typename": "Issue", "repository": {"nameWithOwner": "O/R"}},
         "X_nowhere": {"__typename": "TeamDiscussion"}}


def mutation(text: str, node: str) -> str:
    """A GraphQL mutation naming ``node`` by the variable ``$id``, as curl's body."""
    return json.dumps({"query": f"mutation($id: ID!) {{ {text} }}", "variables": {"id": node}})


def writes(fake: FakeUpstream) -> list[bytes]:
    """What reached GitHub besides the proxy's own ``nodes`` questions."""
    return [s.body for s in fake.seen if b"nodes(ids:" not in s.body]


async def test_a_rest_write_reaches_only_the_sessions_own_repositories(
        proxy: Proxy, fake: FakeUpstream) -> None:
    """With a token that reaches the person's other repositories, the agent opened an
    issue there under the person's name: refused for the repository of its path; in its
    own repository (any case, as GitHub reads names) it goes on (the control)."""
    auth = proxy.add_session("rest")
    status, body = await curl(proxy, f"https://api.github.com/repos/{THEIRS}/issues",
                              "-X", "POST", "-d", '{"title":"x"}', auth=auth)
    assert status == 403 and ELSEWHERE in body and "run a session" in body, body
    assert fake.seen == []
    status, _ = await curl(proxy, "https://api.github.com/repos/O/R/issues",
                           "-X", "POST", "-d", '{"title":"x"}', auth=auth)
    assert status == 200 and len(fake.seen) == 1


async def test_graphql_create_issue_reaches_only_the_sessions_own_repositories(
        proxy: Proxy, fake: FakeUpstream) -> None:
    """GraphQL names a repository by an opaque id: the proxy asks GitHub which repository
    it is, and refuses createIssue in another; in its own it goes on (the control)."""
    auth = proxy.add_session("gqlcreate")
    fake.nodes = NODES
    create = "createIssue(input: {repositoryId: $id, title: \"x\"}) { issue { id } }"
    status, body = await curl(proxy, "https://api.github.com/graphql", "-X", "POST",
                              "-d", mutation(create, "R_theirs"), auth=auth)
    assert status == 403 and ELSEWHERE in body, body
    assert writes(fake) == []
    status, _ = await curl(proxy, "https://api.github.com/graphql", "-X", "POST",
                           "-d", mutation(create, "R_mine"), auth=auth)
    assert status == 200 and b"createIssue" in writes(fake)[-1]


async def test_graphql_comment_reaches_only_the_sessions_own_repositories(
        proxy: Proxy, fake: FakeUpstream) -> None:
    """addComment on another repository's issue is refused; so is one on a node GitHub
    places in no repository; on its own repository's issue it goes on (the control)."""
    auth = proxy.add_session("gqlcomment")
    fake.nodes = NODES
    comment = "addComment(input: {subjectId: $id, body: \"hi\"}) { clientMutationId }"
    for node, said in (("I_theirs", ELSEWHERE), ("X_nowhere", "could not be learnt")):
        status, body = await curl(proxy, "https://api.github.com/graphql", "-X", "POST",
                                  "-d", mutation(comment, node), auth=auth)
        assert status == 403 and said in body, body
    assert writes(fake) == []
    status, _ = await curl(proxy, "https://api.github.com/graphql", "-X", "POST",
                           "-d", mutation(comment, "I_mine"), auth=auth)
    assert status == 200 and b"addComment" in writes(fake)[-1]


async def test_a_rest_write_whose_path_spells_a_push_is_judged_as_a_rest_write(
        proxy: Proxy, fake: FakeUpstream) -> None:
    """The API host serves no git, but a POST there whose path held ``git-receive-pack``
    (a repository of the person's so named, any case or escape) was judged as a push:
    its pkt-lines only, never the REST rules nor the repository of its path, so a flush
    for a body and the parameters in the query opened an issue in the person's other
    repository. A write to the API host is now always judged as a REST write."""
    auth = proxy.add_session("apipush")
    for path in ("/repos/person/git-receive-pack-notes/issues?title=x",
                 "/repos/person/Git-Receive-Pack/issues",
                 "/repos/person/secret/git-receive-pack"):
        status, body = await curl(proxy, f"https://api.github.com{path}", "-X", "POST",
                                  "-d", "0000", auth=auth)
        assert status == 403, f"{path} went to GitHub: {status} {body}"
    assert fake.seen == []
    status, body = await curl(proxy, "https://api.github.com/repos/person/Git-Receive-Pack/issues",
                              "-X", "POST", "-d", '{"title":"x"}', auth=auth)
    assert status == 403 and "is not one of this session's repositories" in body, body
    status, _ = await curl(proxy, "https://api.github.com/repos/o/r/issues", "-X", "POST",
                           "-d", '{"title":"x"}', auth=auth)
    assert status == 200 and len(fake.seen) == 1  # its own repository: the control


async def test_a_git_lfs_upload_reaches_only_the_sessions_own_repositories(
        proxy: Proxy, git_server: GitServer) -> None:
    """Git LFS's batch, a POST to the git host, was judged by its path alone: an upload
    there, whose answer authorises storing objects in the repository, went to the person's
    other repository. An upload (or any operation but a download) now goes only to the
    session's own; a download from anywhere is a read (the control), as is an upload to its
    own repository. A body naming ``operation`` again in capitals read as a download to the
    proxy and as an upload to a server that matches keys in any case."""
    auth = proxy.add_session("lfs")
    batch = "https://github.com/{}.git/info/lfs/objects/batch"
    up = '{"operation":"upload","objects":[{"oid":"' + "a" * 64 + '","size":1}]}'
    # A key named twice in another case is one key to Go's encoding/json, the last one read.
    for body in (up, '{"operation":"download","operation":"upload"}',
                 '{"operation":"download","Operation":"upload"}', "[]"):
        status, said = await curl(proxy, batch.format(THEIRS), "-X", "POST", "-d", body,
                                  auth=auth)
        assert status == 403, f"{body} reached {THEIRS}: {status} {said}"
    assert git_server.seen == []
    status, said = await curl(proxy, batch.format(THEIRS), "-X", "POST", "-d", up, auth=auth)
    assert ELSEWHERE in said, said
    for repo, body in ((THEIRS, up.replace("upload", "download")), ("o/r", up)):
        status, said = await curl(proxy, batch.format(repo), "-X", "POST", "-d", body,
                                  auth=auth)
        assert status != 403, said
    assert [s.target for s in git_server.seen] == [
        f"/{repo}.git/info/lfs/objects/batch" for repo in (THEIRS, "o/r")]
