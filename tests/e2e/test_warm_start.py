"""The warm start for real: the boot files written into the created container, the agent
started by the container's own entry, the real Claude Code reaching the fake model — and
nothing of the containment given up for it.

Plays the hostile agent (the container's own user, as Claude runs) against the boot files:
it cannot change them, and a second session's boot files carry nothing of the first's.
"""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import docker

from appliance.agents.boot import START_SCRIPT_PATH
from appliance.agents.hooks import HOOK_SCRIPT_PATH, MANAGED_SETTINGS_PATH
from appliance.agents.prestart import ENTRY_PATH, SEED_DIR
from appliance.backends.base import ExecResult
from appliance.placeholders import placeholder_env
from appliance.tokens import load_or_create_instance_key
from tests.e2e.agent_checks import exec_in, wait_hook
from tests.support.appliance import Appliance, wait_for
from tests.support.fake_models import FakeModels

ROOT_FILES = (ENTRY_PATH, f"{SEED_DIR}/0", HOOK_SCRIPT_PATH, MANAGED_SETTINGS_PATH,
              START_SCRIPT_PATH)
#: What the agent tries against each boot file (``$1``); each prints ``changed`` if it did.
TAMPER = r"""
before=$(sha256sum "$1")
echo 'echo pwned' > "$1" 2>/dev/null
echo 'echo pwned' >> "$1" 2>/dev/null
chmod 777 "$1" 2>/dev/null
rm -f "$1" 2>/dev/null
mv -f /tmp/x "$1" 2>/dev/null
ln -sf /tmp/x "$1" 2>/dev/null
[ "$(sha256sum "$1" 2>/dev/null)" = "$before" ] || echo changed
touch "$(dirname "$1")/planted" 2>/dev/null && echo planted
true
"""


def run(container: str, script: str, *args: str, user: str | None = None) -> ExecResult:
    return exec_in(container, ["bash", "-c", script, "script", *args], stdin=None, user=user)


def out(result: ExecResult) -> str:
    return result.stdout.decode(errors="replace")


def create(app: Appliance, repo: Path, name: str) -> dict[str, object]:
    s: dict[str, object] = app.client().post("/api/sessions", {
        "repo_path": str(repo), "name": name, "prompt": "hello",
        "skip_permissions": True})["session"]
    app.wait_phase(str(s["id"]), "running", timeout=120)
    return app.session(name)


