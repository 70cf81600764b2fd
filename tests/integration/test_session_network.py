"""The sessions' network and its firewall on the real engine and the real iptables.

``ensure`` is idempotent and safe from several processes at once (the three services start
in any order); re-running it replaces the chain's rules; ``remove`` leaves nothing behind
and refuses while a container still uses the network. A network of that name that is not
ours, or not locked down, is refused; so is a process that cannot install the firewall.
The services listen on loopback and the gateway only, never on every address. The engine's
DNS on the network answers every container's name to every other: a container's name is
its session's id, so a neighbour learns no session's name from it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from api.listeners import has_ipv6_loopback
from appliance.backends.docker_network import SessionNetwork
from appliance.config import Settings, load_settings
from appliance.errors import BackendError, ConfigError
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance, running, wait_for

BIN = Path(sys.executable).parent
ENSURE = (
    "from appliance.config import load_settings\n"
    "from appliance.backends.docker_network import SessionNetwork\n"
    "print(SessionNetwork.for_settings(load_settings()).ensure().gateway)\n"
)


def rules(tool: str, network: SessionNetwork) -> list[str]:
    listing = subprocess.run([tool, "-w", "5", "-S"], capture_output=True, text=True,
                             check=True).stdout
    return [line for line in listing.splitlines() if network.plan.chain in line]


@pytest.fixture
def home(tmp_path: Path, engine: docker.DockerClient) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    yield home
    network = SessionNetwork.for_settings(load_settings({"CLAUDERON_HOME": str(home)}))
    assert network is not None
    network.remove()


def settings_for(home: Path, **overrides: object) -> Settings:
    return load_settings({"CLAUDERON_HOME": str(home)}, **overrides)


def test_ensure_is_idempotent_from_concurrent_processes_and_replaces_its_rules(
    home: Path, engine: docker.DockerClient
) -> None:
    env = {**os.environ, "CLAUDERON_HOME": str(home)}
    procs = [subprocess.Popen([sys.executable, "-c", ENSURE], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    gateways = set()
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        gateways.add(stdout.strip())
    network = SessionNetwork.for_settings(settings_for(home))
    assert network is not None
    [gateway] = gateways
    found = engine.networks.list(names=[network.plan.name])
    assert [n.name for n in found] == [network.plan.name]
    attrs = found[0].attrs
    assert attrs["Internal"] is True
    assert attrs["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    assert attrs["IPAM"]["Config"][0]["Gateway"] == gateway
    assert Path(f"/sys/class/net/{network.plan.bridge}").exists()

    chain, bridge = network.plan.chain, network.plan.bridge
    v4 = rules("iptables", network)
    assert sorted(v4) == sorted([
        f"-N {chain}",
        f"-A INPUT -i {bridge} -j {chain}",
        f"-A FORWARD -i {bridge} -j {chain}",
        f"-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-A {chain} -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -m connlimit "
        "--connlimit-above 256 --connlimit-mask 32 --connlimit-saddr "
        "-j REJECT --reject-with tcp-reset",
        f"-A {chain} -d {gateway}/32 -p tcp -m tcp --dport 3031 -j ACCEPT",
        f"-A {chain} -d {gateway}/32 -p tcp -m tcp --dport 3128 -j ACCEPT",
        f"-A {chain} -j DROP",
    ])
    assert sorted(rules("ip6tables", network)) == sorted([
        f"-N {chain}", f"-A INPUT -i {bridge} -j {chain}",
        f"-A FORWARD -i {bridge} -j {chain}", f"-A {chain} -j DROP"])
    # The jumps come first in their chains: nothing before them can accept the packet.
    # Only other sessions' networks (tests running beside this one) may have put their
    # own jumps ahead since, each matching its own bridge alone.
    own_jump = re.compile(r"-A (INPUT|FORWARD) -i (cl-[0-9a-f]{12}) -j CLAUDERON-([0-9a-f]{12})")
    for hook in ("INPUT", "FORWARD"):
        listing = subprocess.run(["iptables", "-w", "5", "-S", hook], capture_output=True,
                                 text=True, check=True).stdout.splitlines()
        ours = f"-A {hook} -i {bridge} -j {chain}"
        assert ours in listing, listing
        ahead = listing[1:listing.index(ours)]
        for line in ahead:
            match = own_jump.fullmatch(line)
            assert match and match[2] == f"cl-{match[3]}", (line, listing[:5])

    # Other ports: the chain is rewritten, not added to; still one jump per hook.
    moved = SessionNetwork.for_settings(settings_for(home, proxy_port=4128, hook_port=0))
    assert moved is not None
    assert moved.ensure().gateway == gateway
    after = rules("iptables", moved)
    assert [r for r in after if "--dport" in r] == [
        f"-A {chain} -d {gateway}/32 -p tcp -m tcp --dport 4128 -j ACCEPT"]
    assert len([r for r in after if r.startswith(("-A INPUT", "-A FORWARD"))]) == 2


def test_remove_waits_for_the_containers_and_then_leaves_nothing(
    home: Path, engine: docker.DockerClient
) -> None:
    network = SessionNetwork.for_settings(settings_for(home))
    assert network is not None
    network.ensure()
    user = engine.containers.run("debian:bookworm-slim", ["sleep", "60"], detach=True,
                                 network=network.plan.name,
                                 labels={"clauderon.test": network.plan.instance})
    try:
        with pytest.raises(BackendError, match="remove the network"):
            network.remove()
        assert rules("iptables", network), "the firewall must stay while the network does"
    finally:
        user.remove(force=True)
    network.remove()
    network.remove()  # gone already: fine
    assert engine.networks.list(names=[network.plan.name]) == []
    assert rules("iptables", network) == [] and rules("ip6tables", network) == []


def test_a_network_that_is_not_ours_or_not_locked_down_is_refused(
    home: Path, engine: docker.DockerClient
) -> None:
    network = SessionNetwork.for_settings(settings_for(home))
    assert network is not None
    squatter = engine.networks.create(network.plan.name, driver="bridge")
    try:
        with pytest.raises(ConfigError, match="is not this appliance's"):
            network.ensure()
    finally:
        squatter.remove()
    # Ours by its labels, but open: refused, not used.
    open_one = engine.networks.create(network.plan.name, driver="bridge",
                                      labels=network.plan.labels)
    try:
        with pytest.raises(ConfigError, match="not internal") as info:
            network.ensure()
        assert f"docker network rm {network.plan.name}" in info.value.message
        assert rules("iptables", network) == []
    finally:
        open_one.remove()


def test_without_the_privilege_for_the_firewall_no_session_service_starts(
    engine: docker.DockerClient
) -> None:
    """The proxy and the reconciler refuse to start; the API serves the CLI without a hook
    listener, saying why. Nothing is half-made."""
    # A home the unprivileged user can reach (pytest's own folders are root's alone).
    home = Path(tempfile.mkdtemp(prefix="clauderon-unprivileged-"))
    os.chown(home, 1000, 1000)
    unprivileged = ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"]
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "CLAUDERON_HOME": str(home),
           "CLAUDERON_HTTP_PORT": "0"}
    network = SessionNetwork.for_settings(settings_for(home))
    assert network is not None
    api: subprocess.Popen[str] | None = None
    try:
        for service in ("clauderon-proxy", "clauderon-reconciler"):
            proc = subprocess.run([*unprivileged, str(BIN / service)], env=env,
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode == 78, proc.stderr
            assert "Run the appliance's services as root (or with CAP_NET_ADMIN)" \
                in proc.stderr
            assert "sessions never run without the firewall" in proc.stderr
        log = home / "api.log"
        with open(log, "w") as out:
            api = subprocess.Popen([*unprivileged, str(BIN / "clauderon-api")], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, text=True)
        wait_for(lambda: "no hook listener" in log.read_text(), what="the API's reason")
        assert "Run the appliance's services as root" in log.read_text()
        assert api.poll() is None  # still serving the CLI
        status = subprocess.run(["curl", "-s", "--unix-socket", str(home / "clauderon.sock"),
                                 "http://clauderon/api/recent-repos"], capture_output=True,
                                text=True, timeout=30)
        assert '"repos"' in status.stdout, status
    finally:
        if api is not None:
            api.terminate()
            api.wait(timeout=30)
        shutil.rmtree(home)
    assert engine.networks.list(names=[network.plan.name]) == []  # nothing half-made


def test_services_in_any_order_share_one_network_and_listen_on_loopback_and_gateway(
    tmp_path: Path, engine: docker.DockerClient
) -> None:
    with running(tmp_path / "home", "reconciler", "proxy", "api") as app:  # all at once
        network = SessionNetwork.for_settings(app.settings)
        assert network is not None
        [found] = engine.networks.list(names=[network.plan.name])
        gateway = found.attrs["IPAM"]["Config"][0]["Gateway"]
        pids = {str(p.pid) for p in app.procs.values()}

        def listening() -> set[str]:
            out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True,
                                 check=True).stdout
            return {line.split()[3] for line in out.splitlines()
                    if any(f"pid={pid}," in line for pid in pids)}

        expected = {f"127.0.0.1:{app.http_port}", f"127.0.0.1:{app.proxy_port}",
                    f"{gateway}:{app.proxy_port}", f"{gateway}:{app.hook_port}"}
        if has_ipv6_loopback():  # localhost is ::1 to a browser first: held too
            expected.add(f"[::1]:{app.http_port}")
        wait_for(lambda: listening() == expected, timeout=30,
                 what=f"the listeners {expected} (and no other)")
        assert len([r for r in rules("iptables", network) if r.startswith("-A INPUT")]) == 1


def test_a_container_made_before_the_lockdown_is_replaced_not_adopted(
    tmp_path: Path, engine: docker.DockerClient, repo: Path
) -> None:
    with running(tmp_path / "home", "api") as app:
        name = f"old-{os.urandom(3).hex()}"
        sid = app.client().post("/api/sessions", {"repo_path": str(repo), "name": name}
                                )["session"]["id"]
        labels = {"clauderon.managed": "true", "clauderon.instance": app.instance,
                  "clauderon.session": sid}
        # What an older appliance left: same name and labels, default bridge, full caps.
        old = engine.containers.create("debian:bookworm-slim", "bash", name=f"clauderon-{name}",
                                       tty=True, labels=labels)
        app.start("reconciler")
        app.wait_phase(name, "running")
        [c] = app.containers(sid)
        assert c.id != old.id
        # Found by its labels though named the old way (after the session's name); its
        # replacement is named by the session's id.
        assert c.name == f"clauderon-{sid}" == app.session(sid)["container_name"]
        assert c.attrs["HostConfig"]["NetworkMode"] == f"clauderon-{app.instance}"
        assert c.attrs["HostConfig"]["CapDrop"] == ["ALL"]


def test_a_neighbour_learns_no_session_name_from_the_engines_dns(
    app: Appliance, repo: Path, engine: docker.DockerClient
) -> None:
    """The hostile agent: the engine's DNS on the sessions' network (no switch turns it
    off) answers a reverse lookup of every address on it, and a forward lookup of every
    container's name. A session's name comes from its person's prompt; from inside
    another session, neither lookup tells it. The wire's ``container_name`` is the
    engine's name of the container, so a person still finds it with ``docker exec``."""
    secret = f"acquire-rival-{os.urandom(3).hex()}"
    spy = create(app, repo, f"spy-{os.urandom(3).hex()}")
    other = create(app, repo, secret)
    [c] = app.containers(other["id"])
    [address] = [n["IPAddress"] for n in c.attrs["NetworkSettings"]["Networks"].values()]
    _, out = in_container(app, spy, f"getent hosts {address}; getent hosts clauderon-{secret}; "
                          f"getent hosts {secret}; true")
    assert secret not in out, out
    # The reverse lookup did answer (the agent did look): with the id's name alone.
    assert f"clauderon-{other['id']}" in out, out
    assert c.name == other["container_name"] == f"clauderon-{other['id']}"
    assert engine.containers.get(other["container_name"]).id == c.id
    assert c.labels["clauderon.name"] == secret  # the appliance's own records keep it


