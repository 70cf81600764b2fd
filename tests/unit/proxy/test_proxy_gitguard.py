"""Pushes and GitHub API writes move only the session's own branch (pure playbooks)."""

from __future__ import annotations

import json

import pytest

from proxy import gitguard

OLD, NEW = "0" * 40, "1" * 40


def pkt(line: bytes) -> bytes:
    return f"{len(line) + 4:04x}".encode() + line


def push(*refs: str, caps: bytes = b"\0report-status side-band-64k") -> bytes:
    lines = [f"{OLD} {NEW} {ref}\n".encode() for ref in refs]
    lines[0] = lines[0].rstrip(b"\n") + caps + b"\n"
    return b"".join(pkt(line) for line in lines) + b"0000" + b"PACK...."


def test_commands_are_read_up_to_the_flush() -> None:
    body = push("refs/heads/clauderon/a", "refs/heads/main")
    assert gitguard.push_commands(body) == ["refs/heads/clauderon/a", "refs/heads/main"]
    assert gitguard.push_commands(body[:30]) is None  # not all there yet
    shallow = pkt(b"shallow " + b"2" * 40 + b"\n") + push("refs/heads/clauderon/a")
    assert gitguard.push_commands(shallow) == ["refs/heads/clauderon/a"]


@pytest.mark.parametrize(("body", "word"), [
    (b"zzzz", "pkt-lines"),
    (b"0003", "malformed"),
    (b"0000", "no ref"),
    (pkt(b"push-cert\0report-status\n") + b"0000", "signed"),
    (pkt(b"garbage line\n") + b"0000", "'<old> <new> <ref>'"),
    # Push options ask the server for more than the refs (GitLab merges on them).
    (push("refs/heads/clauderon/a", caps=b"\0report-status push-options"), "push options"),
])
def test_what_is_not_a_push_is_named(body: bytes, word: str) -> None:
    found = gitguard.push_commands(body)
    assert isinstance(found, str) and word in found


def test_gits_probe_before_a_chunked_push_passes_and_moves_nothing() -> None:
    # A push larger than http.postBuffer is preceded by a request whose body is a flush
    # packet alone: it updates no ref. The same four bytes with more to come are no probe.
    assert gitguard.push_refusal("mine", b"0000", complete=True) is None
    assert gitguard.owner_push_refusal(b"0000", complete=True) is None
    assert gitguard.push_refusal("mine", b"0000", complete=False) is not None
    assert gitguard.push_refusal("mine", b"0000" + b"0000", complete=True) is not None


@pytest.mark.parametrize(("refs", "refused"), [
    (["refs/heads/clauderon/mine"], False),
    (["refs/heads/main"], True),
    (["refs/heads/clauderon/other"], True),
    (["refs/heads/clauderon/mine", "refs/heads/main"], True),
    (["refs/tags/v1"], True),
    (["refs/heads/clauderon/mine2"], True),
])
def test_push_refusal(refs: list[str], refused: bool) -> None:
    why = gitguard.push_refusal("mine", push(*refs), complete=True)
    assert (why is not None) == refused, why


def test_an_incomplete_or_overlong_push_is_refused() -> None:
    assert "ended" in (gitguard.push_refusal("mine", push("refs/heads/main")[:20],
                                             complete=True) or "")
    assert "longer" in (gitguard.push_refusal("mine", push("refs/heads/main")[:20],
                                              complete=False) or "")


