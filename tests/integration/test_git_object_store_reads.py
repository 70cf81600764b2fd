"""The hostile agent against what host git reads of its object store, from inside a real
session container as uid 1000.

The host brings the session branch in (and reads the diff and the timeline's commits)
through a shadow git directory whose ``objects/info/alternates`` names the agent's
``.git/objects``. git reads every alternate's own ``info/alternates`` (and its
``info/commit-graphs/``) with no bound on size and blocking on a FIFO: a file the agent
writes. Made a link to ``/dev/zero``, the reconciler's host git reads it into memory until
the host runs out (``fatal: Out of memory, realloc failed`` on a machine with a limit; the
OOM killer's choice on one without); made a FIFO, host git waits on it for as long as the
agent likes (each sync holds one of the reconciler's three action slots for two minutes).

The test plays the FIFO, so it can count what the host read and keep the amount bounded:
the agent moves its branch to a new commit, makes its alternates a FIFO and streams 256 MiB
into it. The host must never open it (nothing of the agent's ``objects/info`` is its
configuration), and the commit must still come in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import user_git
from tests.support.agent_app import as_agent, create, in_container
from tests.support.appliance import Appliance, wait_for
from tests.support.peaks import git_peak

STREAM_MIB = 256
MIB = 1 << 20


def test_host_git_never_reads_the_agents_alternates(app: Appliance, repo: Path) -> None:
    s = create(app, repo, "stream")
    ref = f".git/refs/heads/{s['branch']}"
    alternates = ".git/objects/info/alternates"
    _, out = in_container(app, s, f"""
        set -e
        c=$(git commit-tree 'HEAD^{{tree}}' -p HEAD -m streamed)
        cp {alternates} /tmp/alternates
        rm {alternates} && mkfifo {alternates}
        echo "$c" > {ref}
        echo "commit=$c"
        set +e
        # Opening blocks until a reader opens the FIFO; 0 once the reader took every byte.
        timeout 20 sh -c 'head -c $(({STREAM_MIB} << 20)) /dev/zero > {alternates}'
        echo "rc=$?"
        # Let any git still waiting on the FIFO go (an empty read), then put it back.
        for i in 1 2 3; do timeout 2 sh -c ': > {alternates}'; done
        rm {alternates} && cp /tmp/alternates {alternates}
        """)
    commit = out.split("commit=")[1].split()[0]
    rc = out.split("rc=")[1].split()[0]
    assert rc == "124", (
        f"host git opened the agent's objects/info/alternates and read "
        f"{'all ' + str(STREAM_MIB) + ' MiB' if rc == '0' else 'from it'} (head exited {rc})")
    wait_for(lambda: user_git(repo, "rev-parse", s["branch"]) == commit,
             timeout=60, what=f"{s['branch']} to reach {commit[:8]}")


def test_an_agents_fifo_object_holds_its_own_timeline_only(app: Appliance, repo: Path) -> None:
    """The agent makes its branch's newest commit a FIFO where its loose object should be
    (a file it writes). Host git opening it waits for a writer; the timeline's git runs
    under the API's one limiter of two readers that every session's transcript and timeline
    share, so a person with the hostile session open in two places (two tabs, the web UI and
    the TUI) left every other session's conversation unread for two minutes at a time. The
    timeline's log now has a deadline of its own: the page comes back (the commits noted as
    not shown) where it used to outlast the client's patience."""
    s = create(app, repo, "stuck")
    ref = f".git/refs/heads/{s['branch']}"
    _, out = in_container(app, s, f"""
        set -e
        c=$(git commit-tree 'HEAD^{{tree}}' -p HEAD -m stuck)
        obj=.git/objects/$(echo $c | cut -c1-2)/$(echo $c | cut -c3-)
        rm -f "$obj" && mkfifo "$obj"
        echo "$c" > {ref}
        echo ok""")
    assert "ok" in out
    try:
        page = app.client().get(f"/api/sessions/{s['id']}/timeline")
    finally:  # let any git still waiting on the FIFO go
        in_container(app, s, "for f in .git/objects/*/*; do [ -p \"$f\" ] && "
                             "for i in 1 2 3 4; do timeout 1 sh -c \": > $f\"; done; done; true")
    notes = " ".join(str(n) for n in page.get("notes", []))
    assert "not shown" in notes, page


