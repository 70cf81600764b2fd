"""A running workload brought up to this version's containment (after an upgrade).

The plan finds them (:mod:`appliance.reconcile.plan`, from what the backend reads back:
:mod:`appliance.backends.kubernetes_lockdown`, :func:`~appliance.backends.docker_spec.lacks`):
:func:`tighten` replaces what confines a workload from outside (a pod's NetworkPolicy) at
once, with no restart; :func:`remake` makes the workload again (a pod on its volume; a new
Docker container on the same worktree and home, the host's), the agent's work kept, saying
why on the session and in its events, and counting an attempt with back-off, so an engine or
cluster that changes the new one back is not remade in a loop (the plan fails the session
once the attempts run out).
"""

from __future__ import annotations

from datetime import timedelta

from appliance.errors import ClauderonError
from appliance.reconcile import creating, pods
from appliance.reconcile.deps import Deps
from appliance.reconcile.failures import backoff_seconds
from appliance.reconcile.plan import Remake, Tighten
from appliance.sessions import Phase


async def tighten(deps: Deps, a: Tighten) -> None:
    await deps.backend_for(a.session).contain(a.backend_id)
    await deps.event(a.session, "drift", {"attempt": a.session.attempts, "reason": a.reason})


async def remake(deps: Deps, a: Remake) -> None:
    s, bid = a.session, a.backend_id
    attempts = s.attempts + 1
    p = deps.policy
    retry_at = deps.clock() + timedelta(
        seconds=backoff_seconds(attempts, p.backoff_seconds, p.backoff_max_seconds))
    await deps.event(s, "drift", {"attempt": attempts, "reason": a.reason})
    s = await deps.update(s, attempts=attempts, retry_at=retry_at,
                          status_reason=f"restarting: {a.reason}")
    backend = deps.backend_for(s)
    s = await creating.agent_starting(deps, s)
    try:
        await backend.remove(bid)
        if pods.on_kubernetes(s):
            await backend.start(bid)  # the pod again, from its kept spec, on its volume
            await creating.boot_agent(deps, s, bid)
        else:  # a container removed is gone: a new one, on the same worktree and home
            bid = await creating.remade(deps, s)
    except ClauderonError as exc:
        await deps.fail(s, exc, what="remaking")
        return
    await deps.update(s, phase=Phase.RUNNING, backend_id=bid,
                      status_reason=f"restarted: {a.reason}")