def j(**doc: object) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("method", "path", "body", "refused"), [
    ("GET", "/repos/o/r/git/refs/heads/main", None, False),
    ("POST", "/repos/o/r/pulls", j(head="clauderon/mine", base="main"), False),
    ("POST", "/repos/o/r/issues/3/comments", j(body="hi"), False),
    ("PATCH", "/repos/o/r/git/refs/heads/clauderon/mine", j(sha=NEW), False),
    ("PATCH", "/repos/o/r/git/refs/heads/main", j(sha=NEW, force=True), True),
    ("DELETE", "/repos/o/r/git/refs/heads/release", None, True),
    ("POST", "/repos/o/r/git/refs", j(ref="refs/heads/clauderon/mine", sha=NEW), False),
    ("POST", "/repos/o/r/git/refs", j(ref="refs/heads/hotfix", sha=NEW), True),
    ("POST", "/repos/o/r/git/refs", j(ref="refs/tags/v9", sha=NEW), True),
    # A ref outside refs/heads spelt with the branch's name is no branch: never the session's.
    ("POST", "/repos/o/r/git/refs", j(ref="refs/clauderon/mine", sha=NEW), True),
    ("POST", "/repos/o/r/git/refs", j(ref="clauderon/mine", sha=NEW), True),
    ("POST", "/repos/o/r/git/refs", j(ref="refs/tags/clauderon/mine", sha=NEW), True),
    ("PATCH", "/repos/o/r/git/refs/clauderon/mine", j(sha=NEW, force=True), True),
    ("DELETE", "/repos/o/r/git/refs/clauderon/mine", None, True),
    ("PATCH", "/repos/o/r/git/refs/refs/heads/clauderon/mine", j(sha=NEW), True),
    ("DELETE", "/repos/o/r/git/refs/heads/clauderon/mine", None, False),
    ("PUT", "/repos/o/r/contents/a.txt", j(message="m", content="eA==",
                                          branch="refs/heads/clauderon/mine"), False),
    ("PUT", "/repos/o/r/contents/a.txt", j(message="m", content="eA==",
                                          branch="heads/clauderon/mine"), True),
    ("POST", "/repos/o/r/merges", j(base="clauderon/mine", head="main"), False),
    # A pull request opened from an issue takes the person's issue over.
    ("POST", "/repos/o/r/pulls", j(head="clauderon/mine", base="main", issue=3), True),
    ("POST", "/repos/o/r/pulls", j(head="clauderon/mine", base="main", issue=None), True),
    # The repository's labels are the person's; a label on an issue, or a new one, is not.
    ("PATCH", "/repos/o/r/labels/bug", j(new_name="x"), True),
    ("DELETE", "/repos/o/r/labels/bug", None, True),
    ("POST", "/repos/o/r/labels", j(name="agent"), False),
    ("PUT", "/repos/o/r/contents/a.txt", j(message="m", content="eA==",
                                          branch="clauderon/mine"), False),
    ("PUT", "/repos/o/r/contents/a.txt", j(message="m", content="eA=="), True),
    ("DELETE", "/repos/o/r/contents/a.txt", j(message="m", sha=NEW, branch="main"), True),
    ("POST", "/repos/o/r/merges", j(base="main", head="clauderon/mine"), True),
    ("PUT", "/repos/o/r/pulls/7/merge", j(merge_method="squash"), True),
    ("DELETE", "/repos/o/r", None, True),
    ("PATCH", "/repos/o/r", j(default_branch="clauderon/mine"), True),
    ("POST", "/repos/o/r/hooks", j(config={"url": "https://evil"}), True),
    ("PUT", "/repos/o/r/actions/secrets/X", j(encrypted_value="x"), True),
    ("PUT", "/repos/o/r/branches/main/protection", j(), True),
    ("POST", "/repos/o/r/keys", j(key="ssh-ed25519 AAA"), True),
    # What a session may write: its pull requests, issues, reviews, labels, git objects.
    ("PATCH", "/repos/o/r/pulls/7", j(title="t"), False),
    ("PATCH", "/repos/o/r/pulls/7", j(state="closed"), False),
    # A pull request's base is the person's: retargeted, a merge would land it elsewhere.
    ("PATCH", "/repos/o/r/pulls/7", j(title="t", base="release"), True),
    ("PATCH", "/repos/o/r/pulls/7", j(base="main"), True),
    ("PATCH", "/repos/o/r/pulls/7", b'{"\\u0062ase": "release"}', True),
    ("PATCH", "/repos/o/r/pulls/7", b'{"title": "t", "title": "u"}', True),
    # A body too long to be read whole (None) vouches for nothing a rule reads in it.
    ("PATCH", "/repos/o/r/pulls/7", None, True),
    ("PATCH", "/repos/o/r/pulls/7", b"", False),
    ("POST", "/repos/o/r/pulls/7/reviews", None, True),
    ("POST", "/repos/o/r/pulls/7/reviews", b"", False),
    ("POST", "/repos/o/r/git/blobs", None, False),
    ("POST", "/repos/o/r/pulls/7/reviews", j(event="COMMENT", body="b"), False),
    ("POST", "/repos/o/r/pulls/7/reviews", j(body="pending"), False),
    # An approval is the person's: whatever pull request, however it is submitted.
    ("POST", "/repos/o/r/pulls/7/reviews", j(event="APPROVE"), True),
    ("POST", "/repos/o/r/pulls/7/reviews/5/events", j(event="APPROVE"), True),
    ("POST", "/repos/o/r/pulls/7/reviews", b'{"event": "COMMENT", "event": "APPROVE"}', True),
    ("PUT", "/repos/o/r/pulls/7/reviews/5/dismissals", j(message="m"), True),
    ("POST", "/repos/o/r/pulls/7/comments/9/replies", j(body="b"), False),
    ("POST", "/repos/o/r/issues", j(title="t"), False),
    ("POST", "/repos/o/r/issues/3/labels", j(labels=["bug"]), False),
    ("DELETE", "/repos/o/r/issues/3/labels/bug", None, False),
    ("POST", "/repos/o/r/git/blobs", j(content="x"), False),
    ("POST", "/markdown", j(text="# t"), False),
    # Everything else is the person's: CI, releases, dispatches, their account, orgs.
    ("PUT", "/repos/o/r/pulls/7/update-branch", j(), True),
    ("POST", "/repos/o/r/statuses/" + NEW, j(state="success"), True),
    ("POST", "/repos/o/r/check-runs", j(name="ci", conclusion="success"), True),
    ("POST", "/repos/o/r/dispatches", j(event_type="x"), True),
    ("POST", "/repos/o/r/actions/workflows/ci.yml/dispatches", j(ref="clauderon/mine"),
     True),
    ("POST", "/repos/o/r/releases", j(tag_name="v9"), True),
    ("POST", "/repos/o/r/deployments", j(ref="clauderon/mine"), True),
    ("POST", "/repos/o/r/forks", j(), True),
    ("POST", "/user/keys", j(title="agent", key="ssh-ed25519 AAA"), True),
    ("POST", "/user/repos", j(name="x"), True),
    ("POST", "/orgs/o/invitations", j(email="evil@example.com"), True),
    ("POST", "/gists", j(files={}), True),
    # A path a server might read as another is not checked: refused.
    ("POST", "/repos/o/r/issues/1/comments/../../../pulls/7/merge", j(), True),
    ("PUT", "/repos/o/r/pulls/7/%6derge", j(), True),
    ("POST", "//repos/o/r/issues", j(title="t"), True),
    ("POST", "/repos/o/r/./issues", j(title="t"), True),
    # A server may read a write's parameters from its URL as from its body: a query on a
    # write is refused (an approval, a base, a GraphQL mutation the body does not name).
    ("POST", "/repos/o/r/pulls/7/reviews?event=APPROVE", j(body="b"), True),
    ("PATCH", "/repos/o/r/pulls/7?base=release", j(title="t"), True),
    ("POST", "/graphql?query=mutation%7BmergePullRequest%7D", j(query="{ viewer { login } }"),
     True),
    ("GET", "/repos/o/r/pulls?state=open", None, False),
    # JSON nested past Python's stack cannot be read: refused, not an error.
    ("POST", "/repos/o/r/pulls/7/reviews", b"[" * 5000, True),
    ("POST", "/graphql", j(query="mutation { updatePullRequest(input: $i) { x } }",
                           variables={"i": json.loads("[" * 900 + "]" * 900)}), False),
    # A key given twice is read differently by different servers: refused.
    ("PUT", "/repos/o/r/contents/a.txt",
     b'{"message": "m", "content": "eA==", "branch": "clauderon/mine", "branch": "main"}',
     True),
])
def test_github_api_writes(method: str, path: str, body: bytes | None, refused: bool) -> None:
    why = gitguard.api_refusal("mine", method, path, body)
    assert (why is not None) == refused, (method, path, why)


