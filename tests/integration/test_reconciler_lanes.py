"""The hostile agent against the reconciler's other sessions, from inside a real session
container as uid 1000.

Bringing a branch in reads what the agent wrote (its objects), and the agent can make that
read wait: its branch's newest commit made a FIFO where its loose object should be (host
git waited for a writer as long as it is allowed, two minutes a process; such an object is
now refused before git runs), or its loose object held under a write lease the agent takes
again and again (every open of it by host git waits the kernel's ``lease-break-time``, 45
s). The sync then holds its place among the reconciler's actions, of which
``max_concurrent_ops`` run at once, and an agent that commits again when one fails holds it
for good. Every session's create, start, stop and delete queued behind it: a second session
on the same repository stood in ``creating`` until the hostile sync gave up. Syncs now wait
in a lane of their own.

The test narrows the reconciler to one action at a time (three hostile sessions fill the
default's three), so the one hostile sync is enough, and asks for the order only: the other
session is made and deleted while the hostile sync still waits on the leased object.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import user_git
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance, running, wait_for


@pytest.fixture
def narrow(tmp_path: Path, agent_image: str) -> Iterator[Appliance]:
    """API and reconciler (one action at a time) running the agent image."""
    with running(tmp_path / "home", "api", "reconciler", image=agent_image,
                 reconciler="max_concurrent_ops = 1\n") as app:
        yield app


def syncing(app: Appliance, session: dict[str, Any]) -> bool:
    """Whether a host git of the session's sync is running (its working folder is in the
    session's shadows)."""
    shadows = str(app.settings.shadows_dir / session["id"])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cwd.startswith(shadows) and b"rev-list" in argv:
            return True
    return False


def plant_fifo(app: Appliance, session: dict[str, Any]) -> None:
    """The branch's newest commit a FIFO where its loose object should be."""
    _, out = in_container(app, session, f"""
        set -e
        c=$(git commit-tree 'HEAD^{{tree}}' -p HEAD -m stuck)
        obj=.git/objects/$(echo $c | cut -c1-2)/$(echo $c | cut -c3-)
        rm -f "$obj" && mkfifo "$obj"
        echo "$c" > .git/refs/heads/{session['branch']}
        echo ok""")
    assert "ok" in out


#: The agent's holder of a write lease on a file: taken again once the kernel has broken
#: it (each open by another process waits for the break, ``lease-break-time``).
LEASE_HOLDER = """
import fcntl, os, signal, sys, time
signal.signal(signal.SIGIO, signal.SIG_IGN)
while True:
    fd = os.open(sys.argv[1], os.O_RDWR)
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
        while fcntl.fcntl(fd, fcntl.F_GETLEASE) == fcntl.F_WRLCK:
            time.sleep(0.05)
        time.sleep(50)
    except OSError:
        time.sleep(0.01)
    finally:
        os.close(fd)
"""


def plant_lease(app: Appliance, session: dict[str, Any]) -> None:
    """The branch's newest commit a loose object the agent holds under a write lease."""
    _, out = in_container(app, session, f"""
        set -e
        c=$(git commit-tree 'HEAD^{{tree}}' -p HEAD -m held)
        obj=.git/objects/$(echo $c | cut -c1-2)/$(echo $c | cut -c3-)
        chmod u+w "$obj"
        cat > /tmp/holder.py <<'EOF'
{LEASE_HOLDER}
EOF
        setsid python3 /tmp/holder.py "$obj" > /dev/null 2>&1 < /dev/null &
        echo $! > /tmp/holder.pid
        sleep 1
        echo "$c" > .git/refs/heads/{session['branch']}
        echo ok""")
    assert "ok" in out


def test_a_sync_held_by_a_leased_object_keeps_no_other_session_waiting(
        narrow: Appliance, repo: Path) -> None:
    app = narrow
    hostile = create(app, repo, "hostile")
    plant_lease(app, hostile)
    try:
        wait_for(lambda: syncing(app, hostile), what="the hostile session's sync to begin")
        other = create(app, repo, "other")
        assert syncing(app, hostile), "the hostile sync ended before the other session ran"
        app.cli("delete", "--force", "other")
        wait_for(lambda: not app.containers(other["id"]), what="the other session to go")
        wait_for(lambda: not Path(other["worktree_path"]).exists(),
                 what="the other session's workspace to go")
        assert syncing(app, hostile), "the hostile sync ended before the other session went"
        assert user_git(repo, "rev-parse", other["branch"])  # a delete keeps the branch
    finally:  # let the host git waiting on the object go
        in_container(app, hostile, "kill $(cat /tmp/holder.pid)")


def test_the_delete_of_a_session_whose_object_is_a_fifo_waits_on_nothing(
        narrow: Appliance, repo: Path) -> None:
    """The delete brings the branch in one last time, in the lane every create and delete
    shares, after the container is gone: no writer will ever come to the FIFO, and host git
    waited its whole timeout there while the next session's create queued. With the
    container gone nothing moves in the folder, so what is not a file among the objects is
    seen first, and the workspace is kept aside at once."""
    app = narrow
    hostile = create(app, repo, "hostile")
    app.stop("reconciler")  # its own syncs are not what this is about
    plant_fifo(app, hostile)
    app.cli("delete", "--force", "--no-wait", "hostile")
    app.start("reconciler")
    other = create(app, repo, "other")
    seen: list[dict[str, Any]] = []
    with closing(app.client().events(after=0)) as stream:
        for message in stream:
            if message is not None and message["type"] == "event" \
                    and message["event"]["session_id"] == hostile["id"]:
                seen.append(message["event"])
                if message["event"]["kind"] == "deleted":
                    break
    [kept] = [e["payload"] for e in seen if e["kind"] == "workspace_kept"]
    assert kept["path"] == str(app.settings.kept_dir / f"hostile-{hostile['id'][:8]}")
    assert "is not a regular file (other)" in kept["reason"], kept["reason"]
    assert user_git(repo, "rev-parse", hostile["branch"]) == user_git(repo, "rev-parse", "main")
    assert other["phase"] == "running"
