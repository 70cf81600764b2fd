"""Which existing containers count as locked down (adopted, started, left running) and what
the others lack, in words."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance.backends.base import LABEL_MOUNTS, Mount, WorkloadSpec
from appliance.backends.docker_spec import (
    Containment,
    containment_of,
    create_kwargs,
    entry_kwargs,
    lacks,
    mounts_label,
    networks,
    recorded_mounts,
)

NET = "clauderon-x"
SHARED = "nothing of the host's or another container's processes, IPC, hostname or users"
WANT = Containment(network=NET, pids_limit=512)
OURS = [
    {"Type": "bind", "Source": "/srv/worktrees/s1", "Destination": "/workspace", "RW": True},
    {"Type": "bind", "Source": "/srv/worktrees/s1-lib", "Destination": "/workspace/lib",
     "RW": True},
    {"Type": "bind", "Source": "/srv/repo/.git/objects", "Destination": "/srv/repo/.git/objects",
     "RW": False},
    # An alternate the repository borrows from, named as its owner chose.
    {"Type": "bind", "Source": "/srv/cache/shared-store", "Destination": "/srv/cache/shared-store",
     "RW": False},
    {"Type": "bind", "Source": "/srv/uploads/s1", "Destination": "/workspace-uploads",
     "RW": False},
    {"Type": "bind", "Source": "/srv/homes/s1", "Destination": "/home/agent", "RW": True},
    {"Type": "bind", "Source": "/srv/ca.pem", "Destination": "/etc/clauderon/proxy-ca.pem",
     "RW": False},
    # An image's VOLUME: the engine's own, no host folder.
    {"Type": "volume", "Source": "/var/lib/docker/volumes/x/_data", "Destination": "/data",
     "RW": True},
]


def attrs(*, user: str = "1000:1000", mounts: list[dict[str, Any]] | None = None,
          **host: Any) -> dict[str, Any]:
    base = {"NetworkMode": NET, "CapDrop": ["ALL"], "CapAdd": None,
            "SecurityOpt": ["no-new-privileges"], "Privileged": False, "PidMode": "",
            "IpcMode": "private", "UTSMode": "", "UsernsMode": "", "Devices": [],
            "PidsLimit": 512,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "2"}}}
    return {"HostConfig": {**base, **host}, "Config": {"User": user},
            "Mounts": OURS if mounts is None else mounts}


def test_on_the_network_alone_without_privileges() -> None:
    assert lacks(attrs(), WANT) == []
    for opts in (["no-new-privileges:true"], ["no-new-privileges=true"],
                 ["no-new-privileges=1"], ["no-new-privileges=false", "no-new-privileges"]):
        assert lacks(attrs(SecurityOpt=opts), WANT) == [], opts
    # The engine's own json-file options (its daemon.json's log-opts) join ours.
    assert lacks(attrs(LogConfig={"Type": "json-file", "Config": {
        "max-size": "10m", "max-file": "2", "compress": "true", "mode": "non-blocking"}}),
                 WANT) == []
    assert lacks(attrs(NetworkMode="none"), Containment(network=None, pids_limit=512)) == []
    # Without the spec's own bound at hand, any bound will do.
    assert lacks(attrs(PidsLimit=64), Containment(network=NET)) == []


@pytest.mark.parametrize(("container", "want", "lacking"), [
    (attrs(NetworkMode="default"), WANT, "the network clauderon-x alone"),
    (attrs(NetworkMode="bridge"), WANT, "the network clauderon-x alone"),
    (attrs(), Containment(network="clauderon-y", pids_limit=512),
     "the network clauderon-y alone"),
    (attrs(), Containment(network=None, pids_limit=512), "the network none alone"),
    (attrs(NetworkMode="host"), WANT, "the network clauderon-x alone"),
    # Privileged ignores the dropped capabilities: every one, every device.
    (attrs(Privileged=True), WANT, "no privileged mode"),
    (attrs(CapDrop=None), WANT, "every capability dropped"),
    (attrs(CapDrop=["NET_RAW"]), WANT, "every capability dropped"),
    (attrs(CapAdd=["SYS_ADMIN"]), WANT, "no capability added"),
    (attrs(SecurityOpt=None), WANT, "no new privileges"),
    (attrs(SecurityOpt=["no-new-privileges:false"]), WANT, "no new privileges"),
    # The engine reads the option's value as a boolean, the last one given winning.
    (attrs(SecurityOpt=["no-new-privileges=false"]), WANT, "no new privileges"),
    (attrs(SecurityOpt=["no-new-privileges:0"]), WANT, "no new privileges"),
    (attrs(SecurityOpt=["no-new-privileges", "no-new-privileges=f"]), WANT,
     "no new privileges"),
    (attrs(SecurityOpt=["no-new-privileges-please"]), WANT, "no new privileges"),
    (attrs(SecurityOpt=["no-new-privileges", "seccomp=unconfined"]), WANT,
     "seccomp and AppArmor confining it"),
    (attrs(SecurityOpt=["no-new-privileges", "apparmor:unconfined"]), WANT,
     "seccomp and AppArmor confining it"),
    (attrs(PidMode="host"), WANT, SHARED),
    (attrs(IpcMode="host"), WANT, SHARED),
    (attrs(UTSMode="host"), WANT, SHARED),
    (attrs(UsernsMode="host"), WANT, SHARED),
    # A neighbour's namespaces: its processes to see and signal, its shared memory.
    (attrs(PidMode="container:0123abcd"), WANT, SHARED),
    (attrs(IpcMode="container:0123abcd"), WANT, SHARED),
    (attrs(Devices=[{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda",
                     "CgroupPermissions": "rwm"}]), WANT, "no host device"),
    (attrs(PidsLimit=None), WANT, "a bound on its processes (512)"),
    (attrs(PidsLimit=0), Containment(network=NET), "a bound on its processes (any)"),
    (attrs(PidsLimit=4096), WANT, "a bound on its processes (512)"),
    (attrs(user=""), WANT, "its agent's user (not root)"),
    (attrs(user="0:0"), WANT, "its agent's user (not root)"),
    (attrs(user="root"), WANT, "its agent's user (not root)"),
    (attrs(mounts=[*OURS, {"Type": "bind", "Source": "/var/run/docker.sock",
                            "Destination": "/var/run/docker.sock", "RW": True}]), WANT,
     "no host folder but its own"),
    # Read-only at its own path is a borrowed object folder's form, never a socket's (it
    # still connects) or the system's folders.
    (attrs(mounts=[*OURS, {"Type": "bind", "Source": "/var/run/docker.sock",
                            "Destination": "/var/run/docker.sock", "RW": False}]), WANT,
     "no host folder but its own"),
    (attrs(mounts=[*OURS, {"Type": "bind", "Source": "/srv/engine.sock",
                            "Destination": "/srv/engine.sock", "RW": False}]), WANT,
     "no host folder but its own"),
    (attrs(mounts=[*OURS, {"Type": "bind", "Source": "/etc", "Destination": "/etc",
                            "RW": False}]), WANT, "no host folder but its own"),
    (attrs(mounts=[*OURS, {"Type": "bind", "Source": "/var/lib/docker/volumes",
                            "Destination": "/var/lib/docker/volumes", "RW": False}]), WANT,
     "no host folder but its own"),
    (attrs(mounts=[*OURS, {"Type": "bind", "Source": "/proc/1", "Destination": "/proc/1",
                            "RW": False}]), WANT, "no host folder but its own"),
    (attrs(mounts=[*OURS, {"Type": "bind", "Source": "/srv/shared", "Destination": "/srv/shared",
                            "RW": True}]), WANT, "no host folder but its own"),
    (attrs(mounts=[{"Type": "bind", "Source": "/", "Destination": "/workspace",
                    "RW": True}]), WANT, "no host folder but its own"),
    (attrs(mounts=[{"Type": "bind", "Source": "/", "Destination": "/host", "RW": False}]),
     WANT, "no host folder but its own"),
    # The uploads and the CA are read-only.
    (attrs(mounts=[{"Type": "bind", "Source": "/srv/ca.pem",
                    "Destination": "/etc/clauderon/proxy-ca.pem", "RW": True}]), WANT,
     "no host folder but its own"),
    # A terminal log without a bound (the engine's default) grows the disk without end.
    (attrs(LogConfig={"Type": "json-file", "Config": {}}), WANT,
     "its terminal's log bounded"),
    (attrs(LogConfig=None), WANT, "its terminal's log bounded"),
    (attrs(LogConfig={"Type": "json-file", "Config": {"max-size": "10m"}}), WANT,
     "its terminal's log bounded"),
    (attrs(LogConfig={"Type": "local", "Config": {"max-size": "10m", "max-file": "2"}}),
     WANT, "its terminal's log bounded"),
])
def test_anything_less_is_not(container: dict[str, Any], want: Containment,
                              lacking: str) -> None:
    assert lacks(container, want) == [lacking]


def on(*names: str) -> dict[str, Any]:
    """A container made on ``NET`` and now on the networks ``names`` (an inspection's or a
    listing's ``NetworkSettings``)."""
    return {**attrs(), "NetworkSettings": {"Networks": {n: {} for n in names}}}


@pytest.mark.parametrize(("container", "want", "lacking"), [
    (on(NET), WANT, []),
    (on(), WANT, []),  # a listing of a stopped one: none (its mode says which)
    (on(NET, "bridge"), WANT, ["the network clauderon-x alone"]),
    (on(NET, "someone-elses"), WANT, ["the network clauderon-x alone"]),
    (on("bridge"), WANT, ["the network clauderon-x alone"]),
    ({**on("none"), "HostConfig": {**attrs()["HostConfig"], "NetworkMode": "none"}},
     Containment(network=None, pids_limit=512), []),
])
def test_a_network_joined_after_it_was_made_is_read_from_its_settings(
        container: dict[str, Any], want: Containment, lacking: list[str]) -> None:
    """``docker network connect`` changes no ``NetworkMode``; the settings show the join."""
    assert lacks(container, want) == lacking
    assert networks(container) == frozenset(container["NetworkSettings"]["Networks"])


def labelled(record: str, mounts: list[dict[str, Any]] = OURS) -> dict[str, Any]:
    """A container whose label records ``record`` as what it was made with."""
    return {**attrs(mounts=mounts), "Config": {"User": "1000:1000",
                                               "Labels": {LABEL_MOUNTS: record}}}


RECORD = json.dumps([[m["Source"], m["Destination"], not m["RW"]]
                     for m in OURS if m["Type"] == "bind"])
THEIRS = {"Type": "bind", "Source": "/srv/worktrees/s2", "Destination": "/workspace/s2",
          "RW": True}


@pytest.mark.parametrize(("container", "lacking"), [
    (labelled(RECORD), []),
    # Another session's worktree: a session's shape, not what this one was made with.
    (labelled(RECORD, [*OURS, THEIRS]), ["no host folder but its own"]),
    # Its own worktree, writable where it was made read-only, or one of its folders gone.
    (labelled(RECORD, [{**m, "RW": False} if m["Destination"] == "/workspace" else m
                       for m in OURS]), ["no host folder but its own"]),
    (labelled(RECORD, OURS[1:]), ["no host folder but its own"]),
    (labelled("not json"), ["no host folder but its own"]),
    (labelled("[[1]]"), ["no host folder but its own"]),
    # An older version's, without the label: its shape alone.
    (attrs(mounts=[*OURS, THEIRS]), []),
])
def test_a_container_made_with_a_record_of_its_mounts_has_those_exactly(
        container: dict[str, Any], lacking: list[str]) -> None:
    assert lacks(container, WANT) == lacking


def test_the_record_is_what_the_spec_mounts() -> None:
    s = spec(mounts=(Mount(source="/srv/worktrees/s1/", target="/workspace"),
                     Mount(source="/srv/homes/s1", target="/home/agent")))
    made = {"Config": {"Labels": create_kwargs(s)["labels"]}}
    assert recorded_mounts(made) == {("/srv/worktrees/s1", "/workspace", False),
                                     ("/srv/homes/s1", "/home/agent", False)}
    assert create_kwargs(s)["labels"][LABEL_MOUNTS] == mounts_label(s)


def test_nothing_at_all_lacks_everything() -> None:
    assert len(lacks({}, WANT)) == 6


def spec(**kw: Any) -> WorkloadSpec:
    return WorkloadSpec(**{
        "session_id": "s1", "name": "s1", "image": "i", "labels": {}, "env": {},
        "mounts": (Mount(source="/srv/worktrees/s1", target="/workspace"),),
        "workdir": "/workspace", "user": "1000:1000", "network": NET, "pids_limit": 512,
        **kw})


def test_with_the_spec_at_hand_it_is_the_specs() -> None:
    mine = [OURS[0]]
    assert lacks(attrs(mounts=mine), containment_of(spec())) == []
    assert lacks(attrs(mounts=mine, CapAdd=["NET_BIND_SERVICE"]),
                 containment_of(spec(cap_add=("NET_BIND_SERVICE",)))) == []
    # Another session's worktree is a place of ours, not this one's.
    other = [{**OURS[0], "Source": "/srv/worktrees/s2"}]
    assert lacks(attrs(mounts=other), containment_of(spec())) == [
        "no host folder but its own"]
    assert lacks(attrs(mounts=mine, user="1001:1001"), containment_of(spec())) == [
        "its agent's user (1000:1000)"]


@pytest.mark.parametrize("objects", [
    "/root/src/app/.git/objects", "/run/media/person/disk/app/.git/objects",
    "/usr/local/src/app/.git/objects", "/etc/.git/objects", "/srv/git/app.git/objects",
    "/home/person/app/.git/objects", "/srv/git/shared-alternates"])
def test_a_repositorys_objects_borrowed_from_anywhere_lack_nothing(objects: str) -> None:
    """A person's repository may stand anywhere: its objects, mounted read-only at their
    own path, are never taken for a system folder (the session would be made again at
    every pass, and never started)."""
    mounts = [*OURS, {"Type": "bind", "Source": objects, "Destination": objects, "RW": False}]
    assert lacks(attrs(mounts=mounts), WANT) == []


def test_an_engine_that_bounds_no_process_asks_no_bound() -> None:
    """An engine without the pids cgroup drops every container's limit: with none asked,
    none is missed (each container would be made again at every pass, the session failed)."""
    unbounded = Containment(network=NET, pids_bounded=False)
    assert lacks(attrs(PidsLimit=None), unbounded) == []
    assert lacks(attrs(PidsLimit=None), Containment(network=NET)) == [
        "a bound on its processes (any)"]


@pytest.mark.parametrize(("command", "image", "then"), [
    ((), {"Config": {"Entrypoint": ["tini", "--"], "Cmd": ["bash"]}}, ["tini", "--", "bash"]),
    (("claude",), {"Config": {"Entrypoint": ["tini"], "Cmd": ["bash"]}}, ["tini", "claude"]),
    (("claude",), {"Config": {"Entrypoint": None, "Cmd": None}}, ["claude"]),
    ((), {"Config": None}, []),
    ((), {}, []),
])
def test_our_entry_runs_first_then_the_images_own(command: tuple[str, ...],
                                                  image: dict[str, Any], then: list[str]) -> None:
    assert entry_kwargs(spec(entry="/boot.sh", command=command), image) == {
        "entrypoint": ["sh", "/boot.sh"], "command": then}
