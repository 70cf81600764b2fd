"""A fake GitHub on loopback: real repositories over smart HTTP and the REST calls the
appliance makes, behind the proxy's ``[upstreams]`` overrides of ``github.com`` and
``api.github.com``.

* ``github.com``: ``git http-backend`` over bare repositories under ``root/OWNER/NAME.git``
  and Git LFS's locks under ``NAME.git/info/lfs``,
  Basic ``x-access-token:TOKEN`` required (only the proxy holds the token);
* ``api.github.com``: ``Bearer TOKEN`` required; the repository, pull requests (list with
  ``head=`` and ``state=``, one, open, merge with ``sha`` and ``merge_method``), check runs on
  a commit, reviews, deleting a branch. A merge is a real one in the bare repository (squash:
  one commit on the base; merge: a merge commit; rebase: the head, when it fast-forwards).

Tests set the pull requests' facts (:meth:`FakeGitHub.add_pull`, :attr:`checks`,
:attr:`reviews`) and read what was asked (:attr:`seen`). A threaded standard-library server.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.tls_fake import TlsFake

TOKEN = "ghp_REALGITHUBCANARY0123456789"


def git_backend(root: Path, method: str, target: str, body: bytes,
                header: Callable[[str], str | None]) -> tuple[int, bytes, list[tuple[str, str]]]:
    """One smart-HTTP request answered by the real ``git http-backend`` (CGI) over the
    repositories under ``root``: status, body and headers (all but Content-Length)."""
    path, _, query = target.partition("?")
    # A CGI server hands the script its path decoded (RFC 3875), as Apache does for git's
    # documented ``ScriptAlias`` set-up: ``git-receive-p%61ck`` runs a push there.
    path = unquote(path)
    env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(root),
           "GIT_HTTP_EXPORT_ALL": "1", "REQUEST_METHOD": method, "PATH_INFO": path,
           "QUERY_STRING": query, "CONTENT_TYPE": header("content-type") or "",
           "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": "x-access-token",
           "REMOTE_ADDR": "127.0.0.1"}
    for name, var in (("git-protocol", "GIT_PROTOCOL"),
                      ("content-encoding", "HTTP_CONTENT_ENCODING")):
        if value := header(name):
            env[var] = value
    done = subprocess.run(["git", "http-backend"], env=env, input=body,
                          capture_output=True, check=False, timeout=60)
    head, _, out = done.stdout.partition(b"\r\n\r\n")
    status, headers = 200, []
    for line in head.decode().split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name and name.lower() != "content-length":
            headers.append((name.strip().lower(), value.strip()))
    return status, out, headers


@dataclass
class Seen:
    host: str
    method: str
    path: str
    body: bytes


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    base = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*",
            "GIT_AUTHOR_NAME": "GitHub",
            "GIT_AUTHOR_EMAIL": "gh@example.test", "GIT_COMMITTER_NAME": "GitHub",
            "GIT_COMMITTER_EMAIL": "gh@example.test"}
    done = subprocess.run(["git", *args], cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


#: GraphQL's name of a reaction's content, when REST names it otherwise.
_REST_CONTENT = {"THUMBS_UP": "+1", "THUMBS_DOWN": "-1"}
#: The older node ids' kinds, as this fake's ids name them (``012:IssueComment9`` is IC_9).
_LEGACY_KINDS = {"IssueComment": "IC", "Issue": "I", "PullRequest": "PR"}
#: The kinds of this fake's new-form ids (``IC_9``).
_KINDS = frozenset({*_LEGACY_KINDS.values(), "PRR", "PRRT", "U"})


def modern(value: Any) -> Any:
    """``value`` with every node id of the older form (base64 of ``012:IssueComment9``) in
    this fake's form, read as GitHub's server reads one: its padding may be left off."""
    if isinstance(value, dict):
        return {k: modern(v) for k, v in value.items()}
    if isinstance(value, list):
        return [modern(v) for v in value]
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9+/\-_]+=*", value):
        return value
    # A new-form id's kind is read whatever its case, as a decoder that keys on the kind may.
    spelt = re.fullmatch(r"([A-Za-z]{1,8})_(\w+)", value)
    if spelt and spelt[1].upper() in _KINDS and spelt[1] != spelt[1].upper():
        return f"{spelt[1].upper()}_{spelt[2]}"
    padded = value if value.endswith("=") else value + "=" * (-len(value) % 4)
    try:
        plain = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except ValueError:
        return value
    found = re.fullmatch(rb"\d{3}:([A-Za-z]+)(\d+)", plain)
    kind = _LEGACY_KINDS.get(found[1].decode()) if found else None
    return f"{kind}_{int(found[2])}" if found and kind else value


class FakeGitHub(TlsFake):
    HOSTS = ("github.com", "api.github.com")

    def __init__(self, folder: Path) -> None:
        self.root = folder / "github"
        self.root.mkdir(parents=True)
        self.seen: list[Seen] = []
        self.pulls: list[dict[str, Any]] = []
        #: Check runs by commit, and reviews by pull request number.
        self.checks: dict[str, list[dict[str, Any]]] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        #: Comments on issues (not pull requests), by issue number.
        self.issue_comments: dict[int, list[str]] = {}
        #: The person's issues by number (numbered from 100: no pull request has those), and
        #: every comment on an issue by its id.
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        #: Reactions by id, each on an issue or pull request (``_issue``) or a comment
        #: (``_comment``); the token's user has at most one of each content on each.
        self.reactions: dict[int, dict[str, Any]] = {}
        self.reacted = 0  # reactions ever added: the next one's id (none is given out again)
        #: Review threads by number (node id ``PRRT_<n>``), each on a pull request (``_pull``).
        self.threads: dict[int, dict[str, Any]] = {}
        #: How many times each repository was deleted and made again: an issue's number comes
        #: back in the new one, its node id does not (``I_<n>g<times>``).
        self.reborn: dict[str, int] = {}
        #: Node ids whose pull request's repository GitHub cannot read in a ``nodes``
        #: answer: the node is null, the NOT_FOUND error names the field within it.
        self.unreadable: set[str] = set()
        #: Git LFS locks by id (``<repo>.git/info/lfs/locks``), each owned by the token's user.
        self.lfs_locks: dict[str, dict[str, Any]] = {}
        #: SSH keys added to the token owner's account (``POST /user/keys``).
        self.user_keys: list[dict[str, Any]] = []
        #: The list answers every pull request, whatever ``head`` asks (a server to distrust).
        self.ignore_head_filter = False
        #: What the person does just after GitHub answers the next ``nodes`` question (what
        #: the proxy asks before a session's GraphQL write): each runs once, between the
        #: check and the write.
        self.then: list[Callable[[], object]] = []
        self.lock = threading.RLock()
        self._listen(folder, "fake-github", ("github.com", "api.github.com"), _Handler)

    # --- the repositories ------------------------------------------------------------
    def bare(self, slug: str) -> Path:
        return self.root / f"{slug}.git"

    def create_repo(self, slug: str, seed: Path) -> Path:
        """A bare repository with ``seed``'s main (a local repository) in it."""
        bare = self.bare(slug)
        bare.parent.mkdir(parents=True, exist_ok=True)
        git(self.root, "init", "-q", "--bare", "-b", "main", str(bare))
        git(bare, "config", "http.receivepack", "true")
        git(seed, "push", "-q", str(bare), "HEAD:refs/heads/main")
        return bare

    def recreate_repo(self, slug: str, seed: Path) -> Path:
        """The repository deleted on GitHub and made again under its name: its pull
        requests, issues and comments gone, its issue numbers to be given out again."""
        with self.lock:
            shutil.rmtree(self.bare(slug))
            self.issues = {n: i for n, i in self.issues.items() if i["_repo"] != slug}
            self.comments = {c: d for c, d in self.comments.items() if d["_repo"] != slug}
            self.reborn[slug] = self.reborn.get(slug, 0) + 1
        return self.create_repo(slug, seed)

    def add_lfs_lock(self, path: str) -> dict[str, Any]:
        """The person's lock on ``path`` (Git LFS's shape)."""
        with self.lock:
            lock = {"id": str(len(self.lfs_locks) + 1), "path": path,
                    "locked_at": "2024-01-01T00:00:00Z", "owner": {"name": "person"}}
            self.lfs_locks[lock["id"]] = lock
            return lock

    def lfs(self, method: str, rest: str, doc: dict[str, Any]) -> tuple[int, Any]:
        """Git LFS's locking API under ``<repo>.git/info/lfs``: list, create, verify,
        unlock (the token's user owns every lock here, so no ``force`` is needed)."""
        with self.lock:
            locks = list(self.lfs_locks.values())
            if rest == "locks" and method == "GET":
                return 200, {"locks": locks}
            if rest == "locks/verify" and method == "POST":
                return 200, {"ours": locks, "theirs": []}
            if rest == "locks" and method == "POST":
                if any(x["path"] == doc.get("path") for x in locks):
                    return 409, {"message": "already created lock"}
                return 201, {"lock": self.add_lfs_lock(str(doc.get("path")))}
            if (m := re.fullmatch(r"locks/([^/]+)/unlock", rest)) and method == "POST":
                lock = self.lfs_locks.pop(m.group(1), None)
                return (200, {"lock": lock}) if lock else (404, {"message": "Not Found"})
            return 404, {"message": "Not Found"}

    def tip(self, slug: str, branch: str) -> str | None:
        try:
            return git(self.bare(slug), "rev-parse", "--verify", "-q", f"refs/heads/{branch}")
        except subprocess.CalledProcessError:
            return None

    def refs(self, slug: str) -> dict[str, str]:
        out = git(self.bare(slug), "for-each-ref", "--format=%(refname) %(objectname)")
        return dict(line.split(" ", 1) for line in out.splitlines())

    # --- pull requests ----------------------------------------------------------------
    def add_pull(self, slug: str, head: str, base: str = "main", *, title: str = "t",
                 draft: bool = False) -> dict[str, Any]:
        with self.lock:
            number = len(self.pulls) + 1
            sha = self.tip(slug, head) or "0" * 40
            pr = {"number": number, "state": "open", "draft": draft, "title": title,
                  "html_url": f"https://github.com/{slug}/pull/{number}",
                  "head": {"ref": head, "sha": sha, "repo": {"full_name": slug}},
                  "base": {"ref": base},
                  "merged_at": None, "merged": False, "mergeable": True,
                  "mergeable_state": "clean", "_repo": slug}
            self.pulls.append(pr)
            return pr

    def add_issue(self, slug: str, title: str) -> dict[str, Any]:
        with self.lock:
            number = 100 + len(self.issues)
            times = self.reborn.get(slug, 0)
            self.issues[number] = {"number": number, "title": title, "body": "", "state": "open",
                                   "labels": [], "assignees": [], "_repo": slug,
                                   "id": 9000 + number,
                                   "node_id": f"I_{number}" + (f"g{times}" if times else ""),
                                   "url": f"https://api.github.com/repos/{slug}/issues/{number}"}
            return self.issues[number]

    def add_comment(self, slug: str, number: int, body: str) -> dict[str, Any]:
        """A comment on issue (or pull request) ``number``; its node id is ``IC_<id>``."""
        with self.lock:
            cid = len(self.comments) + 1
            self.comments[cid] = {"id": cid, "body": body, "node_id": f"IC_{cid}",
                                  "url": f"https://api.github.com/repos/{slug}/issues/comments/"
                                         f"{cid}",
                                  "issue_url": f"https://api.github.com/repos/{slug}/issues/"
                                               f"{number}", "_issue": number, "_repo": slug}
            self.issue_comments.setdefault(number, []).append(body)
            return self.comments[cid]

    def add_reaction(self, slug: str, content: str, *, issue: int = 0,
                     comment: int = 0) -> tuple[bool, dict[str, Any]]:
        """The token user's reaction on issue (or pull request) ``issue`` or on ``comment``:
        (whether it is new, the reaction), as GitHub answers an existing one again."""
        with self.lock:
            for r in self.reactions.values():
                if (r["_repo"], r["_issue"], r["_comment"], r["content"]) == (
                        slug, issue, comment, content):
                    return False, r
            rid = 500 + self.reacted
            self.reacted += 1
            self.reactions[rid] = {"id": rid, "node_id": f"REA_{rid}", "content": content,
                                   "user": {"login": "octocat"}, "_repo": slug,
                                   "_issue": issue, "_comment": comment}
            return True, self.reactions[rid]

    def add_review(self, slug: str, number: int, state: str, body: str = "") -> dict[str, Any]:
        """A review of pull request ``number`` (``PENDING`` until submitted), as GitHub
        answers one; its node id is ``PRR_<id>``."""
        with self.lock:
            rid = 700 + sum(len(r) for r in self.reviews.values())
            review = {"id": rid, "node_id": f"PRR_{rid}", "user": {"login": "octocat"},
                      "body": body, "state": state,
                      "html_url": f"https://github.com/{slug}/pull/{number}"
                                  f"#pullrequestreview-{rid}",
                      "pull_request_url": f"https://api.github.com/repos/{slug}/pulls/{number}"}
            self.reviews.setdefault(number, []).append(review)
            return review

    def review(self, number: int, rid: int) -> dict[str, Any] | None:
        return next((r for r in self.reviews.get(number, []) if r.get("id") == rid), None)

    def add_thread(self, number: int) -> dict[str, Any]:
        """A review thread on pull request ``number``; its node id is ``PRRT_<n>``."""
        with self.lock:
            n = len(self.threads) + 1
            self.threads[n] = {"id": f"PRRT_{n}", "isResolved": False, "_pull": number}
            return self.threads[n]

    def pull(self, number: int) -> dict[str, Any]:
        return self.pulls[number - 1]

    def merges(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "PUT" and s.path.endswith("/merge")]

    @staticmethod
    def _plain(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if not k.startswith("_")}

    def _public(self, pr: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in pr.items() if not k.startswith("_")}
        if pr["state"] == "open":  # the head follows pushes, as on GitHub
            out["head"] = {**pr["head"], "sha": self.tip(pr["_repo"], pr["head"]["ref"])
                           or pr["head"]["sha"]}
        return out

    def _merge(self, pr: dict[str, Any], method: str) -> str:
        bare, slug = self.bare(pr["_repo"]), pr["_repo"]
        head, base = self.tip(slug, pr["head"]["ref"]), self.tip(slug, pr["base"]["ref"])
        assert head and base
        if method == "rebase":
            git(bare, "merge-base", "--is-ancestor", base, head)
            new = head
        else:
            tree = git(bare, "rev-parse", f"{head}^{{tree}}")
            parents = ["-p", base] + (["-p", head] if method == "merge" else [])
            new = git(bare, "commit-tree", tree, *parents, "-m", pr["title"])
        git(bare, "update-ref", f"refs/heads/{pr['base']['ref']}", new, base)
        pr.update(state="closed", merged=True, merged_at="2024-05-01T12:00:00Z",
                  mergeable_state="unknown")
        pr["head"]["sha"] = head
        return new

    # --- the REST API -----------------------------------------------------------------
    def api(self, method: str, path: str, query: dict[str, list[str]],
            body: Any) -> tuple[int, Any]:
        if path == "/graphql" and method == "POST":
            variables = body.get("variables") or {}
            if isinstance(variables, str):  # sent as JSON text: read as GitHub's server does
                variables = json.loads(variables) if variables.strip() else {}
            variables = modern(variables)
            with self.lock:
                return self.graphql(str(body.get("query") or ""), variables)
        if path == "/user/keys" and method == "POST":
            self.user_keys.append(body)
            return 201, {"id": len(self.user_keys), **body}
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "repos":
            return 404, {"message": "Not Found"}
        slug, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        if not self.bare(slug).exists():
            return 404, {"message": "Not Found"}
        with self.lock:
            return self._route(method, slug, rest, query, body)

    def graphql(self, query: str, variables: dict[str, Any]) -> tuple[int, Any]:
        """The few GraphQL fields a test uses, found in the query's text (GitHub runs the
        whole document; node ids of pull requests are ``PR_<number>`` here, and an id that
        names nothing is answered null with a NOT_FOUND error, as GitHub does)."""
        data: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        if "viewer" in query:
            data["viewer"] = {"login": "octocat"}
        if re.search(r"\bnodes\(ids:", query):
            ids = [str(i) for i in variables.get("ids") or []]
            data["nodes"] = [None if i in self.unreadable else self._node(i) for i in ids]
            # A field inside a node that cannot be read nulls the node too (a non-null
            # field's null goes up to its nullable parent), its error naming the field.
            errors = [{"type": "NOT_FOUND", "path": ["nodes", n] + (
                ["pullRequest", "repository"] if ids[n] in self.unreadable else [])}
                for n, node in enumerate(data["nodes"]) if node is None]
            if re.search(r"\breactions\(first: 100\)", query):  # each Reactable's
                for i, node in zip(ids, data["nodes"], strict=True):
                    if node is not None and (on := self._reactable(i)) is not None:
                        node["reactions"] = self._reactions_on(*on)
        if "addComment" in query:
            data["addComment"] = {"clientMutationId": None}
        issue = re.search(r'"I_(\d+)"', query + json.dumps(variables))
        if "closeIssue" in query and issue and int(issue.group(1)) in self.issues:
            self.issues[int(issue.group(1))]["state"] = "closed"
            data["closeIssue"] = {"clientMutationId": None}
        comment = re.search(r'"IC_(\d+)"', query + json.dumps(variables))
        if "deleteIssueComment" in query and comment:
            self.comments.pop(int(comment.group(1)), None)
            data["deleteIssueComment"] = {"clientMutationId": None}
        thread = re.search(r'"PRRT_(\d+)"', query + json.dumps(variables))
        for name, resolved in (("resolveReviewThread", True), ("unresolveReviewThread", False)):
            if re.search(rf"\b{name}\b", query) and thread and int(thread[1]) in self.threads:
                self.threads[int(thread[1])]["isResolved"] = resolved
                data[name] = {"thread": self._plain(self.threads[int(thread[1])])}
        named = re.search(r'"PR_(\d+)"', query + json.dumps(variables))
        if "closePullRequest" in query and named:
            self.pull(int(named.group(1)))["state"] = "closed"
            data["closePullRequest"] = {"clientMutationId": None}
        if re.search(r"\brequestReviews\b", query) and named:
            # GitHub's default, union false, puts these reviewers in place of those asked.
            pr = self.pull(int(named.group(1)))
            union = re.search(r"\bunion:\s*true\b", query) is not None \
                or '"union": true' in json.dumps(variables)
            asked = [{"login": u} for u in re.findall(r'"U_(\w+)"', query + json.dumps(
                variables))]
            pr["requested_reviewers"] = (pr.get("requested_reviewers", []) if union else []) \
                + asked
            data["requestReviews"] = {"clientMutationId": None}
        react = re.search(r'(add|remove)Reaction\(input:\s*\{subjectId:\s*\$id,\s*'
                          r'content:\s*(\w+)', query)
        subject = re.fullmatch(r"PR_(\d+)", str(variables.get("id")))
        if react and subject:  # a reaction there already is answered as a new one is
            pr = self.pull(int(subject[1]))
            content = _REST_CONTENT.get(react[2], react[2].lower())
            _, r = self.add_reaction(pr["_repo"], content, issue=pr["number"])
            if react[1] == "remove":
                del self.reactions[r["id"]]
            data[f"{react[1]}Reaction"] = {"reaction": {
                "id": r["node_id"], "databaseId": r["id"], "content": react[2]}}
        merge = re.search(r'mergePullRequest\(input:\s*\{pullRequestId:\s*"PR_(\d+)"', query)
        if merge:
            pr = self.pull(int(merge.group(1)))
            self._merge(pr, "merge")
            data["mergePullRequest"] = {"clientMutationId": None}
        return 200, {"data": data, **({"errors": errors} if errors else {})}

    def _reactable(self, node_id: str) -> tuple[str, int, int] | None:
        """What a node's reactions are on: (repository, issue, comment)."""
        if (issue := re.fullmatch(r"(?:I|PR)_(\d+)", node_id)) is not None:
            on = self.issues.get(int(issue[1])) if node_id[0] == "I" else self.pull(
                int(issue[1]))
            return (on["_repo"], on["number"], 0) if on else None
        if (comment := re.fullmatch(r"IC_(\d+)", node_id)) is not None:
            c = self.comments[int(comment[1])]
            return c["_repo"], 0, c["id"]
        return None

    def _reactions_on(self, slug: str, issue: int, comment: int) -> dict[str, Any]:
        """GraphQL's ``reactions(first: 100)`` of what ``_reactable`` names."""
        graphql = {rest: name for name, rest in _REST_CONTENT.items()}
        on = [r for r in self.reactions.values()
              if (r["_repo"], r["_issue"], r["_comment"]) == (slug, issue, comment)]
        return {"totalCount": len(on), "nodes": [
            {"id": r["node_id"], "content": graphql.get(r["content"], r["content"].upper()),
             "user": r["user"]} for r in on[:100]]}

    def _node(self, node_id: str) -> dict[str, Any] | None:
        if re.fullmatch(r"U_\w+", node_id):  # a user: GitHub knows every one named here
            return {"__typename": "User"}
        if (issue := re.fullmatch(r"I_(\d+)", node_id)) and int(issue[1]) in self.issues:
            return {"__typename": "Issue", "repository": {
                "nameWithOwner": self.issues[int(issue[1])]["_repo"]}}
        if (comment := re.fullmatch(r"IC_(\d+)", node_id)) and int(comment[1]) in self.comments:
            on = self.comments[int(comment[1])]["_issue"]
            pull = self._node(f"PR_{on}") if on not in self.issues else None
            return {"__typename": "IssueComment", "pullRequest": pull, "repository": {
                "nameWithOwner": self.comments[int(comment[1])]["_repo"]}}
        review = re.fullmatch(r"PRR_(\d+)", node_id)
        on = next((n for n, rs in self.reviews.items() for r in rs
                   if review and r.get("id") == int(review[1])), None)
        if on is not None:
            pull = self._node(f"PR_{on}")
            return {"__typename": "PullRequestReview", "pullRequest": pull,
                    "repository": (pull or {}).get("repository")}
        thread = re.fullmatch(r"PRRT_(\d+)", node_id)
        if thread and int(thread[1]) in self.threads:
            pull = self._node(f"PR_{self.threads[int(thread[1])]['_pull']}")
            return {"__typename": "PullRequestReviewThread", "pullRequest": pull,
                    "repository": (pull or {}).get("repository")}
        found = re.fullmatch(r"PR_(\d+)", node_id)
        if found is None or not 0 < int(found.group(1)) <= len(self.pulls):
            return None
        pr = self.pull(int(found.group(1)))
        return {"__typename": "PullRequest", "number": pr["number"],
                "headRefName": pr["head"]["ref"],
                "headRepository": {"nameWithOwner": pr["_repo"]},
                "repository": {"nameWithOwner": pr["_repo"]}}

    def _reactions(self, method: str, slug: str, rest: list[str],
                   body: Any) -> tuple[int, Any] | None:
        """``issues/N/reactions`` and ``issues/comments/ID/reactions``: add (201, or 200 with
        the one there already), and delete by id."""
        on = rest[1:2] if rest[2:3] == ["reactions"] else rest[2:3] \
            if rest[1:2] == ["comments"] and rest[3:4] == ["reactions"] else []
        if rest[:1] != ["issues"] or not on or not on[0].isdigit():
            return None
        where = {"comment": int(on[0])} if rest[1] == "comments" else {"issue": int(on[0])}
        tail = rest[4:] if rest[1] == "comments" else rest[3:]
        if method == "POST" and tail == []:
            new, r = self.add_reaction(slug, str(body.get("content")), **where)
            return 201 if new else 200, self._plain(r)
        if method == "DELETE" and len(tail) == 1 and tail[0].isdigit():
            r = self.reactions.get(int(tail[0]))
            if r is None or r["_repo"] != slug or ({"comment": r["_comment"]} != where \
                    and {"issue": r["_issue"]} != where):
                return 404, {"message": "Not Found"}
            del self.reactions[int(tail[0])]
            return 204, None
        return None

    def _reviews(self, method: str, slug: str, pr: dict[str, Any], rest: list[str],
                 body: Any) -> tuple[int, Any]:
        """A review's create (200, as GitHub answers it), edit, deletion (a pending one),
        submission and dismissal; a pull request's review requests added and removed."""
        number = pr["number"]
        if rest == ["requested_reviewers"] and method in ("POST", "DELETE"):
            asked = pr.setdefault("requested_reviewers", [])
            names = [str(n) for n in body.get("reviewers") or []]
            pr["requested_reviewers"] = [u for u in asked if u["login"] not in names] + (
                [{"login": n} for n in names] if method == "POST" else [])
            return (201 if method == "POST" else 200), self._public(pr)
        if rest == ["reviews"] and method == "POST":
            event = {"COMMENT": "COMMENTED", "REQUEST_CHANGES": "CHANGES_REQUESTED",
                     "APPROVE": "APPROVED"}.get(str(body.get("event")), "PENDING")
            return 200, self.add_review(slug, number, event, str(body.get("body") or ""))
        review = self.review(number, int(rest[1])) if rest[1:2] and rest[1].isdigit() else None
        if review is None:
            return 404, {"message": "Not Found"}
        if rest[2:] == [] and method == "PUT":
            review["body"] = str(body.get("body"))
        elif rest[2:] == [] and method == "DELETE":
            if review["state"] != "PENDING":
                return 422, {"message": "Unprocessable Entity",
                             "errors": ["Can not delete a non-pending pull request review"]}
            self.reviews[number].remove(review)
        elif rest[2:] == ["events"] and method == "POST" and review["state"] == "PENDING":
            review["state"] = {"COMMENT": "COMMENTED", "REQUEST_CHANGES": "CHANGES_REQUESTED",
                               "APPROVE": "APPROVED"}[str(body.get("event"))]
        elif rest[2:] == ["dismissals"] and method == "PUT":
            review["state"] = "DISMISSED"
        else:
            return 422, {"message": "Unprocessable Entity"}
        return 200, review

    def _route(self, method: str, slug: str, rest: list[str], query: dict[str, list[str]],
               body: Any) -> tuple[int, Any]:
        mine = [p for p in self.pulls if p["_repo"] == slug]
        if method == "GET" and not rest:
            return 200, {"full_name": slug, "default_branch": "main"}
        if rest == ["pulls"] and method == "GET":
            head = (query.get("head") or [""])[0].partition(":")[2]
            state = (query.get("state") or ["open"])[0]
            found = [p for p in mine if (self.ignore_head_filter or not head
                                         or p["head"]["ref"] == head)
                     and (state == "all" or p["state"] == state)]
            return 200, [self._public(p) for p in reversed(found)]
        if rest == ["pulls"] and method == "POST":
            if self.tip(slug, body["head"]) is None:
                return 422, {"message": "Validation Failed",
                             "errors": [{"message": f"head {body['head']} does not exist"}]}
            if any(p["head"]["ref"] == body["head"] and p["state"] == "open" for p in mine):
                return 422, {"message": "A pull request already exists"}
            pr = self.add_pull(slug, body["head"], body["base"], title=body["title"],
                               draft=bool(body.get("draft")))
            return 201, self._public(pr)
        if len(rest) >= 2 and rest[0] == "pulls" and rest[1].isdigit():
            number = int(rest[1])
            if number > len(self.pulls) or self.pulls[number - 1]["_repo"] != slug:
                return 404, {"message": "Not Found"}
            pr = self.pulls[number - 1]
            if len(rest) == 2 and method == "GET":
                return 200, self._public(pr)
            if len(rest) == 2 and method == "PATCH":  # edit: title, state, base
                if "base" in body and self.tip(slug, body["base"]) is None:
                    return 422, {"message": "Validation Failed",
                                 "errors": [{"message": f"base {body['base']} does not exist"}]}
                pr.update({k: body[k] for k in ("title", "body", "state") if k in body})
                pr["base"] = {"ref": body.get("base", pr["base"]["ref"])}
                return 200, self._public(pr)
            if rest[2:] == ["reviews"] and method == "GET":
                return 200, self.reviews.get(number, [])
            if rest[2:3] in (["reviews"], ["requested_reviewers"]):
                return self._reviews(method, slug, pr, rest[2:], body)
            if rest[2:] == ["merge"] and method == "PUT":
                if pr["state"] != "open":
                    return 405, {"message": "Pull Request is not mergeable"}
                head = self.tip(slug, pr["head"]["ref"])
                if body.get("sha") and body["sha"] != head:
                    return 409, {"message": "Head branch was modified. Review and try the "
                                            "merge again."}
                new = self._merge(pr, str(body.get("merge_method") or "merge"))
                return 200, {"sha": new, "merged": True, "message": "Pull Request merged"}
        if rest == ["issues"] and method == "POST":
            return 201, self._plain(self.add_issue(slug, str(body.get("title"))))
        if (rest[:1] == ["issues"] and rest[2:] == ["comments"] and method == "POST"
                and rest[1].isdigit()):
            return 201, self._plain(self.add_comment(slug, int(rest[1]), str(body.get("body"))))
        if reacted := self._reactions(method, slug, rest, body):
            return reacted
        issue = self.issues.get(int(rest[1])) if rest[:1] == ["issues"] and rest[1:2] \
            and rest[1].isdigit() else None
        if rest[:1] == ["issues"] and len(rest) == 2 and method == "PATCH" and issue is None \
                and rest[1].isdigit() and 0 < int(rest[1]) <= len(self.pulls):
            return self._route(method, slug, ["pulls", rest[1]], query, body)  # one numbering
        if issue is not None and issue["_repo"] == slug:
            if rest[2:] == [] and method == "GET":
                return 200, self._plain(issue)
            if rest[2:] == [] and method == "PATCH":
                issue.update({k: body[k] for k in ("title", "body", "state") if k in body})
                return 200, self._plain(issue)
            if rest[2:] in (["labels"], ["assignees"]) and method == "POST":
                issue[rest[2]] += body.get(rest[2]) or []
                return 200, self._plain(issue)
        cid = int(rest[2]) if rest[:2] == ["issues", "comments"] and rest[2:3] \
            and rest[2].isdigit() and len(rest) == 3 else 0
        if cid in self.comments and self.comments[cid]["_repo"] == slug:
            if method == "GET":
                return 200, self._plain(self.comments[cid])
            if method == "PATCH":
                self.comments[cid]["body"] = body.get("body")
                return 200, self._plain(self.comments[cid])
            if method == "DELETE":
                del self.comments[cid]
                return 204, None
        if rest[:1] == ["commits"] and rest[2:] == ["check-runs"] and method == "GET":
            runs = self.checks.get(rest[1], [])
            return 200, {"total_count": len(runs), "check_runs": runs}
        if rest[:3] == ["git", "refs", "heads"] and method == "DELETE":
            branch = "/".join(rest[3:])
            if self.tip(slug, branch) is None:
                return 422, {"message": "Reference does not exist"}
            git(self.bare(slug), "update-ref", "-d", f"refs/heads/{branch}")
            return 204, None
        return 404, {"message": "Not Found"}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: Any) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self._answer(status, data, [("Content-Type", "application/json")])

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._body()
        host = (self.headers.get("Host") or "").split(":")[0]
        with self.fake.lock:
            self.fake.seen.append(Seen(host=host, method=self.command, path=self.path,
                                       body=body))
        if host == "api.github.com":
            if self.headers.get("Authorization") not in (f"Bearer {TOKEN}", f"token {TOKEN}"):
                self._json(401, {"message": "Bad credentials"})
                return
            split = urlsplit(self.path)
            status, answer = self.fake.api(self.command, split.path, parse_qs(split.query),
                                           json.loads(body) if body else {})
            asked = split.path == "/graphql" and b"nodes(ids:" in body
            with self.fake.lock:
                then, self.fake.then = (self.fake.then, []) if asked else ([], self.fake.then)
            for act in then:
                act()
            self._json(status, answer)
            return
        expected = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self._answer(401, b"no\n", [("WWW-Authenticate", 'Basic realm="git"')])
            return
        if "/info/lfs/" in self.path:
            rest = urlsplit(self.path).path.partition("/info/lfs/")[2]
            status, answer = self.fake.lfs(self.command, rest, json.loads(body) if body else {})
            data = json.dumps(answer).encode()
            self._answer(status, data, [("Content-Type", "application/vnd.git-lfs+json")])
            return
        self._git(body)

    def _git(self, body: bytes) -> None:
        self._answer(*git_backend(self.fake.root, self.command, self.path, body,
                                  self.headers.get))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle  # noqa: N815
