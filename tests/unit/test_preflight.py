"""The appliance container's start-time verdicts (appliance/preflight/verdicts.py), pure.

The same checks run for real against the engine in tests/e2e/test_appliance_image.py (a
missing socket, a data folder of another user, repositories at another path).
"""

from __future__ import annotations

import dataclasses

from appliance.preflight.probe import own_container_id
from appliance.preflight.verdicts import (
    Facts,
    Mount,
    capabilities_from_status,
    covering,
    host_path,
    pick_iptables,
    problems,
)

SOCK = "unix:///var/run/docker.sock"
GOOD = Facts(
    uid=0, capabilities=frozenset({"NET_ADMIN", "NET_RAW"}), docker_host=SOCK,
    socket_kind="socket", engine_error=None, network_mode="host",
    mounts=(Mount(kind="bind", source="/var/run/docker.sock",
                  destination="/var/run/docker.sock", is_dir=False),
            Mount(kind="bind", source="/srv/clauderon", destination="/srv/clauderon"),
            Mount(kind="bind", source="/home/me/src", destination="/home/me/src")),
    home="/srv/clauderon", home_owner=0, repos=("/home/me/src",),
)


def test_a_good_deployment_has_no_problem() -> None:
    assert problems(GOOD) == []
    # The socket may come from another host path: it is never handed to the engine.
    moved = dataclasses.replace(GOOD, mounts=(
        Mount(kind="bind", source="/run/docker.sock", destination="/var/run/docker.sock",
              is_dir=False), *GOOD.mounts[1:]))
    assert problems(moved) == []
    # The data folder may be a subfolder of a same-path mount, not made yet.
    nested = dataclasses.replace(GOOD, home="/home/me/src/.clauderon", home_owner=None)
    assert problems(nested) == []


def test_each_mistake_is_named_with_its_fix() -> None:
    cases = {
        "uid": (dataclasses.replace(GOOD, uid=1000), "remove `user:`"),
        "caps": (dataclasses.replace(GOOD, capabilities=frozenset({"NET_RAW"})),
                 "cap_add: [NET_ADMIN, NET_RAW]"),
        "bridge": (dataclasses.replace(GOOD, network_mode="bridge"), "network_mode: host"),
        "socket": (dataclasses.replace(GOOD, socket_kind="missing", mounts=None),
                   "-v /var/run/docker.sock:/var/run/docker.sock"),
        "dir": (dataclasses.replace(GOOD, socket_kind="directory", mounts=None),
                "Docker made an empty folder"),
        "remote": (dataclasses.replace(GOOD, docker_host="tcp://10.0.0.2:2375",
                                       socket_kind="remote", mounts=None), "not a Unix socket"),
        "dead": (dataclasses.replace(GOOD, engine_error="connection refused", mounts=None),
                 "is dockerd running"),
        "owner": (dataclasses.replace(GOOD, home_owner=1000),
                  "chown -R root:root /srv/clauderon"),
    }
    for name, (facts, fix) in cases.items():
        found = problems(facts)
        assert len(found) == 1, (name, found)
        assert fix in found[0], (name, found)


def test_folders_must_be_at_the_same_path_inside_and_out() -> None:
    moved_home = dataclasses.replace(GOOD, mounts=(
        GOOD.mounts[0], Mount(kind="bind", source="/srv/clauderon", destination="/data"),
        GOOD.mounts[2]), home="/data")
    [found] = problems(moved_home)
    assert "is the host's /srv/clauderon" in found and "CLAUDERON_HOME=/srv/clauderon" in found

    [found] = problems(dataclasses.replace(GOOD, mounts=GOOD.mounts[::2]))
    assert found.startswith("the data folder (CLAUDERON_HOME) /srv/clauderon is not mounted")

    volume = Mount(kind="volume", source="/var/lib/docker/volumes/x/_data",
                   destination="/srv/clauderon")
    [found] = problems(dataclasses.replace(GOOD, mounts=(GOOD.mounts[0], volume,
                                                         GOOD.mounts[2])))
    assert "is a Docker volume" in found

    # Repositories mounted the usual Docker way, at /src: one problem, with the fix.
    repos = Mount(kind="bind", source="/home/me/src", destination="/src")
    [found] = problems(dataclasses.replace(GOOD, mounts=(*GOOD.mounts[:2], repos),
                                           repos=("/src",)))
    assert "- /home/me/src:/home/me/src" in found and "CLAUDERON_REPOS=/home/me/src" in found
    # ... and without CLAUDERON_REPOS the folder mount alone is caught.
    [found] = problems(dataclasses.replace(GOOD, mounts=(*GOOD.mounts[:2], repos), repos=()))
    assert found.startswith("the host folder /home/me/src is mounted at /src")
    # A file mounted elsewhere (a certificate) is never given to the engine: fine.
    cert = Mount(kind="bind", source="/etc/ssl/box.pem", destination="/cert.pem", is_dir=False)
    assert problems(dataclasses.replace(GOOD, mounts=(*GOOD.mounts, cert))) == []
    # A repositories folder that is not mounted at all.
    [found] = problems(dataclasses.replace(GOOD, repos=("/home/me/other",)))
    assert "/home/me/other is not mounted from the host" in found


def test_every_problem_is_listed_at_once() -> None:
    bad = dataclasses.replace(GOOD, uid=1000, capabilities=frozenset(), network_mode="bridge",
                              home_owner=5)
    assert len(problems(bad)) == 4


def test_mount_arithmetic() -> None:
    mounts = (Mount(kind="bind", source="/a", destination="/x"),
              Mount(kind="bind", source="/b", destination="/x/y"))
    assert covering(mounts, "/x/y/z") == mounts[1]
    assert covering(mounts, "/x/yz") == mounts[0]
    assert covering(mounts, "/q") is None
    assert host_path(mounts[1], "/x/y/z/w") == "/b/z/w"
    assert host_path(mounts[0], "/x") == "/a"


def test_capabilities_and_container_id_are_read_from_proc() -> None:
    status = "Name:\tpython\nCapPrm:\t0\nCapEff:\t00000000a80435fb\n"
    assert capabilities_from_status(status) == {"NET_ADMIN", "NET_RAW"}
    assert capabilities_from_status("CapEff:\t00000000a80425fb\n") == {"NET_RAW"}
    assert capabilities_from_status("") == frozenset()
    cid = "d41e309b182143046adeed193ec4afdfe29b958d841582e0a178bdff962abb95"
    line = (f"612 590 254:0 /var/lib/docker/containers/{cid}/hostname /etc/hostname rw,"
            "relatime - ext4 /dev/vda rw\n")
    assert own_container_id("1 0 0:1 / / rw - overlay overlay rw\n" + line) == cid
    assert own_container_id("1 0 0:1 / / rw - ext4 /dev/vda rw\n") is None


def test_the_iptables_backend_follows_the_engines_rules() -> None:
    docker_rules = "-N DOCKER\n-N DOCKER-USER\n-A FORWARD -j DOCKER-USER\n"
    assert pick_iptables(legacy_rules=docker_rules, nft_rules="-P INPUT ACCEPT\n") == "legacy"
    assert pick_iptables(legacy_rules="", nft_rules=docker_rules) == "nft"
    assert pick_iptables(legacy_rules="", nft_rules="") == "nft"
