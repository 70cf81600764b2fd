"""The diff of a Kubernetes session whose volume this host sees (``volume_root``), against
the hostile agent (DESIGN.md, "Containment", invariant 5).

Pods run on the FAKE API server (tests/fakes/kube_api.py) as containers of the real agent
image on the real Docker engine, their volumes folders of this host. A pod cannot be held
still, so host git must not walk its work tree by path (it did, and put the owner's file in
the diff): the agent (uid 1000, in its pod) swaps a folder of its work tree for a symlink to
a private folder of the repository's owner, as fast as it can, while the person asks for
the diff again and again. The diff is of the branch as fetched; no byte of that folder
comes back.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.test_files_containment import SWAPPER
from tests.support.appliance import wait_for
from tests.support.hostile import AGENT, agent
from tests.support.kube import NAMESPACE, Kube, kube_appliance

pytestmark = pytest.mark.docker

DIFFS = 150  # reads of the diff under the swap


@pytest.fixture
def kube(tmp_path: Path, agent_image: str) -> Iterator[Kube]:
    with kube_appliance(tmp_path, image=agent_image, agents=False) as k:
        yield k


def test_a_folder_swapped_for_a_symlink_never_steers_the_diff_out(kube: Kube,
                                                                    tmp_path: Path) -> None:
    canary = f"CANARY-{uuid.uuid4().hex}"
    private = tmp_path / "private"  # the repository owner's, out of the agent's reach
    private.mkdir(mode=0o700)
    (private / "canary.txt").write_text(canary + "\n")
    owner = kube.repo.stat()
    for path in (private, private / "canary.txt"):
        os.chown(path, owner.st_uid, owner.st_gid)
    s = kube.create("kswap")
    assert s["phase"] == "running", s
    workspace = kube.state / "volumes" / NAMESPACE / "clauderon-kswap" / "workspace"
    assert (workspace / "README.md").is_file()
    container = docker.from_env(timeout=180).containers.get(kube.container("clauderon-kswap"))
    agent(container, "cd /workspace && mkdir swap && echo decoy > swap/canary.txt")
    spec = "\t".join(("/workspace/swap", "/workspace/swap-alt", str(private),
                      f"/proc/self/root{private}"))
    swapped: list[Any] = []
    swapper = threading.Thread(target=lambda: swapped.append(container.exec_run(
        ["perl", "-e", SWAPPER, spec], user=AGENT)), daemon=True)
    swapper.start()
    wait_for((workspace / ".swapping").exists, timeout=30, what="the swapper")
    http = kube.app.http(timeout=60)
    codes = []
    try:
        for _ in range(DIFFS):
            d = http.get("/api/sessions/kswap/diff")
            assert canary.encode() not in d.content, d.text
            assert d.status_code == 400 or d.json()["uncommitted"] is None, d.text
            codes.append(d.status_code)
    finally:
        (workspace / ".stop").touch()
        swapper.join(60)
    assert swapped and swapped[0].exit_code == 0, swapped
    assert int(swapped[0].output.decode().strip()) >= 100  # the swap really raced the reads
    assert set(codes) <= {200, 400} and 200 in codes, codes
