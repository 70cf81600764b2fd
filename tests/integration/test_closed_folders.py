"""A workspace whose folders the agent closed to everyone is still removed (a delete, a
rebuild, a kept copy's cleanup: ``appliance.safefs.remove_tree``).

On a workstation the appliance runs as the person, who is also the uid the agent's
container runs as. The agent, from inside its real container, makes folders nobody may
read or enter (``chmod 000``), nested, with a link out of the workspace inside one: ``rm``
as their owner stops at the first ("Permission denied"), and the session could never be
deleted. The removal runs here as that owner, in a process of its own, as the appliance
would; whatever the links name outside stays as it was.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import docker
import pytest

from appliance import safefs
from tests.conftest import AGENT_UID, make_traversable
from tests.support.engine import BASE_IMAGE

pytestmark = pytest.mark.docker

#: What the agent runs in its workspace: closed folders three deep, files and links inside.
CLOSE = """
set -eu
cd /workspace
mkdir -p a/b/c d
echo secret-of-the-agent > a/b/c/f
ln -s /outside a/b/out
ln -s /outside/keep a/b/c/keep-link
chmod 000 a/b/c a/b a d
"""

def remove_as_owner(path: Path) -> int:
    """``safefs.remove_tree(path)`` in a child process that runs as the agent's uid (as
    the appliance does on a workstation); its exit status (0: removed)."""
    pid = os.fork()
    if pid == 0:  # the child: drop to the owner, remove, report, never return
        status = 1
        try:
            os.setgroups([])
            os.setgid(AGENT_UID)
            os.setuid(AGENT_UID)
            safefs.remove_tree(path)
            status = 0
        except BaseException as exc:  # said on stderr, which the test's report shows
            os.write(2, f"{exc!r}\n".encode())
        finally:
            os._exit(status)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_folders_the_agent_closed_are_removed_by_their_owner(tmp_path: Path) -> None:
    # The person's folder of workspaces, and a folder of theirs outside it.
    workspaces, outside = tmp_path / "workspaces", tmp_path / "outside"
    workspace = workspaces / "session"
    workspace.mkdir(parents=True)
    outside.mkdir()
    os.chown(workspaces, AGENT_UID, AGENT_UID)
    (outside / "keep").write_text("the person's\n")
    os.chmod(outside / "keep", 0o640)
    os.chown(workspace, AGENT_UID, AGENT_UID)
    make_traversable(tmp_path)
    client = docker.from_env(timeout=180)
    out = client.containers.run(
        BASE_IMAGE, ["sh", "-c", CLOSE], user=f"{AGENT_UID}:{AGENT_UID}", remove=True,
        network_mode="none", cap_drop=["ALL"], security_opt=["no-new-privileges"],
        volumes={str(workspace): {"bind": "/workspace", "mode": "rw"},
                 str(outside): {"bind": "/outside", "mode": "ro"}})
    assert out == b""
    assert os.stat(workspace / "a").st_mode & 0o777 == 0
    # What the owner's plain rm does with it: stops at the closed folders.
    probe = subprocess.run(["rm", "-rf", "--", str(workspace / "d")], user=AGENT_UID,
                           group=AGENT_UID, extra_groups=[], capture_output=True, text=True)
    assert probe.returncode == 0  # an empty closed folder goes, a full one does not:
    denied = subprocess.run(["rm", "-rf", "--", str(workspace / "a")], user=AGENT_UID,
                            group=AGENT_UID, extra_groups=[], capture_output=True, text=True)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    assert remove_as_owner(workspace) == 0
    assert not os.path.lexists(workspace)
    assert os.listdir(workspaces) == []
    assert (outside / "keep").read_text() == "the person's\n"
    assert os.stat(outside / "keep").st_mode & 0o777 == 0o640
    assert os.stat(outside).st_mode & 0o777 == 0o755
