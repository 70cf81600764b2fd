"""Which existing containers count as locked down (adopted, started) and which do not."""

from __future__ import annotations

from typing import Any

from appliance.backends.docker_spec import locked_down


def attrs(**host: Any) -> dict[str, Any]:
    base = {"NetworkMode": "clauderon-x", "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "2"}}}
    return {"HostConfig": {**base, **host}}


def test_on_the_network_alone_without_privileges() -> None:
    assert locked_down(attrs(), "clauderon-x")
    assert locked_down(attrs(SecurityOpt=["no-new-privileges:true"]), "clauderon-x")
    assert locked_down(attrs(NetworkMode="none"), None)


def test_anything_less_is_not() -> None:
    assert not locked_down(attrs(NetworkMode="default"), "clauderon-x")
    assert not locked_down(attrs(NetworkMode="bridge"), "clauderon-x")
    assert not locked_down(attrs(), "clauderon-y")
    assert not locked_down(attrs(), None)
    assert not locked_down(attrs(CapDrop=None), "clauderon-x")
    assert not locked_down(attrs(CapDrop=["NET_RAW"]), "clauderon-x")
    assert not locked_down(attrs(SecurityOpt=None), "clauderon-x")
    assert not locked_down({}, "clauderon-x")
    # A terminal log without a bound (the engine's default) grows the disk without end.
    assert not locked_down(attrs(LogConfig={"Type": "json-file", "Config": {}}), "clauderon-x")
    assert not locked_down(attrs(LogConfig=None), "clauderon-x")