def test_the_agent_starts_from_the_entry_contained_and_cannot_touch_its_boot_files(
    agents: Appliance, fake: FakeModels, repo: Path
) -> None:
    a = create(agents, repo, "warm-a")
    assert fake.first_model_request.wait(120), "the agent never called the model"
    bid = str(a["backend_id"])
    with closing(docker.from_env()) as engine:
        attrs = engine.api.inspect_container(bid)
        image = engine.api.inspect_image(attrs["Image"])
    # Our entry, then the image's own command; containment as the contract has it.
    assert attrs["Config"]["Entrypoint"] == ["sh", ENTRY_PATH]
    assert attrs["Config"]["Cmd"] == (image["Config"]["Entrypoint"] or []) + \
        image["Config"]["Cmd"]
    host = attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["NetworkMode"].startswith("clauderon-")
    assert list(attrs["NetworkSettings"]["Networks"]) == [host["NetworkMode"]]
    # The boot files live in the container's own filesystem: no mount brought them.
    targets = {m["Destination"] for m in attrs["Mounts"]}
    assert not any(t.startswith(("/etc/clauderon/seed", "/etc/claude-code")) or t == ENTRY_PATH
                   for t in targets), targets

    # Root's, read-only to the agent; its home file its own, 0600.
    stat = out(run(bid, 'stat -c "%u:%g %a %n" "$@"', *ROOT_FILES)).splitlines()
    modes = ("755", "444", "755", "644", "755")
    assert stat == [f"0:0 {m} {p}" for m, p in zip(modes, ROOT_FILES, strict=True)], stat
    home = out(run(bid, 'stat -c "%u:%g %a" /home/agent/.claude.json')).strip()
    assert home == f"{attrs['Config']['User']} 600", home

    # The create's steps were timed, in order, the agent booted after the start.
    events = agents.client().get(f"/api/sessions/{a['id']}/events")["events"]
    marks = next(e for e in events if e["kind"] == "timing")["payload"]["marks"]
    steps = [m[0] for m in marks]
    assert steps[:5] == ["begin", "worktree", "container", "start", "started"], steps
    assert steps[-1] == "settled" and "booted" in steps
    assert [m[1] for m in marks] == sorted(m[1] for m in marks)

    # The hostile agent against every boot file: nothing changes, nothing is planted.
    # Positive control: the same script as root does change a copy.
    entry = out(run(bid, f"cat {ENTRY_PATH}", user="0:0"))
    for path in ROOT_FILES:
        assert out(run(bid, TAMPER, path)) == "", path
    assert run(bid, f"cp {ENTRY_PATH} /etc/clauderon/control", user="0:0").exit_code == 0
    assert "changed" in out(run(bid, TAMPER, "/etc/clauderon/control", user="0:0"))

    # A second session: its boot files carry its own placeholders, none of the first's.
    b = create(agents, repo, "warm-b")
    key = load_or_create_instance_key(agents.settings.instance_secret_path)
    mine = placeholder_env(key, str(b["id"]))
    theirs = placeholder_env(key, str(a["id"]))
    files = out(run(str(b["backend_id"]), 'cat "$@"', *ROOT_FILES, user="0:0"))
    seed = json.loads(out(run(str(b["backend_id"]), f"cat {SEED_DIR}/0", user="0:0")))
    assert seed["customApiKeyResponses"]["approved"] == [mine["ANTHROPIC_API_KEY"][-20:]]
    for value in theirs.values():
        assert value not in files and value[-20:] not in files
    assert "pwned" not in files

    # Stopped and started again: the entry runs once more (its seeds kept, the agent back in
    # tmux, resuming), beside the exec boot of a later start.
    agents.client().post(f"/api/sessions/{a['id']}/stop", {})
    agents.wait_phase(str(a["id"]), "stopped", timeout=60)
    agents.client().post(f"/api/sessions/{a['id']}/start", {})
    agents.wait_phase(str(a["id"]), "running", timeout=120)
    wait_for(lambda: run(bid, "tmux has-session -t agent && pgrep -f claude").exit_code == 0,
             timeout=60, what="the agent in tmux after the restart")
    assert out(run(bid, f"cat {ENTRY_PATH}", user="0:0")) == entry


def test_the_agent_start_up_sends_nothing_the_proxy_denies(
    agents: Appliance, fake: FakeModels, repo: Path
) -> None:
    """Claude's first run would check for updates and clone its plugin marketplace: hosts
    the proxy denies (an audit line each, the CLI's own retries) for nothing the agent could
    use. The session's env turns both off; the model calls remain."""
    s = create(agents, repo, "quiet-start")
    wait_hook(agents, str(s["id"]), "Stop")
    # A marker the agent sends last, through its own proxy settings: its denied line shows
    # the check reads this session's lines (the positive control), and ends the window.
    marker = "marker.invalid"
    run(str(s["backend_id"]), f'curl -s -o /dev/null --max-time 5 https://{marker}/ || true')

    def lines() -> list[dict[str, object]]:
        text = agents.settings.audit_path.read_text()
        return [line for line in map(json.loads, text.splitlines())
                if line.get("session") == s["id"] or line.get("session") is None]

    wait_for(lambda: any(line["host"] == marker for line in lines()),
             what="the marker's audit line")
    mine = [line for line in lines() if line.get("session") == s["id"]]
    assert any(str(line["path"]).startswith("/v1/messages") for line in mine)
    refused = {str(line["host"]) for line in mine if line["decision"] in ("denied", "blocked")}
    assert refused == {marker}, refused
    # No client tried those hosts without the session's proxy credentials either.
    anonymous = {str(line["host"]) for line in lines() if line.get("session") is None}
    assert not anonymous & {"downloads.claude.ai", "github.com"}, anonymous
