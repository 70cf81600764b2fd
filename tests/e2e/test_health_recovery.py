"""A session's health and its recovery, with the real claude CLI in the agent image: the
checkup sees the agent, the proxy and the hook endpoint from inside the container; when the
agent exits its status says so (its start script's hook: the session waits for a person),
the checkup suggests restarting it, and ``clauderon send`` refuses to type a message for the
agent into the shell left behind; ``clauderon interrupt`` is Ctrl-C to what
runs there (SIGINT: a ``sleep`` the terminal runs ends), and ``clauderon restart-agent``
brings the agent back in the same container, its workspace kept, its status no longer
"exited"."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.agents.claude_setup import transcript_path
from appliance.contract import CONTAINER_HOME
from tests.conftest import AGENT_UID
from tests.support.appliance import Appliance, wait_for

#: Exits 0 once the agent's terminal holds at least $1 bytes of input nobody has read yet
#: (FIONREAD on the pane's tty); 1 after 10 s.
UNREAD = ("perl -MFcntl -e 'sysopen(my $t, $ARGV[0], O_RDONLY|O_NOCTTY|O_NONBLOCK) or die $!; "
          "for (1..100) { my $n = pack(\"L\", 0); ioctl($t, 0x541B, $n) or die $!; "
          "exit 0 if unpack(\"L\", $n) >= $ARGV[1]; select(undef, undef, undef, 0.1) } "
          "exit 1' \"$(tmux display -p -t agent '#{pane_tty}')\"")


def checkup(app: Appliance, name: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(app.cli("health", name, "--json").stdout)
    return report


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["verdict"] for c in report["checks"]}


def terminal(app: Appliance, s: dict[str, Any]) -> str:
    [c] = app.containers(s["id"])
    code, out = c.exec_run(["sh", "-c", "pgrep -l -P $(tmux display -p -t agent "
                            "'#{pane_pid}') | cut -d' ' -f2"])  # as the container's user
    return " ".join(out.decode().split()) if code in (0, 1) else f"({code}) {out.decode()}"


def pane(app: Appliance, s: dict[str, Any]) -> str:
    """The agent's terminal mode and screen, for a failure's message."""
    [c] = app.containers(s["id"])
    mode = c.exec_run(["sh", "-c", 'stty -a -F "$(tmux display -p -t agent "#{pane_tty}")"'])
    screen = c.exec_run(["tmux", "capture-pane", "-p", "-t", "agent"]).output.decode()
    return f"its mode:\n{mode.output.decode()}\nits screen:\n{screen[-1200:]}"


def wait_terminal(app: Appliance, s: dict[str, Any], want: str | Callable[[str], bool],
                  what: str, timeout: float = 30) -> None:
    seen: list[str] = []

    def there() -> bool:
        seen.append(terminal(app, s))
        return want(seen[-1]) if callable(want) else seen[-1] == want

    try:
        wait_for(there, timeout=timeout, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the terminal ran {sorted(set(seen))}; "
                             f"{pane(app, s)}") from None


def wait_agent(app: Appliance, s: dict[str, Any], what: str) -> None:
    wait_terminal(app, s, lambda ran: ran.startswith(("claude", "node")), what, timeout=60)


def waiting(app: Appliance) -> list[str]:
    """The sessions the list's waiting filter shows."""
    return [s["name"] for s in app.client().get("/api/sessions", filter="waiting")["sessions"]]


