"""The agent of a Kubernetes session against the host git that brings its branch in.

A pod cannot share objects with the host, so the agent pushes its branch to the remote
(real git through the running proxy, which injects the credential) and the host asks the
remote for it and fetches it into the person's repository, as the repository's owner
(uid 1000), through the same proxy as the session (:mod:`appliance.remotes`). The remote is
a real bare repository served over smart HTTP on loopback. What the agent pushes is small
on the wire and in every count the sync makes before it, and large in the host's memory
once git inflates it: host git's peak is measured as the tests of the Docker sync do
(:func:`tests.support.peaks.git_peak`), for git running as the owner only (the server's git
is the remote's business).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trustme
from conftest import Proxy, route
from proxy_fakes import GitServer, Listener, read_head

from appliance import publish, pulls, remotes, repos
from appliance.errors import ClauderonError
from tests.conftest import AGENT_UID, user_git
from tests.support.peaks import git_peak

MIB = 1 << 20
URL = "https://github.com/owner/repo.git"
#: The agent's git streams its large files too: the peak measured is the host's alone.
LEAN = ("-c", "core.bigFileThreshold=32m", "-c", "pack.windowMemory=64m")


@dataclass
class Pod:
    """The agent's side (its clone, pushing through the proxy as the session) and the
    person's (their repository with the remote as origin, the session branch made)."""

    person: Path
    info: repos.RepoInfo
    bare: Path
    work: Path
    git: list[str]
    proxy: str
    ca: Path
    scratch: Path
    session_id: str
    branch: str


async def run(cmd: list[str], cwd: Path, *, stdin: bytes = b"") -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_TERMINAL_PROMPT": "0",
           "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a",
           "GIT_COMMITTER_EMAIL": "a@b"}
    with trio.fail_after(300):
        done = await trio.run_process(cmd, cwd=cwd, env=env, stdin=stdin, capture_stdout=True,
                                      capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().strip()


@pytest.fixture
async def pod(proxy: Proxy, git_server: GitServer, repo: Path, tmp_path: Path) -> Pod:
    bare = git_server.root / "owner" / "repo.git"
    bare.parent.mkdir()
    await run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], tmp_path)
    await run(["git", "config", "http.receivepack", "true"], bare)
    await run(["git", "-c", f"safe.directory={repo}", "push", "-q", str(bare), "main"], repo)
    user_git(repo, "remote", "add", "origin", URL)
    sid, token = proxy.add_session("agent")
    branch = "clauderon/agent"
    user_git(repo, "branch", branch, "main")  # made at the base when the session is created
    url = proxy.url(sid, token)
    git = ["git", *LEAN, "-c", f"http.proxy={url}", "-c", f"http.sslCAInfo={proxy.ca_path}"]
    await run([*git, "clone", "-q", URL, "work"], tmp_path)
    work = tmp_path / "work"
    await run(["git", "checkout", "-q", "-b", branch], work)
    return Pod(person=repo, info=repos.repo_facts(repo), bare=bare, work=work, git=git,
               proxy=url, ca=proxy.ca_path, scratch=tmp_path / "shadows", session_id=sid,
               branch=branch)


async def push(pod: Pod, script: str) -> str:
    """The agent runs ``script`` in its clone, then pushes its branch; its new tip."""
    await run(["sh", "-c", script], pod.work)
    await run([*pod.git, "push", "-q", "origin", f"HEAD:{pod.branch}"], pod.work)
    return await run(["git", "rev-parse", "HEAD"], pod.work)


async def bring_in(pod: Pod, *, max_mib: int = 1024) -> str | None:
    """The reconciler's fetch of the session branch: None, or why it failed."""
    def fetch() -> None:
        remotes.fetch_branch(pod.info, URL, pod.branch, proxy=pod.proxy, ca=pod.ca,
                             scratch=pod.scratch, max_bytes=max_mib * MIB)
    try:
        await trio.to_thread.run_sync(fetch)
    except ClauderonError as exc:
        return exc.message
    return None


def tip(pod: Pod, ref: str) -> str:
    return user_git(pod.person, "rev-parse", "--verify", "--quiet", ref)


HALVES = """set -e
head -c $((500 << 20)) /dev/zero > a
(head -c $((500 << 20)) /dev/zero; echo x) > b
git add a b && git commit -qm halves
git -c pack.window=10 repack -adq
"""


async def test_a_pushed_branch_within_its_budget_costs_host_git_a_bounded_heap(
        pod: Pod) -> None:
    """Two files of 500 MiB of zeros, one byte apart: 1000 MiB, within the 1024 MiB one
    sync brings in, a MiB on the wire, the second a delta of the first. The remote sends
    the delta as it has it; the host's git resolving it held the first file and built the
    second beside it, as it had no bound on its heap: a GiB of the host's memory for one
    fetch of a branch, what the agent could have it take again with every push. It now has
    the heap of every host git reading an agent's objects: the fetch fails saying so, and
    nothing comes in (a Docker sync, whose sender is ours, streams both files and brings
    the commit in)."""
    await push(pod, HALVES)
    with git_peak(AGENT_UID) as seen:
        said = await bring_in(pod)
    assert max(seen) < 600 * MIB, f"host git grew to {max(seen) // MIB} MiB"
    assert said is not None and "memory" in said, said
    assert tip(pod, f"refs/heads/{pod.branch}") == tip(pod, "main")