def test_an_object_that_inflates_costs_host_git_a_bounded_heap(app: Appliance,
                                                                repo: Path) -> None:
    """A commit whose message is 1 GiB of one letter is 1 MiB as an object: the agent
    writes it, cheaply, and moves its branch to it. Host git holds a commit whole when it
    reads it: the sync's count of what it would bring in (``rev-list``) took 1 GiB and the
    timeline's ``log`` twice that, and a message of 32 GiB is an object of 32 MiB. Each
    runs with a bounded heap: the sync fails saying so (nothing comes in), the timeline
    shows no commit of the session's, and the host's memory is not taken."""
    s = create(app, repo, "inflate")
    app.stop("reconciler")  # the peak is host git's, not the agent's git writing the object
    _, out = in_container(app, s, f"""
        set -e
        who='a <a@b> 1 +0000'
        (printf 'tree %s\\nparent %s\\nauthor %s\\ncommitter %s\\n\\n' \\
           $(git rev-parse 'HEAD^{{tree}}') $(git rev-parse HEAD) "$who" "$who"
         head -c $((1 << 30)) /dev/zero | tr '\\0' m) > /tmp/commit
        c=$(git hash-object -t commit -w --literally /tmp/commit)
        rm /tmp/commit
        echo "$c" > .git/refs/heads/{s['branch']}
        echo "commit=$c"
        """)
    with git_peak() as seen:
        app.start("reconciler")
        reason = wait_for(lambda: next((e["payload"]["reason"] for e in app.client().get(
            f"/api/sessions/{s['id']}/events")["events"] if e["kind"] == "branch_sync_failed"),
            None), timeout=60, what="the sync to fail")
        page = app.client().get(f"/api/sessions/{s['id']}/timeline")
    assert max(seen) < 600 * MIB, f"host git grew to {max(seen) // MIB} MiB"
    assert "Out of memory" in reason, reason
    commit = out.split("commit=")[1].split()[0]
    assert commit not in str(page)
    assert user_git(repo, "rev-parse", s["branch"]) == user_git(repo, "rev-parse", "main")


def test_the_sync_follows_no_link_out_of_the_agents_objects(
        app: Appliance, repo: Path, repo_factory: Callable[..., Path]) -> None:
    """The person keeps another repository on the same host, never mounted into any
    container, and a commit of it is known (a commit id is no secret: CI logs, links).
    The agent makes its ``.git/objects/pack`` a link to that repository's packs and points
    its branch at the commit. Host git, reading the agent's objects through a link of ours
    to its ``pack``, followed the agent's link too: the sync brought the private commit
    into the person's repository, whose objects every session reads live, and the agent
    read the secret out of it. The host now reads a copy of links of its own, each to a
    regular file it found in a real folder: the link is refused, the sync fails saying so,
    and nothing comes in."""
    private = repo_factory("private", files={"secret.txt": "the person's secret\n"})
    user_git(private, "gc", "--quiet")
    commit = user_git(private, "rev-parse", "HEAD")
    s = create(app, repo, "reach")
    as_agent(app, s, f"""
        set -e
        mv .git/objects/pack /tmp/own-pack
        ln -s {private}/.git/objects/pack .git/objects/pack
        echo {commit} > .git/refs/heads/{s['branch']}
        """)

    def outcome() -> str | None:
        if user_git(repo, "rev-parse", s["branch"]) == commit:
            return "brought in"
        return next((e["payload"]["reason"] for e in app.client().get(
            f"/api/sessions/{s['id']}/events")["events"] if e["kind"] == "branch_sync_failed"),
            None)

    said = wait_for(outcome, timeout=60, what="the sync to end")
    read = as_agent(app, s, f"git cat-file -p {commit}:secret.txt 2>&1 || true")
    assert "the person's secret" not in read, f"the agent read another repository's file: {read!r}"
    assert said != "brought in", "the sync brought in another repository's commit"
    assert "link" in said, said


def test_a_sync_within_its_budget_costs_host_git_a_bounded_heap(app: Appliance,
                                                                 repo: Path) -> None:
    """Two files of 500 MiB of zeros, one byte apart: 1000 MiB, within the 1024 MiB one
    sync brings in, a MiB as objects. The sync's fetch ran with no bound on its heap, and
    the git packing the objects for the person's repository held both files whole to look
    for a delta between them: 1.1 GiB of the host's memory for one sync, what any agent
    could have it take again with every commit. The fetch now runs with the heap of every
    host git that reads an agent's objects, and both its sides stream a file larger than
    32 MiB (neither holding it whole nor looking for its deltas): the commit comes in and
    no git took 600 MiB."""
    s = create(app, repo, "halves")
    app.stop("reconciler")  # the peak is host git's, not the agent's git writing the objects
    out = as_agent(app, s, """
        set -e
        head -c $((500 << 20)) /dev/zero > a
        (head -c $((500 << 20)) /dev/zero; echo x) > b
        git add a b && git commit -qm halves
        echo "commit=$(git rev-parse HEAD)"
        """)
    commit = out.split("commit=")[1].split()[0]
    with git_peak() as seen:
        app.start("reconciler")
        wait_for(lambda: user_git(repo, "rev-parse", s["branch"]) == commit,
                 timeout=120, what=f"{s['branch']} to reach {commit[:8]}")
    assert max(seen) < 600 * MIB, f"host git grew to {max(seen) // MIB} MiB"
