"""The hostile agent against its container's walls (DESIGN.md "Containment" 3 and 6).

Real appliance (proxy, API, reconciler), real engine, plain containers of the agent image
(curl, bash, node, python3); every attack runs inside a session container as uid 1000.
"The internet" is a listener in a network namespace this module creates (see
:mod:`tests.support.netns`); nothing leaves this machine. Every "cannot" comes with its
positive control: the same probe succeeds from the host or from an unconfined container
on the engine's default bridge, so a probe that could never succeed proves nothing here.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from appliance.backends.base import ExecResult
from tests.conftest import make_repo, make_traversable
from tests.e2e.agent_checks import exec_in
from tests.support.agent_app import behind_proxy
from tests.support.appliance import Appliance, wait_for
from tests.support.engine import free_port
from tests.support.netns import Internet, Listener, internet

AGENT = "1000:1000"
PIDS_LIMIT = 128
#: Prints "<target> open|closed" for each ip:port argument, probed in parallel, 3 s each.
PROBE = r"""
probe() {
    if timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
    then echo "$1:$2 open"; else echo "$1:$2 closed"; fi
}
for t in "$@"; do probe "${t%:*}" "${t##*:}" & done
wait
"""
#: A DNS server for 127.0.0.1:53 inside the container: logs each name asked; answers A
#: queries with 10.11.12.13 ("answer") or never ("silent").
DNS_STUB = r"""
const dgram = require('dgram');
const fs = require('fs');
const mode = process.argv[2];
const s = dgram.createSocket('udp4');
s.on('message', (msg, peer) => {
  let i = 12; const labels = [];
  while (msg[i] !== 0) {
    labels.push(msg.slice(i + 1, i + 1 + msg[i]).toString());
    i += msg[i] + 1;
  }
  const qtype = msg.readUInt16BE(i + 1);
  fs.appendFileSync('/tmp/dns.log', labels.join('.') + ' ' + qtype + '\n');
  if (mode !== 'answer') return;
  const head = Buffer.from(msg.slice(0, 12));
  head.writeUInt16BE(0x8180, 2); head.writeUInt16BE(1, 4);
  head.writeUInt16BE(qtype === 1 ? 1 : 0, 6); head.writeUInt32BE(0, 8);
  const parts = [head, msg.slice(12, i + 5)];
  const answer = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 11, 12, 13];
  if (qtype === 1) parts.push(Buffer.from(answer));
  s.send(Buffer.concat(parts), peer.port, peer.address);
});
s.bind(53, '127.0.0.1', () => fs.writeFileSync('/tmp/dns.ready', String(process.pid)));
"""


@dataclass
class World:
    app: Appliance
    net: Internet
    gateway: str
    attacker: dict[str, Any]
    victim: dict[str, Any]


def run(container: str, script: str, *args: str, user: str = AGENT,
        stdin: bytes | None = None) -> ExecResult:
    return exec_in(container, ["bash", "-c", script, "script", *args], stdin=stdin, user=user)


def out(result: ExecResult) -> str:
    return result.stdout.decode(errors="replace")


def probe(container: str, *targets: str) -> dict[str, bool]:
    lines = out(run(container, PROBE, *targets)).split()
    found = dict(zip(lines[::2], (word == "open" for word in lines[1::2]), strict=True))
    assert set(found) == set(targets), found
    return found


def reachable(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=1).close()
    except OSError:
        return False
    return True


def host_lan_address() -> str:
    """The host's address on its own network (eth0's), where other host services listen."""
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "default"],
                                       capture_output=True, text=True, check=True).stdout)
    links = json.loads(subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True,
                                      text=True, check=True).stdout)
    devices = [r["dev"] for r in routes] + [link["ifname"] for link in links]
    for dev in devices:
        if dev == "lo" or dev.startswith(("docker", "cl-", "cin", "veth", "br-")):
            continue
        for link in links:
            if link["ifname"] == dev and link.get("addr_info"):
                return str(link["addr_info"][0]["local"])
    raise AssertionError("this machine has no address besides loopback and bridges")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient,
          agent_image: str) -> Iterator[World]:
    root = tmp_path_factory.mktemp("containment")
    make_traversable(root)  # the repository's owner (uid 1000) runs git there
    repo = make_repo(root / "repo")
    with internet() as net, behind_proxy(
            root / "home", agent_image,
            f'deny_unlisted = true\n[upstreams]\n"internet.test" = "{net.url.rstrip("/")}"\n',
            docker_config=f"pids_limit = {PIDS_LIMIT}\n") as app:
        # Container names are the engine's, shared with every other appliance on it.
        tag = secrets.token_hex(3)
        for name in (f"attacker-{tag}", f"victim-{tag}"):
            app.cli("create", "--repo", str(repo), "--name", name, "--prompt", "p")
        attacker, victim = app.session(f"attacker-{tag}"), app.session(f"victim-{tag}")
        network = engine.networks.get(f"clauderon-{app.instance}")
        gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
        yield World(app=app, net=net, gateway=gateway, attacker=attacker, victim=victim)


@pytest.fixture
def unconfined(world: World, engine: docker.DockerClient, agent_image: str) -> Iterator[str]:
    """The control: the same image, same user, on the engine's default bridge."""
    container = engine.containers.run(
        agent_image, ["sleep", "600"], detach=True, user=AGENT, network="bridge",
        labels={"clauderon.test": world.app.instance}, name=f"ctl-{secrets.token_hex(4)}")
    try:
        yield str(container.id)
    finally:
        container.remove(force=True)