async def test_a_pushed_branch_over_the_budget_brings_nothing_in(pod: Pod) -> None:
    """A branch whose new commits hold 300 MiB, against a budget of 16 MiB: the pod's sync
    had no budget at all and brought it in whole (what a checkout of it writes)."""
    await push(pod, "head -c $((300 << 20)) /dev/zero > big && git add big && "
                    "git commit -qm big")
    said = await bring_in(pod, max_mib=16)
    assert tip(pod, f"refs/heads/{pod.branch}") == tip(pod, "main"), \
        "a branch over max_sync_mib was brought in"
    assert said is not None and "max_sync_mib" in said, said


async def test_refs_the_remote_holds_besides_the_branch_never_reach_the_person(
        pod: Pod, tmp_path: Path) -> None:
    """The remote holds what the agent could not push through the proxy but a remote may
    hold all the same (a hostile or careless one): tags, ``refs/clauderon/*``, another
    session's branch, a ``main`` moved. Only the session branch comes in."""
    commit = await push(pod, "echo work > work && git add work && git commit -qm work")
    await run(["git", "update-ref", "refs/heads/main", commit], pod.bare)
    for ref in ("refs/tags/v1", "refs/clauderon/agent", "refs/heads/clauderon/other",
                "refs/remotes/origin/main", "refs/notes/commits"):
        await run(["git", "update-ref", ref, commit], pod.bare)
    before = user_git(pod.person, "for-each-ref", "--format=%(refname) %(objectname)")
    assert await bring_in(pod) is None
    after = user_git(pod.person, "for-each-ref", "--format=%(refname) %(objectname)")
    moved = set(after.splitlines()) - set(before.splitlines())
    assert moved == {f"refs/heads/{pod.branch} {commit}"}, moved
    assert not (pod.person / ".git" / "FETCH_HEAD").exists()


LONG_SUBJECT = """set -e
who='a <a@b> 1 +0000'
(printf 'tree %s\\nparent %s\\nauthor %s\\ncommitter %s\\n\\n' \\
   $(git rev-parse 'HEAD^{tree}') $(git rev-parse HEAD) "$who" "$who"
 head -c $((384 << 20)) /dev/zero | tr '\\0' m) > ../commit
c=$(git hash-object -t commit -w --literally ../commit)
rm ../commit
git reset -q --soft "$c"
"""


async def test_a_pull_requests_title_costs_host_git_a_bounded_heap(pod: Pod,
                                                                   proxy: Proxy) -> None:
    """The agent's newest commit has a subject of 384 MiB of one letter: 384 KiB on the
    wire, within every limit of the sync, which brings it in. Opening the session's pull
    request titles it with that subject, read by host git in the person's repository: git
    held the commit and the subject it formats whole, with no bound on its heap, though the
    title keeps 250 characters. The title is the session's name when git has not the heap
    for the subject."""
    commit = await push(pod, LONG_SUBJECT)
    assert await bring_in(pod) is None
    assert tip(pod, f"refs/heads/{pod.branch}") == commit
    session = proxy.store.get_session(pod.session_id)
    assert session is not None
    with git_peak(AGENT_UID) as seen:
        title = await trio.to_thread.run_sync(pulls._title, pod.info, session)
    assert max(seen) < 600 * MIB, f"host git grew to {max(seen) // MIB} MiB"
    assert title == session.name


