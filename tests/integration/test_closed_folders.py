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
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import docker
import pytest

from appliance import safefs
from appliance.errors import ClauderonError
from tests.conftest import AGENT_UID, make_traversable
from tests.support.appliance import wait_for
from tests.support.engine import AGENT_IMAGE, BASE_IMAGE

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
    return as_owner(lambda: (safefs.remove_tree(path), 0)[1])


def as_owner(work: Callable[[], int]) -> int:
    """``work()`` in a child process that runs as the agent's uid; the status it returns
    (1 when it raised)."""
    pid = os.fork()
    if pid == 0:  # the child: drop to the owner, work, report, never return
        status = 1
        try:
            os.setgroups([])
            os.setgid(AGENT_UID)
            os.setuid(AGENT_UID)
            status = work()
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
    client.close()
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



#: What the agent runs while its workspace is being removed: in a folder of it, a file and a
#: folder each swapped with a link to one of the owner's outside, without pause.
TOGGLE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
os.chdir("/workspace")
open(".toggling", "w").close()
while True:
    libc.renameat2(-100, b"a/f", -100, b"a/l", 2)
    libc.renameat2(-100, b"a/d", -100, b"a/m", 2)
"""


def _build_and_remove(workspace: Path, outside: Path, rounds: int) -> int:
    """As the owner, ``rounds`` times: the agent's folder ``a`` (a file, a folder, links
    out, and a closed folder that stops ``rm``) made and removed by ``safefs.remove_tree``;
    2 as soon as something outside changed mode, else 0."""
    for _ in range(rounds):
        a = workspace / "a"
        (a / "c").mkdir(parents=True)
        (a / "c" / "x").touch()
        (a / "d").mkdir()
        (a / "f").touch()
        os.symlink(outside / "keep", a / "l")
        os.symlink(outside / "dir", a / "m")
        os.chmod(a / "c", 0)
        for _ in range(100):  # rm meets what the agent swaps as it goes, and says so
            with suppress(ClauderonError):
                safefs.remove_tree(a)
        if (os.stat(outside / "keep").st_mode & 0o777, os.stat(outside / "dir").st_mode
                & 0o777) != (0o400, 0o500):
            return 2
    return 0


def test_a_file_or_folder_swapped_for_a_link_while_the_tree_is_opened(tmp_path: Path) -> None:
    """The agent's container still runs while a tree of its workspace goes: what opens
    its closed folders to their owner never follows a link put where a file or a folder
    stood a moment before (``chmod -R`` looked at the name, then changed it by name)."""
    workspace, outside = tmp_path / "workspace", tmp_path / "outside"
    workspace.mkdir()
    (outside / "dir").mkdir(parents=True)
    (outside / "keep").write_text("the person's\n")
    for each in (workspace, outside, outside / "dir", outside / "keep"):
        os.chown(each, AGENT_UID, AGENT_UID)
    os.chmod(outside / "keep", 0o400)
    os.chmod(outside / "dir", 0o500)
    make_traversable(tmp_path)
    client = docker.from_env(timeout=180)
    agent = client.containers.run(
        AGENT_IMAGE, ["python3", "-c", TOGGLE], user=f"{AGENT_UID}:{AGENT_UID}",
        detach=True, network_mode="none", cap_drop=["ALL"], entrypoint=[],
        security_opt=["no-new-privileges"],
        volumes={str(workspace): {"bind": "/workspace", "mode": "rw"}})
    try:
        wait_for((workspace / ".toggling").exists, what="the agent's swapping")
        changed = as_owner(lambda: _build_and_remove(workspace, outside, 3000))
        assert changed == 0, "the owner's file or folder outside was made theirs to write"
    finally:
        agent.remove(force=True)
        client.close()