def test_the_internet_and_the_hosts_other_services_are_out_of_reach(
    world: World, unconfined: str, engine: docker.DockerClient, agent_image: str
) -> None:
    gw, app = world.gateway, world.app
    lan = host_lan_address()
    listeners = [Listener(gw), Listener("172.17.0.1"), Listener(lan)]
    udp = Listener(gw, udp=True)
    # Another container publishing a port on the gateway: the engine DNATs to it.
    publisher = engine.containers.run(
        agent_image, ["python3", "-m", "http.server", "8000"], detach=True, user=AGENT,
        network="bridge", ports={"8000/tcp": (gw, free_port())},
        labels={"clauderon.test": app.instance})
    try:
        publisher.reload()
        published = f"{gw}:{publisher.ports['8000/tcp'][0]['HostPort']}"
        wait_for(lambda: reachable(gw, int(published.rsplit(":", 1)[1])),
                 what="the published port, from the host")
        internet_target = f"{world.net.address}:{world.net.port}"
        others = [internet_target, published,
                  *(f"{x.address}:{x.port}" for x in listeners)]
        ours = [f"{gw}:{app.proxy_port}", f"{gw}:{app.hook_port}"]

        # The unconfined control reaches all of it: each probe can succeed.
        assert probe(unconfined, *others, *ours) == dict.fromkeys(others + ours, True)
        # A probe's handshake ends in the kernel; the listener's thread notes it after.
        wait_for(lambda: all(x.peers for x in listeners), what="the control at each listener")
        for x in listeners:
            x.peers.clear()

        # The session container reaches the proxy and the hook endpoint, nothing else.
        attacker = world.attacker["backend_id"]
        found = probe(attacker, *others, *ours)
        assert found == {**dict.fromkeys(others, False), **dict.fromkeys(ours, True)}
        assert [x.peers for x in listeners] == [[], [], []]

        # UDP to the host (a resolver, a syslog...) is dropped too; the control's arrives.
        run(attacker, 'for i in 1 2 3; do echo leak > "/dev/udp/$1/$2"; done',
            gw, str(udp.port))
        run(unconfined, 'echo control > "/dev/udp/$1/$2"', gw, str(udp.port))
        wait_for(lambda: udp.peers, what="the control's datagram")
        attacker_ip = next(iter(engine.containers.get(attacker).attrs["NetworkSettings"]
                                ["Networks"].values()))["IPAddress"]
        assert attacker_ip not in udp.peers and udp.peers

        # Its only route leads to the gateway, which is the host's firewall.
        routes = out(run(attacker, "cat /proc/net/route")).splitlines()[1:]
        gateways = {socket.inet_ntoa(bytes.fromhex(r.split()[2])[::-1]) for r in routes}
        assert gateways == {"0.0.0.0", gw}
    finally:
        publisher.remove(force=True)
        for x in [*listeners, udp]:
            x.close()