class EndlessListing(Listener):
    """A remote that answers a listing of its refs with refs until ``limit`` bytes are sent:
    each one's name ends like the session branch (``ls-remote`` matches the tail), so git
    prints every one it is given."""

    https_compatible = True

    def __init__(self, ca: trustme.CA, *, limit: int) -> None:
        super().__init__(ca)
        self.limit = limit
        self.sent = 0

    async def _connection(self, stream: trio.abc.Stream) -> None:
        if not await read_head(stream):
            return
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-git-upload-"
                              b"pack-advertisement\r\ntransfer-encoding: chunked\r\n\r\n")
        first = b"001e# service=git-upload-pack\n0000"
        lines = [first]
        for n in range(1, 1 << 30):
            name = b"%040x refs/heads/%d/refs/heads/clauderon/agent" % (n, n)
            lines.append(b"%04x%s\n" % (len(name) + 5, name))
            if len(lines) == 1024:
                chunk = b"".join(lines)
                await stream.send_all(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.sent += len(chunk)
                lines = []
                if self.sent > self.limit:
                    break
        await stream.send_all(b"4\r\n0000\r\n0\r\n\r\n")


async def test_a_remote_that_lists_refs_without_end_costs_the_host_a_bounded_heap(
        pod: Pod, proxy: Proxy, upstream_ca: trustme.CA, nursery: trio.Nursery) -> None:
    """The reconciler asks the remote for the session branch (``ls-remote``) every few
    seconds; the remote answers with 1.5 GiB of refs, each named like the branch. Host git
    kept every ref it was sent, and printed each, which the reconciler read whole: both
    grew with the listing, as far as the remote cared to go in the 30 s the question may
    take. Now git has the heap of a host git reading an agent's data and the reconciler
    reads 64 KiB of its answer at most."""
    hostile = EndlessListing(upstream_ca, limit=3 << 29)
    port = await nursery.start(hostile.serve)
    route(proxy, port, "github.com")

    def ask() -> str | None:
        return remotes.remote_tip(pod.info, URL, pod.branch, proxy=pod.proxy, ca=pod.ca)
    with git_peak(AGENT_UID) as seen:
        try:
            said = await trio.to_thread.run_sync(ask)
        except ClauderonError as exc:
            said = exc.message
    assert max(seen) < 600 * MIB, f"host git grew to {max(seen) // MIB} MiB"
    assert said is None or len(said) < 4096, said[:200]


async def test_a_persons_push_of_the_branch_costs_host_git_a_bounded_heap(pod: Pod) -> None:
    """The person pushes the session branch (``clauderon push``, or the pull request
    button) from their repository, where a sync brought the agent's two files of 400 MiB
    of zeros one byte apart as loose objects (a fetch of few objects unpacks them). The
    host's git packing them for the remote held both whole to look for a delta between
    them, as it had no bound on its heap: near a GiB of the host's memory for a push of
    1 MiB. It now runs with the heap of a host git reading an agent's objects, a file over
    32 MiB streamed (no delta looked for)."""
    await run(["sh", "-c", HALVES.replace("500 << 20", "400 << 20")], pod.work)
    commit = await run(["git", "rev-parse", "HEAD"], pod.work)
    await run(["chown", "-R", f"{AGENT_UID}:{AGENT_UID}", str(pod.work)], pod.work)
    user_git(pod.person, "fetch", "-q", str(pod.work), f"+{pod.branch}:{pod.branch}")
    with git_peak(AGENT_UID) as seen:
        pushed = await trio.to_thread.run_sync(lambda: publish.push_branch(
            pod.info, publish.Remote(url=URL, slug=None), pod.branch, proxy=pod.proxy,
            ca=pod.ca, force=False))
    assert max(seen) < 600 * MIB, f"host git grew to {max(seen) // MIB} MiB"
    assert pushed == commit
    assert await run(["git", "rev-parse", pod.branch], pod.bare) == commit




def fetched(proxy: Proxy, session_id: str) -> list[int]:
    """What the proxy relayed for each ``git-upload-pack`` request of the session's, ended
    (a listing of the refs, then the fetch whose answer is the pack)."""
    lines = [json.loads(x) for x in proxy.audit_path.read_text().splitlines()]
    return [x["bytes_out"] for x in lines if x["session"] == session_id
            and x["method"] == "POST" and x["path"].endswith("/git-upload-pack")
            and x.get("phase") != "open"]


async def test_a_pushed_branch_that_does_not_compress_is_fetched_no_further_than_its_budget(
        pod: Pod, proxy: Proxy) -> None:
    """48 MiB of random bytes on the remote's session branch (as the agent pushes them;
    here straight into the remote's repository), against a budget of 4 MiB: a pack as large
    as what it holds. The count refused it only once the fetch had written all of it into a
    shadow on the host's disk (a branch of GiBs on the remote, fetched whole at each try),
    where a Docker session's copy stops near the budget. The fetch stops there too now."""
    await run(["sh", "-c", "head -c $((48 << 20)) /dev/urandom > noise && git add noise && "
                           "git commit -qm noise"], pod.work)
    await run(["git", "push", "-q", str(pod.bare), f"HEAD:refs/heads/{pod.branch}"], pod.work)
    host = proxy.add_session("host")  # the host's fetch alone in the audit under this name

    def fetch() -> None:
        remotes.fetch_branch(pod.info, URL, pod.branch, proxy=proxy.url(*host), ca=pod.ca,
                             scratch=pod.scratch, max_bytes=4 * MIB)
    with pytest.raises(ClauderonError, match="max_sync_mib"):
        await trio.to_thread.run_sync(fetch)
    assert tip(pod, f"refs/heads/{pod.branch}") == tip(pod, "main")
    with trio.fail_after(30):  # the proxy writes each line once it has seen its request end
        while len(fetched(proxy, host[0])) < 2:
            await trio.sleep(0.01)
    relayed = max(fetched(proxy, host[0]))
    assert relayed < 40 * MIB, f"the host's fetch took {relayed / MIB:.0f} MiB"
