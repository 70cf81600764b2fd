"""The diff holds the agent still while host git walks its worktree (DESIGN.md,
"Containment": the host never walks an agent's tree by path while the agent can move it).

git finds a folder, then opens what is under it by name; an agent swapping the folder for a
symlink in between would steer git out of the worktree (``appliance/backends/docker_freeze.py``).
So the session's container is paused for the diff's read. These tests, on a real appliance
and a real container, show that the container is held during diffs, that concurrent
diffs share one hold and leave the container running, and that a pause a crash
left behind by a killed API is let go when the API starts again.

git's walk of the agent's tree is bounded in time only: a ``.gitignore`` the agent made a
FIFO holds it (as patterns that backtrack hold a core) until git's timeout, so diffs of one
session run one at a time, however many are asked for (a list scrolled past, a refresh):
what one agent can make the host do adds up to one such walk.
"""

from __future__ import annotations

import concurrent.futures
import errno
import os
import signal
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from tests.support.agent_app import create
from tests.support.agent_app import in_container as run_in
from tests.support.appliance import Appliance, wait_for

TICKER = "while :; do date +%s%N >> /workspace/.ticks; sleep 0.01; done"


def state(app: Appliance, s: dict[str, Any]) -> dict[str, Any]:
    [container] = app.containers(s["id"])
    container.reload()
    return dict(container.attrs["State"])


def probed(http: Any, s: dict[str, Any]) -> bool:
    """Whether the checkup's probe ran inside the container (its hook check has a verdict
    from inside; "unknown" when nothing could be run there)."""
    answer = http.get(f"/api/sessions/{s['id']}/health")
    assert answer.status_code == 200, answer.text
    checks = {c["name"]: c for c in answer.json()["checks"]}
    return bool(checks["hooks"]["verdict"] != "unknown")


def test_concurrent_diffs_hold_the_container_and_let_go_of_it(
        app: Appliance, repo: Path) -> None:
    s = create(app, repo, "still")
    [container] = app.containers(s["id"])
    container.exec_run(["sh", "-c", TICKER], user="1000:1000", detach=True)
    ticks = Path(s["worktree_path"]) / ".ticks"
    wait_for(lambda: ticks.exists() and ticks.read_text().count("\n") > 5, what="ticks")
    http = app.http(timeout=60)
    paused_seen: list[bool] = []

    def diff() -> int:
        answer = http.get(f"/api/sessions/{s['id']}/diff")
        assert answer.status_code == 200, answer.text
        assert ".ticks" in [f["path"] for f in answer.json()["files"]]
        return len(answer.json()["diff"])

    def watch() -> None:
        for _ in range(200):
            paused_seen.append(bool(state(app, s)["Paused"]))

    with concurrent.futures.ThreadPoolExecutor(13) as pool:
        watcher = pool.submit(watch)
        diffs = [pool.submit(diff) for _ in range(8)]
        # Commands run in the container meanwhile (the checkup's probe): each waits for
        # the hold to end instead of meeting the engine's refusal of a paused container.
        checkups = [pool.submit(probed, http, s) for _ in range(4)]
        sizes = [f.result() for f in diffs]
        watcher.result()
        assert [f.result() for f in checkups] == [True] * 4
    assert all(sizes)
    assert True in paused_seen, "the container was never seen paused during the diffs"
    after = state(app, s)
    assert after["Running"] and not after["Paused"]
    # The ticker went on after the last diff: the pause was undone.
    count = ticks.read_text().count("\n")
    wait_for(lambda: ticks.read_text().count("\n") > count + 5, what="the agent to run on")



def test_a_hold_left_behind_is_let_go_when_the_api_starts(app: Appliance, repo: Path) -> None:
    s = create(app, repo, "thawed")
    [container] = app.containers(s["id"])
    app.stop("api", signal.SIGKILL)
    container.pause()  # what an API killed in the middle of a diff leaves
    assert state(app, s)["Paused"]
    app.start("api")
    wait_for(lambda: not state(app, s)["Paused"], timeout=30, what="the API to let go")
    assert state(app, s)["Running"]
    # The reconciler took the held container for a running one: it neither restarted nor
    # recreated it (a live diff's hold must not be undone under it).
    assert app.wait_phase("thawed", "running")["backend_id"] == s["backend_id"]
    run_in(app, s, "touch /workspace/after-thaw")
    assert (Path(s["worktree_path"]) / "after-thaw").exists()
    answer = app.http().get(f"/api/sessions/{s['id']}/diff")
    assert answer.status_code == 200 and not state(app, s)["Paused"]