def test_another_sessions_container_is_out_of_reach(world: World,
                                                    engine: docker.DockerClient) -> None:
    victim = engine.containers.get(world.victim["backend_id"])
    victim.exec_run(["python3", "-m", "http.server", "9000"], user=AGENT, detach=True)
    address = next(iter(victim.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    # The host (on the same bridge) reaches the victim's service: it is there.
    wait_for(lambda: reachable(address, 9000), what="the victim's listener")
    assert probe(world.attacker["backend_id"], f"{address}:9000") == {
        f"{address}:9000": False}


def test_names_resolve_nowhere_but_inside_the_container(world: World,
                                                       engine: docker.DockerClient) -> None:
    attacker = world.attacker["backend_id"]
    assert engine.api.inspect_container(attacker)["HostConfig"]["Dns"] == ["127.0.0.1"]
    run(attacker, 'cat > /tmp/dns.js; rm -f /tmp/dns.log /tmp/dns.ready',
        stdin=DNS_STUB.encode())
    container = engine.containers.get(attacker)

    def lookup(mode: str) -> tuple[str, str]:
        name = f"probe-{secrets.token_hex(4)}.invalid"
        container.exec_run(["node", "/tmp/dns.js", mode], user=AGENT, detach=True)
        wait_for(lambda: run(attacker, "test -e /tmp/dns.ready").exit_code == 0,
                 what="the DNS stub")
        got = out(run(attacker, 'getent hosts "$1"; kill "$(cat /tmp/dns.ready)"; '
                                'rm -f /tmp/dns.ready', name))
        return name, got

    # The engine's resolver forwards what it does not know to the container's own
    # loopback, and there only: the stub inside sees the name and its answer is used.
    name, got = lookup("answer")
    assert got.split() == ["10.11.12.13", name]
    # When the stub stays silent the name does not resolve: there is no other server.
    name, got = lookup("silent")
    assert got == ""
    assert name in out(run(attacker, "cat /tmp/dns.log"))
    # And with nothing listening, no name resolves at all.
    result = run(attacker, 'getent hosts "$1"', f"probe-{secrets.token_hex(4)}.invalid")
    assert result.exit_code == 2 and out(result) == ""


def test_the_proxy_is_the_way_out_and_every_request_is_audited(world: World) -> None:
    attacker = world.attacker["backend_id"]
    # Direct: nowhere.
    direct = run(attacker, 'curl -sS --noproxy "*" --max-time 5 "$1"', world.net.url)
    assert direct.exit_code in (7, 28), direct
    # Through the proxy (its [upstreams] send internet.test to the namespace): plain HTTP,
    # and HTTPS intercepted with the appliance's CA.
    for url in ("http://internet.test/plain", "https://internet.test/tls"):
        got = run(attacker, 'curl -sS --max-time 20 --cacert "$SSL_CERT_FILE" "$1"', url)
        assert (got.exit_code, out(got)) == (0, "hello from the internet\n"), got
    mine = [(r["method"], r["host"], r["path"], r["status"], r["decision"])
            for r in world.app.audit(lambda r: r["session"] == world.attacker["id"]
                                     and r["host"] == "internet.test" and r["method"] == "GET",
                                     at_least=2)]
    assert ("GET", "internet.test", "/plain", 200, "passed") in mine
    assert ("GET", "internet.test", "/tls", 200, "passed") in mine


def test_the_hook_endpoint_answers_hooks_and_nothing_else(world: World) -> None:
    attacker, sid = world.attacker["backend_id"], world.attacker["id"]
    post = ('curl -s -o /dev/null -w "%{http_code}" --noproxy "*" --max-time 10 '
            '-H "Authorization: Bearer $CLAUDERON_HOOK_TOKEN" '
            '-H "Content-Type: application/json" --data "$2" "$1"')
    hook = json.dumps({"session_id": sid, "event": {"type": "Stop"}})
    code = out(run(attacker, post.replace('"$1"', '"$CLAUDERON_HOOK_URL"'), "", hook))
    assert code.startswith("2"), code
    wait_for(lambda: world.app.session(sid)["agent_status"] == "waiting_input",
             what="the hook's status")
    base = f"http://host.docker.internal:{world.app.hook_port}"
    for path in ("/api/sessions", "/api/recent-repos", "/"):
        got = run(attacker, 'curl -s -o /dev/null -w "%{http_code}" --noproxy "*" '
                            '--max-time 10 "$1"', base + path)
        assert out(got) == "404", path


def test_no_capability_no_setuid_root_and_limits(world: World, engine: docker.DockerClient,
                                                 agent_image: str) -> None:
    attacker = world.attacker["backend_id"]
    host = engine.api.inspect_container(attacker)["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["PidsLimit"] == PIDS_LIMIT
    # The appliance's defaults: 2 CPUs (or every CPU of a smaller machine), 4 GiB.
    assert host["NanoCpus"] == int(min(2, os.cpu_count() or 1) * 1e9)
    assert host["Memory"] == 4 * 1024**3

    # No process of the agent holds a capability; not even root's, through docker exec.
    caps = out(run(attacker, "grep -h CapEff /proc/[0-9]*/status | sort -u"))
    assert caps.split() == ["CapEff:", "0000000000000000"]
    assert out(run(attacker, "grep CapEff /proc/self/status", user="0:0")).split()[1] == \
        "0" * 16
    # The daemon still writes its files as root into /etc (hooks, managed settings).
    wrote = run(attacker, "mkdir -p /etc/clauderon && echo ok > /etc/clauderon/probe && "
                          "cat /etc/clauderon/probe", user="0:0")
    assert out(wrote) == "ok\n"

    # su, with root's password known, against the same image unconfined.
    password_hash = subprocess.run(["openssl", "passwd", "-6", "hunter2"], check=True,
                                   capture_output=True, text=True).stdout.strip()
    set_password = 'sed -i "s|^root:[^:]*:|root:$1:|" /etc/shadow'
    su = "echo hunter2 | su -c id root"
    setuid = ('sleep 5 | su -c true root >/dev/null 2>&1 & sleep 1; '
              'grep -E "^Uid" /proc/$(pgrep -x su)/status')
    control = engine.containers.run(agent_image, ["sleep", "600"], detach=True, user=AGENT,
                                    network_mode="none",
                                    labels={"clauderon.test": world.app.instance})
    try:
        for container in (attacker, str(control.id)):
            assert run(container, set_password, password_hash, user="0:0").exit_code == 0
        assert out(run(str(control.id), su)).startswith("uid=0(root)")
        assert out(run(str(control.id), setuid)).split() == ["Uid:", "1000", "0", "0", "0"]
    finally:
        control.remove(force=True)
    became = run(attacker, su)
    assert became.exit_code != 0 and "uid=0" not in out(became)
    # The setuid bit gives su nothing: it runs as the agent.
    assert out(run(attacker, setuid)).split() == ["Uid:", "1000", "1000", "1000", "1000"]


def test_a_fork_bomb_hits_the_pids_limit_and_the_session_recovers(
    world: World, engine: docker.DockerClient, tmp_path: Path
) -> None:
    app, name = world.app, f"bomber-{secrets.token_hex(3)}"
    app.cli("create", "--repo", str(make_repo(tmp_path / "bomb-repo")), "--name", name,
            "--prompt", "p")
    bomber = engine.containers.get(app.session(name)["backend_id"])
    bomber.exec_run(["bash", "-c", ":(){ :|:& };:"], user=AGENT, detach=True)

    def pids() -> dict[str, int]:
        stats: dict[str, int] = bomber.stats(stream=False)["pids_stats"]
        return stats

    seen: list[int] = []

    def reached() -> bool:
        seen.append(pids().get("current", 0))
        return seen[-1] >= PIDS_LIMIT

    wait_for(reached, timeout=60, what="the bomb to reach the limit")
    seen += [pids()["current"] for _ in range(3)]
    assert max(seen) == PIDS_LIMIT  # it keeps trying; it never gets past the limit
    # The rest of the machine does not notice: another session still answers.
    victim = engine.containers.get(world.victim["backend_id"])
    assert victim.exec_run(["echo", "fine"], user=AGENT).output == b"fine\n"
    # Stopping the session ends the bomb; started again, the container is whole.
    assert "stopped" in app.cli("stop", name).stdout
    assert "running" in app.cli("start", name).stdout
    bomber = engine.containers.get(app.session(name)["backend_id"])
    assert bomber.exec_run(["echo", "alive"], user=AGENT).output == b"alive\n"
    assert pids()["current"] < 10


def test_the_terminal_log_the_engine_keeps_is_bounded(world: World,
                                                      engine: docker.DockerClient) -> None:
    """The engine logs the container's terminal to its own disk, where no workspace shows
    it. The agent owns that terminal (``/dev/console``) and writes 48 MiB to it, as uid
    1000: the log holds the last of it (so the writes did reach it) and never more than its
    two files of 10 MiB. Without the bound it held all 48 MiB, and grew on."""
    attacker = world.attacker["backend_id"]
    host = engine.api.inspect_container(attacker)["HostConfig"]
    assert host["LogConfig"] == {"Type": "json-file",
                                 "Config": {"max-size": "10m", "max-file": "2"}}
    marker = f"end-{secrets.token_hex(4)}"
    flood = run(attacker, 'line=$(head -c 1000 /dev/zero | tr "\\0" a); '
                          'yes "$line" | head -c $((48 << 20)) > /dev/console && '
                          'echo "$1" > /dev/console', marker)
    assert flood.exit_code == 0, out(flood)
    log = Path(engine.api.inspect_container(attacker)["LogPath"])
    wait_for(lambda: marker in log.read_text(errors="replace")[-4096:], timeout=120,
             what="the flood's last line in the engine's log")
    files = sorted(log.parent.glob(log.name + "*"))
    total = sum(f.stat().st_size for f in files)
    assert len(files) <= 2, files
    assert 10 << 20 <= total <= (20 << 20) + (64 << 10), (total, files)