# --- the appliance's own identity ----------------------------------------------------------

@pytest.mark.parametrize(("refs", "refused"), [
    (["refs/heads/clauderon/a"], False),
    (["refs/heads/clauderon/a", "refs/heads/clauderon/b"], False),
    (["refs/heads/main"], True),
    (["refs/heads/clauderon/"], True),
    (["refs/heads/clauderon/a", "refs/tags/v1"], True),
    (["refs/heads/clauderonx/a"], True),
])
def test_the_appliance_pushes_session_branches_only(refs: list[str], refused: bool) -> None:
    why = gitguard.owner_push_refusal(push(*refs), complete=True)
    assert (why is not None) == refused, why


@pytest.mark.parametrize(("method", "path", "body", "refused"), [
    ("GET", "/repos/o/r/pulls?head=o:clauderon/a", None, False),
    ("PUT", "/repos/o/r/pulls/7/merge", b'{"merge_method":"squash"}', False),
    ("DELETE", "/repos/o/r/git/refs/heads/clauderon/a", None, False),
    ("POST", "/repos/o/r/pulls", json.dumps({"head": "clauderon/a", "base": "main"}).encode(),
     False),
    ("POST", "/repos/o/r/pulls", json.dumps({"head": "o:clauderon/a"}).encode(), False),
    ("POST", "/repos/o/r/pulls", json.dumps({"head": "main", "base": "x"}).encode(), True),
    ("POST", "/repos/o/r/pulls", b"not json", True),
    ("DELETE", "/repos/o/r/git/refs/heads/main", None, True),
    ("PATCH", "/repos/o/r/git/refs/heads/clauderon/a", b'{"sha":"1"}', True),
    ("PUT", "/repos/o/r/contents/x", b'{"branch":"clauderon/a"}', True),
    ("DELETE", "/repos/o/r", None, True),
    ("PATCH", "/repos/o/r", b"{}", True),
    ("POST", "/repos/o/r/hooks", b"{}", True),
    ("DELETE", "/repos/o/r/git/refs/heads/clauderon/a/../../main", None, True),
    ("DELETE", "/repos/o/r/git/refs/heads/clauderon/a%2F..%2F..%2Fmain", None, True),
])
def test_the_appliances_github_writes(method: str, path: str, body: bytes | None,
                                      refused: bool) -> None:
    why = gitguard.owner_api_refusal(method, path, body)
    assert (why is not None) == refused, why


