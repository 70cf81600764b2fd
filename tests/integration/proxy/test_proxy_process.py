"""The real ``clauderon-proxy`` process: SIGHUP reload, CA across restarts, no secret in logs.

Credentials come from a secret file in ``CLAUDERON_HOME/secrets`` (the real loader); the
upstream is a fake on loopback named in ``proxy.toml``; ``deny_unlisted`` keeps every other
request on this machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import trio
import trustme
from conftest import add_session
from proxy_fakes import FakeUpstream, Tunnel, websocket_through, ws_frame

from api.browse import audit_lines
from appliance.audit_index import AuditIndex
from appliance.sessions import AccessMode
from appliance.store import Store
from appliance.timeline_read import audits

REPO = Path(__file__).resolve().parents[3]
KEY_ONE = "sk-ant-api03-CANARY-ONE-0123456789abcdef"
KEY_TWO = "sk-ant-api03-CANARY-TWO-0123456789abcdef"


class ProxyProcess:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.lines: list[str] = []
        self.changed = trio.Condition()
        self.proc: trio.Process | None = None

    async def start(self, nursery: trio.Nursery) -> int:
        env = {"PATH": os.environ["PATH"], "HOME": str(self.home.parent),
               "CLAUDERON_HOME": str(self.home), "CLAUDERON_PROXY_PORT": "0"}
        self.proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "proxy"], cwd=REPO, env=env, stderr=subprocess.PIPE)
        nursery.start_soon(self._read)
        line = await self.wait_for(r"proxy listening on port (\d+)")
        found = re.search(r"port (\d+)", line)
        assert found
        return int(found.group(1))

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        buffer = b""
        while chunk := await self.proc.stderr.receive_some(65536):
            buffer += chunk
            *done, buffer = buffer.split(b"\n")
            async with self.changed:
                self.lines += [d.decode() for d in done]
                self.changed.notify_all()

    async def wait_for(self, pattern: str, after: int = 0) -> str:
        with trio.fail_after(20):
            async with self.changed:
                while True:
                    for line in self.lines[after:]:
                        if re.search(pattern, line):
                            return line
                    await self.changed.wait()

    async def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            return await self.proc.wait()


def write_secret(home: Path, name: str, value: str) -> None:
    path = home / "secrets" / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")


def setup_home(home: Path, fake: FakeUpstream, upstream_ca: trustme.CA) -> tuple[str, str]:
    (home / "secrets").mkdir(parents=True, mode=0o700)
    os.chmod(home, 0o700)
    # The proxy alone, on loopback: no sessions' network (nor its firewall) to set up.
    (home / "config.toml").write_text('[docker]\nnetwork = "none"\n')
    bundle = home / "upstream-ca.pem"
    upstream_ca.cert_pem.write_to_path(str(bundle))
    (home / "proxy.toml").write_text(
        f'deny_unlisted = true\nextra_ca_bundle = "{bundle}"\n'
        f'[onepassword]\nenabled = false\n'
        f'[upstreams]\n"api.anthropic.com" = "https://127.0.0.1:{fake.port}"\n')
    write_secret(home, "anthropic_api_key", KEY_ONE)
    store = Store.open(home / "db.sqlite")
    try:
        return add_session(store, "proc", AccessMode.READ_WRITE)
    finally:
        store.close()


async def test_sighup_reloads_credentials_without_dropping_the_tunnel(
    tmp_path: Path, fake: FakeUpstream, upstream_ca: trustme.CA, nursery: trio.Nursery
) -> None:
    home = tmp_path / "home"
    sid, token = setup_home(home, fake, upstream_ca)
    proc = ProxyProcess(home)
    port = await proc.start(nursery)
    tunnel = await Tunnel.open(port, f"{sid}:{token}", "api.anthropic.com",
                               home / "proxy-ca.pem")
    with trio.fail_after(20):
        status, _ = await tunnel.request("GET", "/v1/models?api_key=agent-canary",
                                         "api.anthropic.com", [("x-api-key", "placeholder")])
        assert status == 200
        assert fake.seen[-1].header("x-api-key") == [KEY_ONE]
        write_secret(home, "anthropic_api_key", KEY_TWO)
        mark = len(proc.lines)
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGHUP)
        await proc.wait_for("reloaded", after=mark)
        # The same tunnel (no reconnect) now gets the new credential.
        status, _ = await tunnel.request("GET", "/v1/models", "api.anthropic.com",
                                         [("x-api-key", "placeholder")])
        assert status == 200
        assert fake.seen[-1].header("x-api-key") == [KEY_TWO]
        await tunnel.aclose()
    assert await proc.stop() == 0
    logs = "\n".join(proc.lines)
    audit = (home / "audit.jsonl").read_text()
    for secret in (KEY_ONE, KEY_TWO, token, "agent-canary"):
        assert secret not in logs
        assert secret not in audit
    # The line the proxy writes as it starts is no session's.
    records = [r for line in audit.splitlines() if (r := json.loads(line))["session"] == sid]
    assert [r["credential"] for r in records] == ["anthropic_api_key"] * 2
    assert records[0]["path"] == "/v1/models?api_key=REDACTED"


async def test_ca_survives_a_restart(
    tmp_path: Path, fake: FakeUpstream, upstream_ca: trustme.CA, nursery: trio.Nursery
) -> None:
    home = tmp_path / "home"
    sid, token = setup_home(home, fake, upstream_ca)
    first = ProxyProcess(home)
    await first.start(nursery)
    assert await first.stop() == 0
    trusted = tmp_path / "trusted-ca.pem"
    trusted.write_bytes((home / "proxy-ca.pem").read_bytes())
    assert (home / "proxy-ca-key.pem").stat().st_mode & 0o777 == 0o600
    second = ProxyProcess(home)
    port = await second.start(nursery)
    with trio.fail_after(20):
        tunnel = await Tunnel.open(port, f"{sid}:{token}", "api.anthropic.com", trusted)
        status, _ = await tunnel.request("GET", "/", "api.anthropic.com")
        await tunnel.aclose()
    assert status == 200
    assert await second.stop() == 0


async def test_an_exchange_open_as_the_proxy_is_killed_is_shown_cut_off_not_open_forever(
    tmp_path: Path, fake: FakeUpstream, upstream_ca: trustme.CA, nursery: trio.Nursery
) -> None:
    """The agent holds a WebSocket open through the real proxy; the proxy is SIGKILLed (no
    end line can be written) and started again. The session's audit lines (the API's) and
    its timeline show the exchange cut off, not open since it opened, for ever."""
    home = tmp_path / "home"
    sid, token = setup_home(home, fake, upstream_ca)
    with (home / "proxy.toml").open("a") as toml:
        toml.write(f'"api.openai.com" = "https://127.0.0.1:{fake.port}"\n')
    first = ProxyProcess(home)
    port = await first.start(nursery)
    with trio.fail_after(20):
        tls = await websocket_through(port, f"{sid}:{token}", home / "proxy-ca.pem", "/ws")
        await tls.send_all(b"still here")
        echoed = b""
        while len(echoed) < 12:
            echoed += await tls.receive_some(1024)
        assert echoed == ws_frame(0x1, b"STILL HERE")
        assert first.proc is not None
        first.proc.send_signal(signal.SIGKILL)
        assert await first.proc.wait() == -signal.SIGKILL
        await trio.aclose_forcefully(tls)  # its proxy is gone: nothing more to say
    second = ProxyProcess(home)
    port = await second.start(nursery)
    index = AuditIndex(home / "audit.jsonl")
    try:
        lines = audit_lines(index, sid, 50)
        entries = audits(index, sid, None).entries
    finally:
        index.close()
    assert [(x["path"], x["phase"]) for x in lines] == [("/ws", "open")], lines
    assert [x.get("cut_off") for x in lines] == [True], lines
    assert ["cut off (the proxy restarted)" in e.text and "open since" not in e.text
            for e in entries] == [True], [e.text for e in entries]
    # The agent comes back and another session writes after the start-up line: an index
    # that keeps two sessions (the bound an agent's many sessions reach) forgets the
    # "(proxy)" key, and still the views know the run.
    store = Store.open(home / "db.sqlite")
    try:
        other, other_token = add_session(store, "other", AccessMode.READ_WRITE)
    finally:
        store.close()
    with trio.fail_after(20):
        for who, secret in ((sid, token), (other, other_token)):
            tunnel = await Tunnel.open(port, f"{who}:{secret}", "api.anthropic.com",
                                       home / "proxy-ca.pem")
            status, _ = await tunnel.request("GET", "/v1/models", "api.anthropic.com")
            await tunnel.aclose()
            assert status == 200
            # Its line is written once the answer went out: in this order, before a look.
            mark = f'"session":"{who}","method":"GET","host":"api.anthropic.com"'
            while mark not in (home / "audit.jsonl").read_text():
                await trio.sleep(0.01)
    index = AuditIndex(home / "audit.jsonl", sessions=2)
    try:
        lines = audit_lines(index, sid, 50)
        entries = audits(index, sid, None).entries
    finally:
        index.close()
    assert [(x["path"], x.get("cut_off")) for x in lines] == [
        ("/ws", True), ("/v1/models", False)], lines
    assert ["cut off (the proxy restarted)" in e.text for e in entries] == [True, False], [
        e.text for e in entries]
    assert await second.stop() == 0