def test_health_send_interrupt_and_restart_the_agent(agents: Appliance, repo: Path) -> None:
    agents.cli("create", "--repo", str(repo), "--name", "doctor", "--prompt", "wait",
               "--skip-permissions")
    s = agents.wait_phase("doctor", "running", timeout=120)
    wait_agent(agents, s, "the agent to start")
    report = wait_for(lambda: (r := checkup(agents, "doctor"))["ok"] and r, timeout=60,
                      what="a healthy checkup")
    seen = verdicts(report)
    assert {k: seen[k] for k in ("container", "workspace", "agent", "proxy", "hooks")} == {
        "container": "ok", "workspace": "ok", "agent": "ok", "proxy": "ok", "hooks": "ok"}
    assert report["suggested"] is None
    warnings = {a["verb"]: a["warning"] for a in report["actions"]}
    assert "Discards uncommitted work" in warnings["recreate-fresh"]

    # The agent exits (as when it crashes): the terminal is left to a shell. A command typed
    # for the agent that it never read (it hung, then died) is thrown away, not run by that
    # shell: the agent is stopped, the line typed, then the agent killed.
    [c] = agents.containers(s["id"])
    transcript = transcript_path(home=CONTAINER_HOME, workdir="/workspace", session_id=s["id"])
    wait_for(lambda: c.exec_run(["grep", "-q", '"content":"wait"', transcript]).exit_code == 0,
             timeout=60, what="the prompt in the transcript")
    typed = "touch /workspace/typed-for-the-agent"
    killed = c.exec_run(["sh", "-c", "echo keep > /workspace/kept.txt; "
                                     "pkill -STOP -x 'claude|claude.exe' && "
                                     f"tmux send-keys -t agent -l {typed!r} && "
                                     "tmux send-keys -t agent Enter && "
                                     f"{UNREAD} {len(typed) + 1} && "
                                     "pkill -KILL -x 'claude|claude.exe'"],
                        user=f"{AGENT_UID}:{AGENT_UID}")
    assert killed.exit_code == 0, killed.output.decode()
    wait_terminal(agents, s, "", "the agent to exit")
    # Its start script said so before leaving the shell: the status is exited, and the
    # session waits for a person to restart it.
    gone = wait_for(lambda: (x := agents.session("doctor"))["agent_status"] == "exited" and x,
                    timeout=30, what="the status to say the agent exited")
    assert gone["agent_state"] == "exited" and "waiting" in gone["filters"]
    assert waiting(agents) == ["doctor"]
    listed = agents.cli("list").stdout
    assert "! doctor: the agent exited; restart it: clauderon restart-agent doctor" in listed
    report = checkup(agents, "doctor")
    assert verdicts(report)["agent"] == "fail" and report["suggested"] == "restart-agent"
    text = agents.cli("health", "doctor").stdout
    assert "suggested: clauderon restart-agent doctor" in text

    # Once the terminal is that shell's (its prompt shows), a message for the agent is
    # refused rather than typed there, where it would run as commands; interrupt is Ctrl-C
    # to what the person runs there.
    def prompt() -> bool:
        [c] = agents.containers(s["id"])
        out = c.exec_run(["tmux", "capture-pane", "-p", "-t", "agent"]).output.decode()
        after = out.partition("keeps the terminal open")[2]
        return re.search(r"agent@\S+:\S*\$", after) is not None  # the shell's prompt

    try:
        wait_for(prompt, timeout=30, what="the shell's prompt")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {pane(agents, s)}") from None
    # The killed agent had the terminal in its raw mode, where Ctrl-C is a plain key: the
    # shell that takes over put it back, so the interrupt below reaches what runs there.
    refused = agents.cli("send", "doctor", "touch /workspace/sent-to-a-shell", check=False)
    assert refused.returncode != 0
    assert "agent is not running" in refused.stderr
    assert "clauderon restart-agent doctor" in refused.stderr
    typed = c.exec_run(["tmux", "send-keys", "-t", "agent", "sleep 600", "Enter"],
                       user=f"{AGENT_UID}:{AGENT_UID}")  # as a person attached types
    assert typed.exit_code == 0, typed.output.decode()
    wait_terminal(agents, s, "sleep", "sleep to run")
    agents.cli("interrupt", "doctor")
    wait_terminal(agents, s, "", "sleep to be interrupted")

    # Restart the agent: same container, workspace kept, the checkup healthy again.
    refused = agents.cli("restart-agent", "doctor", check=False, input="n\n")
    assert refused.returncode == 1 and "turn under way is cut short" in refused.stderr
    assert terminal(agents, s) == ""  # declined: nothing done
    # Killed before its first message was written, an agent leaves a transcript of settings
    # only (made so here): the restart starts the conversation again, its prompt sent once
    # more, instead of failing to resume a conversation that never began. The settings-only
    # file is kept aside.
    cut = c.exec_run(["sed", "-i", '/"type":"user"/,$d', transcript],
                     user=f"{AGENT_UID}:{AGENT_UID}")
    assert cut.exit_code == 0, cut.output.decode()
    assert agents.session("doctor")["agent_status"] == "exited"  # declined: still exited
    restarted = json.loads(agents.cli("restart-agent", "doctor", "-y", "--json").stdout)
    assert restarted["agent_status"] == "unknown"  # until the new agent's hooks speak
    wait_agent(agents, s, "the agent to start again")
    assert c.exec_run(["test", "-s", f"{transcript}.unstarted"]).exit_code == 0
    wait_for(lambda: c.exec_run(["grep", "-q", '"content":"wait"', transcript]).exit_code == 0,
             timeout=60, what="the prompt sent again")
    after = agents.session("doctor")
    assert after["backend_id"] == s["backend_id"]
    assert after["agent_status"] != "exited" and after["agent_state"] != "exited"
    reports: list[dict[str, Any]] = []

    def agent_ok() -> bool:
        reports.append(checkup(agents, "doctor"))
        return verdicts(reports[-1])["agent"] == "ok"

    try:
        wait_for(agent_ok, timeout=30, what="the agent's check to pass")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {reports[-1]['checks']}; the terminal ran "
                             f"{terminal(agents, s)!r}; {pane(agents, s)}") from None
    [c] = agents.containers(s["id"])
    assert c.exec_run(["cat", "/workspace/kept.txt"]).output.decode().strip() == "keep"
    for never in ("typed-for-the-agent", "sent-to-a-shell"):
        assert c.exec_run(["test", "-e", f"/workspace/{never}"]).exit_code == 1, never
