"""An agent's exit as the real API and reconciler record it: plain containers, each hook sent
with the session's own hook token as its start script sends it. The status is ``exited``
and the session waits for a person (the list's filter, the CLI's note, the health count);
starting a stopped session or recreating its container starts a new agent, and the status
no longer says exited; a print-mode session that has completed stays completed, not an
agent to restart, when its start script then says ``Exited``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.integration.test_http_input import raw_hook
from tests.support.agent_app import create
from tests.support.appliance import Appliance, wait_for


def waiting(app: Appliance) -> list[str]:
    return [s["name"] for s in app.client().get("/api/sessions", filter="waiting")["sessions"]]


def test_an_exited_agent_waits_for_a_person_until_a_new_one_starts(
        appliance: Appliance, repo: Path) -> None:
    create(appliance, repo, "gone")
    appliance.hook("gone", "PreToolUse")
    assert waiting(appliance) == []
    appliance.hook("gone", "Exited")
    s = appliance.session("gone")
    assert (s["agent_status"], s["agent_state"]) == ("exited", "exited")
    assert waiting(appliance) == ["gone"]
    listed = appliance.cli("list").stdout
    assert "! gone: the agent exited; restart it: clauderon restart-agent gone" in listed
    assert appliance.client().get("/api/health")["sessions"]["agent_exited"] == 1

    # Stopped, it keeps what it last said; started, a new agent runs.
    appliance.cli("stop", "gone")
    assert appliance.wait_phase("gone", "stopped")["agent_status"] == "exited"
    assert waiting(appliance) == []
    appliance.cli("start", "gone")
    assert appliance.wait_phase("gone", "running")["agent_status"] == "unknown"

    # Its container recreated: a new agent too.
    appliance.hook("gone", "Exited")
    old = appliance.session("gone")["backend_id"]
    appliance.cli("recreate", "gone", "-y")

    def recreated() -> dict[str, Any] | None:
        s = appliance.session("gone")
        done = s["phase"] == "running" and s["backend_id"] not in (None, old)
        return s if done else None

    s = wait_for(recreated, timeout=120, what="gone to be recreated")
    assert s["agent_status"] == "unknown" and waiting(appliance) == []


def test_a_completed_print_session_is_not_an_agent_to_restart(
        appliance: Appliance, repo: Path) -> None:
    appliance.cli("create", "--repo", str(repo), "--name", "once", "--print",
                  "--prompt", "answer once")
    appliance.wait_phase("once", "running")
    # Its start script: the one answer out, Completed; then the agent's exit.
    appliance.hook("once", "Completed")
    appliance.hook("once", "Exited")
    s = appliance.wait_phase("once", "completed", timeout=60)
    assert (s["desired"], s["agent_status"]) == ("completed", "idle")
    assert s["filters"] == ["completed"]
    events = appliance.client().get(f"/api/sessions/{s['id']}/events")["events"]
    said = [(e["payload"]["hook"], e["payload"]["session"]["agent_status"])
            for e in sorted(events, key=lambda e: e["id"]) if e["kind"] == "hook"]
    assert said == [("Completed", "idle"), ("Exited", "idle")]


def own_hook(event: str) -> str:
    """A bash script that POSTs ``event`` for the agent's own session with its own hook
    token, from its environment, as its hook script does (bash's /dev/tcp: the image has no
    curl)."""
    body = f"/tmp/hook-{event}"
    return (f"printf '{{\"session_id\":\"%s\",\"event\":{{\"type\":\"{event}\"}}}}' "
            f"\"$CLAUDERON_SESSION_ID\" > {body}\n"
            + raw_hook(body, {"Content-Type": "application/json"}))


def test_an_agent_whose_session_is_over_cannot_say_it_waits_for_a_person(
        appliance: Appliance, repo: Path) -> None:
    """A print-mode agent ends its session with ``Completed``; its container runs on until
    the reconciler stops it. In that moment the agent, in its container, says it needs an
    approval: the session is over, so it says nothing to anyone (no "needs your approval"
    on a completed session, no notification for it); the hook is answered and recorded."""
    appliance.cli("create", "--repo", str(repo), "--name", "over", "--print",
                  "--prompt", "answer once")
    s = appliance.wait_phase("over", "running")
    [container] = appliance.containers(s["id"])
    # "That moment" held open: the reconciler would stop the container between the two
    # hooks on a slow run, and the second would never be sent.
    appliance.stop("reconciler")
    script = own_hook("Completed") + own_hook("PermissionRequest")
    out = container.exec_run(["bash", "-c", script], user="1000:1000").output.decode()
    assert re.findall(r"HTTP/1.1 (\d+)", out) == ["204", "204"], out  # the container ran
    appliance.start("reconciler")
    s = appliance.wait_phase("over", "completed", timeout=60)
    assert (s["desired"], s["agent_status"]) == ("completed", "idle"), s
    assert waiting(appliance) == []


def test_the_health_counts_an_exited_agent_as_the_lists_show_it(
        appliance: Appliance, repo: Path) -> None:
    """An agent that exited after its model failed shows as exited (restart it), not as a
    failing model, in the list; the health's counts say the same, not both."""
    from appliance import controlstore
    from appliance.store import Store

    create(appliance, repo, "spent")
    appliance.hook("spent", "Exited")
    store = Store.open(appliance.settings.db_path)  # where the proxy writes it
    try:
        with store.transaction() as conn:
            controlstore.set_model_errors(store, conn, {appliance.session("spent")["id"]:
                                                        "the model answered 401"})
    finally:
        store.close()
    assert appliance.session("spent")["agent_state"] == "exited"
    counts = appliance.client().get("/api/health")["sessions"]
    assert (counts["agent_exited"], counts["model_failing"]) == (1, 0), counts