def test_a_session_may_not_merge_what_the_appliance_may() -> None:
    """The same request, two identities: the person's merge passes, the session's not."""
    merge = ("PUT", "/repos/o/r/pulls/7/merge", b'{"merge_method":"merge"}')
    assert gitguard.owner_api_refusal(*merge) is None
    assert "owner" in (gitguard.api_refusal("a", *merge) or "")


def gql(query: str) -> bytes:
    return json.dumps({"query": query, "variables": {}}).encode()


@pytest.mark.parametrize(("body", "refused"), [
    (gql("query { viewer { login } }"), False),
    (gql('mutation { addComment(input: {subjectId: "I_1", body: "hi"}) { clientMutationId } }'),
     False),
    (gql('mutation { createPullRequest(input: {repositoryId: "R", headRefName: '
         '"clauderon/mine", baseRefName: "main", title: "t"}) { pullRequest { url } } }'),
     False),
    (gql('mutation { mergePullRequest(input: {pullRequestId: "PR_1"}) { clientMutationId } }'),
     True),
    (gql('mutation { updateRef(input: {refId: "REF_main", oid: "' + NEW + '", force: true})'
         ' { ref { name } } }'), True),
    (gql('mutation { ok: addComment(input: {}) { x } m: enablePullRequestAutoMerge(input: {})'
         ' { x } }'), True),
    (gql('mutation { createCommitOnBranch(input: {}) { commit { oid } } }'), True),
    (gql('mutation { addPullRequestReview(input: {pullRequestId: "PR_9", event: APPROVE})'
         ' { clientMutationId } }'), True),
    (gql("mutation { ...F } fragment F on Mutation { mergePullRequest { x } }"), True),
    (gql('mutation { updatePullRequest(input: {pullRequestId: "PR_1", title: "t"}) { x } }'),
     False),
    (gql('mutation { updatePullRequest(input: {pullRequestId: "PR_1", baseRefName: "release"})'
         ' { x } }'), True),
    (json.dumps({"query": "mutation($i: UpdatePullRequestInput!) { updatePullRequest(input: "
                 "$i) { x } }", "variables": {"i": {"pullRequestId": "PR_1",
                                                    "baseRefName": "release"}}}).encode(),
     True),
    (b'{"query": "mutation($i: UpdatePullRequestInput!) { updatePullRequest(input: $i) '
     b'{ x } }", "variables": {"i": {"\\u0062aseRefName": "release"}}}', True),
    (b'{"query": "mutation { mergePullRequest(input: {}) { x } }", '
     b'"query": "query { viewer { login } }"}', True),
    (b"not json", True),
    (json.dumps([{"query": "mutation { mergePullRequest(input: {}) { x } }"}]).encode(),
     True),  # a batch: an array of documents
    (b"mutation { mergePullRequest(input: {}) { x } }", True),  # application/graphql
    (gql("query { viewer { login } } # \r mutation { mergePullRequest(input: {}) { x } }"),
     True),  # a comment ended by a lone carriage return
    (gql('query { a(b: """ """" ) } mutation { mergePullRequest(input: {}) { x } }'), True),
    (gql("mutation { addComment(input: {}) @skip(if: true) { x } mergePullRequest(input: {}) "
         "{ x } }"), True),
    (gql("mutation A { addComment(input: {}) { x } } mutation A { mergePullRequest(input: {})"
         " { x } }"), True),  # operationName picks one of two of a name
    (gql('mutation @a(b: "{") { mergePullRequest(input: {}) { x } }'), True),
    (gql("mutation { addComment: mergePullRequest(input: {}) { x } }"), True),
    (gql("mutation {\u00a0mergePullRequest(input: {}) { x } }"), True),
    (json.dumps({"variables": {}}).encode(), True),
    (None, True),
    # A stored document, run by its hash or id in place of the one read.
    (json.dumps({"query": "query { viewer { login } }",
                 "extensions": {"persistedQuery": {"sha256Hash": "ab"}}}).encode(), True),
    (json.dumps({"query": "query { viewer { login } }", "doc_id": "1"}).encode(), True),
    (json.dumps({"query": "query { viewer { login } }", "operationName": None}).encode(),
     False),
])
def test_github_graphql_writes(body: bytes | None, refused: bool) -> None:
    why = gitguard.api_refusal("mine", "POST", "/graphql", body)
    assert (why is not None) == refused, why