def test_a_command_waits_out_a_hold_it_did_not_make(app: Appliance, repo: Path) -> None:
    """A hold the API did not make (another appliance process, a person's `docker pause`):
    a command for the container waits until it ends, bounded, instead of failing."""
    s = create(app, repo, "waits")
    [container] = app.containers(s["id"])
    http = app.http(timeout=60)
    assert probed(http, s)  # control: a container not held runs the probe
    container.pause()
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(probed, http, s)
            # Refused at once, a probe would answer within this bound; it waits instead.
            concurrent.futures.wait([pending], timeout=5)
            assert not pending.done(), "the checkup answered while the container was paused"
            container.unpause()
            assert pending.result() is True
    finally:
        container.reload()
        if container.attrs["State"]["Paused"]:
            container.unpause()


#: The agent's trap: a .gitignore that is a FIFO (itself ignored, so git adds nothing of
#: it); host git reading the ignore files waits on it until the test writes it.
TRAP = ("mkdir sub && touch sub/a && echo sub/.gitignore > .gitignore && "
        "mkfifo sub/.gitignore")


def walking(workspace: Path) -> int:
    """How many host git processes walk ``workspace`` for its untracked files now."""
    count = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"git" in argv[0] and (b"ls-files" in argv or b"add" in argv) and \
                f"GIT_WORK_TREE={workspace}".encode() in env:
            count += 1
    return count