def test_a_running_container_named_the_old_way_is_renamed_not_replaced(
    app: Appliance, repo: Path, engine: docker.DockerClient
) -> None:
    """An upgrade with sessions running: the container an older appliance named after its
    session is found by its labels, kept running, and renamed to its id's name; the
    engine's DNS then answers the old name no more."""
    secret = f"layoffs-{os.urandom(3).hex()}"
    spy = create(app, repo, f"spy-{os.urandom(3).hex()}")
    other = create(app, repo, secret)
    app.stop("reconciler")
    [c] = app.containers(other["id"])
    c.rename(f"clauderon-{secret}")  # what an older appliance made
    _, out = in_container(app, spy, f"getent hosts clauderon-{secret}; true")
    assert secret in out, "the neighbour's view before the rename, so the probe can fail"
    app.start("reconciler")
    wait_for(lambda: engine.containers.get(c.id).name == f"clauderon-{other['id']}",
             what="the old container's rename")
    [kept] = app.containers(other["id"])
    assert kept.id == c.id and kept.status == "running"
    assert app.session(other["id"])["phase"] == "running"
    [address] = [n["IPAddress"] for n in kept.attrs["NetworkSettings"]["Networks"].values()]
    _, out = in_container(app, spy, f"getent hosts {address}; getent hosts clauderon-{secret}; "
                          "true")
    assert secret not in out, out
    assert f"clauderon-{other['id']}" in out, out