_COMMENT = 'mutation($id: ID!) { addComment(input: {subjectId: $id, body: "x"}) { x } }'


@pytest.mark.parametrize(("variables", "refused"), [
    ({"id": "I_1"}, False), (None, False), ({}, False),
    (json.dumps({"id": "I_1"}), True),  # GitHub reads JSON text as the object it spells
    ("", True), ([{"id": "I_1"}], True), (1, True), (True, True)])
def test_graphql_variables_are_judged_only_as_an_object(variables: object,
                                                         refused: bool) -> None:
    """The ids in variables sent as JSON text were never asked about."""
    why = gitguard.api_refusal("mine", "POST", "/graphql", json.dumps(
        {"query": _COMMENT, "variables": variables}).encode())
    assert (why is not None) == refused, why
    assert not refused or "a JSON object" in (why or "")


def test_a_graphql_document_is_scanned_only_up_to_its_limit() -> None:
    """Scanning is pure Python on the proxy's one loop: a document an agent makes megabytes
    long would hold every session's requests while it is read. Long text goes in the
    variables, which are not scanned (the control)."""
    pad = " " * (gitguard.GRAPHQL_LIMIT - 200)
    comment = 'mutation { addComment(input: {subjectId: "I_1", body: $b}) { x } }'
    assert gitguard.api_refusal("mine", "POST", "/graphql", gql(comment + pad)) is None
    why = gitguard.api_refusal("mine", "POST", "/graphql", gql(comment + pad + " " * 400))
    assert why is not None and "64 KiB" in why
    long_text = json.dumps({"query": comment, "variables": {"b": "x" * (4 << 20)}}).encode()
    assert gitguard.api_refusal("mine", "POST", "/graphql", long_text) is None