def let_go(fifo: Path) -> None:
    """Open ``fifo`` for writing and close it, when a reader waits on it: each reader
    waiting then reads an empty file."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # ENXIO: nobody reads it now
            raise


def test_diffs_of_one_session_walk_its_tree_one_at_a_time(app: Appliance, repo: Path) -> None:
    s = create(app, repo, "gitignore")
    workspace = Path(s["worktree_path"])
    # The agent's trap: a .gitignore that is a FIFO (itself ignored, so git adds nothing of
    # it); host git reading the ignore files waits on it until the test writes it.
    run_in(app, s, TRAP)
    http = app.http(timeout=300)

    def diff() -> list[str]:
        answer = http.get(f"/api/sessions/{s['id']}/diff")
        assert answer.status_code == 200, answer.text
        return sorted(f["path"] for f in answer.json()["files"])

    waits = "waits for the one under way"
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        diffs = [pool.submit(diff) for _ in range(3)]
        wait_for(lambda: walking(workspace) >= 2 or (
            app.log("api").count(waits) >= 2 and walking(workspace) == 1),
            what="the diffs to walk the tree, or to wait for the one that does")
        # Never two at once (a process list read while git starts may miss the one).
        walks = walking(workspace)
        assert walks <= 1, f"{walks} walks of one agent's tree"

        def in_turn() -> bool:
            let_go(workspace / "sub" / ".gitignore")  # the walk under way goes on
            return all(f.done() for f in diffs)

        wait_for(in_turn, timeout=120, what="each diff in turn")
        assert [f.result() for f in diffs] == [[".gitignore", "sub/a"]] * 3


@contextmanager
def held_read(app: Appliance, s: dict[str, Any]) -> Iterator[Callable[[], Any]]:
    """A diff of ``s`` the test holds open (host git waits on a FIFO .gitignore the agent
    made), once it walks the tree with the container held still; what is yielded lets the
    read go and returns its answer."""
    workspace = Path(s["worktree_path"])
    run_in(app, s, TRAP)
    http = app.http(timeout=300)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(http.get, f"/api/sessions/{s['id']}/diff")
        wait_for(lambda: walking(workspace) == 1, what="the diff to walk the tree")
        assert state(app, s)["Paused"]

        def release() -> Any:
            wait_for(lambda: (let_go(workspace / "sub" / ".gitignore"), pending.done())[1],
                     timeout=120, what="the diff to end")
            return pending.result()
        yield release


def test_a_read_whose_hold_was_undone_under_it_is_refused(app: Appliance, repo: Path) -> None:
    """The hold undone while git reads (a person's stop, `docker unpause` by anyone, a
    restart): the agent ran mid-read and could have swapped a folder for a symlink, so what
    git read is not given out as the tree; the read is refused and a new one is right."""
    s = create(app, repo, "moved")
    [container] = app.containers(s["id"])
    with held_read(app, s) as release:
        # Undone and done again from outside: the state at the read's end says paused, yet
        # the agent ran in between.
        container.unpause()
        wait_for(lambda: not state(app, s)["Paused"], what="the unpause")
        container.pause()
        wait_for(lambda: bool(state(app, s)["Paused"]), what="the pause")
        answer = release()
    assert answer.status_code == 409, answer.text
    assert "the container moved during the read" in answer.json()["error"]
    assert "try again" in answer.json()["error"]
    after = state(app, s)
    assert after["Running"] and not after["Paused"]
    # Asked again, with nothing moving it, the read is given.
    run_in(app, s, "rm sub/.gitignore")
    again = app.http(timeout=300).get(f"/api/sessions/{s['id']}/diff")
    assert again.status_code == 200, again.text


def test_a_stop_asked_during_a_read_waits_for_its_hold(app: Appliance, repo: Path) -> None:
    """A person's stop while git reads: the stop waits for the read's hold to end, then
    stops; the read is given (nothing ran under it) and the container ends stopped, neither
    paused nor running."""
    s = create(app, repo, "stopped")
    with held_read(app, s) as release:
        asked = app.http().post(f"/api/sessions/{s['id']}/stop", json={})
        assert asked.status_code in (200, 202), asked.text
        # The reconciler has the stop to do; it waits for the hold: the container stays
        # held while the read goes on, however long (the engine is asked, not a clock).
        wait_for(lambda: "waits for the read" in app.log("reconciler")
                 or not state(app, s)["Paused"], what="the stop to wait for the read's hold")
        assert state(app, s)["Paused"], "the stop undid the read's hold"
        answer = release()
    assert answer.status_code == 200, answer.text
    assert sorted(f["path"] for f in answer.json()["files"]) == [".gitignore", "sub/a"]
    app.wait_phase("stopped", "stopped")
    after = state(app, s)
    assert not after["Running"] and not after["Paused"], after


def test_a_container_running_before_its_session_says_so_is_held_for_a_read(
        app: Appliance, repo: Path) -> None:
    """A stopped session's container runs again before the reconciler records it running
    (a start: the container first, then the agent's boot, which the agent's own startup
    files run in; then the record). The diff took the session for stopped and walked the
    tree by path unheld while the agent ran."""
    s = create(app, repo, "unrecorded")
    [container] = app.containers(s["id"])
    asked = app.http().post(f"/api/sessions/{s['id']}/stop", json={})
    assert asked.status_code < 300, asked.text
    app.wait_phase(s["id"], "stopped")
    app.stop("reconciler")  # the start stays where the container runs, not yet recorded
    container.start()
    wait_for(lambda: state(app, s)["Running"] or None, what="the container to run")
    assert app.session(s["id"])["phase"] == "stopped"
    with held_read(app, s) as release:  # held_read asserts the container is paused
        answer = release()
    assert answer.status_code == 200, answer.text
    assert not state(app, s)["Paused"]


def test_a_session_being_made_again_is_not_read_while_its_new_container_runs(
        app: Appliance, repo: Path) -> None:
    """A recreate: the session records its old container, gone, while a new one runs and
    boots the agent (its own startup files among it). The hold asked for the recorded one,
    met "no such container", and the diff walked the tree unheld while the agent ran."""
    s = create(app, repo, "remade")
    app.stop("reconciler")  # the recreate stays where the new container runs
    with closing(sqlite3.connect(app.settings.db_path)) as db, db:
        db.execute("UPDATE sessions SET phase = 'creating', backend_id = ? WHERE id = ?",
                   ("0" * 64, s["id"]))
    assert state(app, s)["Running"]
    answer = app.http().get(f"/api/sessions/{s['id']}/diff")
    assert answer.status_code == 409, \
        f"the tree was read unheld while the session's container ran: {answer.status_code}"
    assert "being made" in answer.json()["error"], answer.text
    assert state(app, s)["Running"] and not state(app, s)["Paused"]
    # Its files are read meanwhile (never following a link the agent made).
    assert app.http().get(f"/api/sessions/{s['id']}/files").status_code == 200
