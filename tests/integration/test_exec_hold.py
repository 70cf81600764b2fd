"""An agent that holds the appliance's execs in its container (DESIGN.md, "Containment",
invariant 8: one agent cannot starve the others or the appliance).

The API runs commands in a session's container as the agent's own uid: the health check's
probe, the chat's ``tmux`` calls, interrupt, restart-agent. They talk to the agent's tmux
server, which the agent owns: it stops its server (``kill -STOP``), so every ``tmux`` client
the appliance starts waits for an answer that never comes, and the exec never ends. The
engine's stream stays open and silent; the Docker client reads it with ``poll()`` and no
timeout, in one of the backend's four worker threads, which trio cannot cancel
(``fail_after`` around the probe does nothing). Each health check (or chat message, or
interrupt) of the hostile session then held one of those threads, and its request, for
ever. Every command in a container now has a deadline and an output cap: the hostile
session's checks answer (its probe says nothing), and another session's check answers
beside them. The attack: a stopped tmux server and a person who looks at the session's
health a few times.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance, wait_for

#: The agent's own tmux server (started if the boot did not start one), then stopped.
STOP_TMUX = """
tmux has-session -t agent 2>/dev/null || tmux new-session -d -s agent sleep 1d
pid=$(tmux display -p -t agent '#{pid}')
kill -STOP "$pid"
echo "stopped $pid"
"""


def test_an_agent_stalling_its_execs_holds_no_request_for_ever(
        app: Appliance, repo: Path) -> None:
    hostile = create(app, repo, "holder")
    other = create(app, repo, "bystander")
    out = in_container(app, hostile, STOP_TMUX)[1]
    assert "stopped" in out, out
    pid = out.split("stopped ")[1].split()[0]
    http = app.http(timeout=120)

    def health(sid: str) -> int:
        return http.get(f"/api/sessions/{sid}/health").status_code

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
    try:
        held = [pool.submit(health, hostile["id"]) for _ in range(4)]
        # The four probes stand in the container, each waiting on the stopped server.
        [c] = app.containers(hostile["id"])

        def probes() -> bool:
            done = c.exec_run(["sh", "-c", "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' "
                               "<$f 2>/dev/null; echo; done | grep -c '^tmux display' || true"],
                              user="0:0")
            return int(done.output.decode().strip() or 0) >= 4

        wait_for(probes, timeout=60, what="four probes waiting in the container")
        # A person looks at another session's health: its probe, its container listed.
        quick = app.http(timeout=90)
        answer = quick.get(f"/api/sessions/{other['id']}/health")
        assert answer.status_code == 200, answer.text
        # And the hostile session's own checks answer too (its probe says nothing).
        assert [f.result(timeout=120) for f in held] == [200] * 4
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for c in app.containers(hostile["id"]):
            c.exec_run(["kill", "-CONT", pid], user="1000:1000")