@pytest.mark.parametrize("path", [
    "/o/r.git/git-receive-pack", "/o/r.git/git-receive-pack?x=1", "/o/r/git-receive-p%61ck",
    "/o/r/git%2Dreceive%2Dpack", "/o/r/git-receive-pack%252f", "/o/r/GIT-RECEIVE-PACK",
    "/o/r/git-receive-pack/", "/o/r%2Fgit-receive-pack", "/o/r/git-receive-pack/.",
    "/o/r/git-receive-pack;x", "/o/r/git-receive-pack%3Bx", "/o/r/git-receive-pack-x"])
def test_a_push_is_known_however_its_path_is_spelled(path: str) -> None:
    """A server decodes the path before it picks git's service (a CGI server must): every
    spelling it may run as a push is judged as one."""
    assert gitguard.is_push("POST", path)
    assert not gitguard.is_push("GET", path)


@pytest.mark.parametrize("path", ["/o/r.git/git-upload-pack", "/o/r.git/info/refs",
                                  "/o/r/x?s=/git-receive-pack"])
def test_what_is_no_push_is_not_one(path: str) -> None:
    assert not gitguard.is_push("POST", path)



@pytest.mark.parametrize(("body", "refused"), [
    (j(head="clauderon/mine", base="main", title="t"), False),
    (j(head="octo:clauderon/mine", base="main", title="t"), False),
    (j(head="clauderon/other", base="main", title="t"), True),
    (j(head="octo:clauderon/other", base="main", title="t"), True),
    (j(head="main", base="release", title="t"), True),
    (j(base="main", title="t"), True),
    (j(issue=7, head=["clauderon/mine"]), True),
    (gql('mutation { createPullRequest(input: {repositoryId: "R", headRefName: '
         '"clauderon/other", baseRefName: "main", title: "t"}) { pullRequest { url } } }'),
     True),
    (json.dumps({"query": "mutation($i: CreatePullRequestInput!) { createPullRequest(input: "
                 "$i) { x } }", "variables": {"i": {"headRefName": "clauderon/mine"}}}).encode(),
     False),
    (json.dumps({"query": "mutation($i: CreatePullRequestInput!) { createPullRequest(input: "
                 "$i) { x } }", "variables": {"i": {"headRefName": "clauderon/other"}}}).encode(),
     True),
    (json.dumps({"query": "mutation($h: String!) { createPullRequest(input: {headRefName: $h})"
                 " { x } }", "variables": {"h": "clauderon/mine"}}).encode(), True),
    (gql('mutation { createPullRequest(input: {headRefName: "clauderon/mine"}) { x } '
         'b: createPullRequest(input: {headRefName: "clauderon/other"}) { x } }'), True),
])
def test_a_session_opens_pull_requests_from_its_own_branch_only(
        body: bytes, refused: bool) -> None:
    """Another session's view shows the pull request whose head is its branch: one opened
    by a neighbour would show the neighbour's title and text as that session's."""
    path = "/graphql" if b'"query"' in body else "/repos/o/r/pulls"
    why = gitguard.api_refusal("mine", "POST", path, body)
    assert (why is not None) == refused, why
