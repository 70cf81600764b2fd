"""Health and recovery routes: a session's checkup, and what a person can do about it.

``GET /api/sessions/{ref}/health`` gathers the facts (the backend's workloads, the
workspace on the host, one probe run inside the container as its own user, the session's
last model request in the audit log) and :mod:`appliance.checkup` judges them. The
recovery verbs answer at once: ``restart-agent`` and ``interrupt`` act in the container
here; ``recreate``, ``recreate-fresh`` and ``update-image`` only write what a person asked
for (``rebuild``) and the reconciler carries it out (:mod:`appliance.reconcile.rebuild`).
What each loses is the verbs table's ``warning``, served in the health answer so every UI
says it before it asks for confirmation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from quart import Blueprint

from api import browse
from api.context import current
from api.openapi import RouteDoc, documented, err, ok, one_session
from api.session_routes import one, verb_route
from appliance import checkup, trees, verbs, wire, workspaces
from appliance.agents.boot import interrupt_argv, restart_argv
from appliance.backends.base import RunState
from appliance.errors import BackendError, ClauderonError, Conflict
from appliance.quoted import quote
from appliance.sessions import AgentStatus, Session
from appliance.verbs import Verb
from appliance.wire_fields import render

blueprint = Blueprint("recovery", __name__)

#: How many of the session's recent audit lines are searched for its last model request.
AUDIT_LINES = 400
#: Bound on each look at the backend (its workloads, the probe in the container).
PROBE_TIMEOUT = 15.0


async def _facts(s: Session) -> checkup.Facts:
    ctx = current()
    backend = ctx.backend_for(s)
    seen = None
    try:
        with trio.fail_after(PROBE_TIMEOUT):
            mine = [w for w in await backend.list_workloads() if w.session_id == s.id]
        seen = next((w for w in mine if w.backend_id == s.backend_id), mine[0] if mine else None)
    except (ClauderonError, trio.TooSlowError):
        seen = None
    probe = None
    if seen is not None and seen.state is RunState.RUNNING:
        try:
            with trio.fail_after(PROBE_TIMEOUT):
                done = await backend.exec(seen.backend_id, ["sh", "-c", checkup.PROBE],
                                          seconds=PROBE_TIMEOUT)
            probe = checkup.parse_probe(done.stdout.decode(errors="replace"))
        except (ClauderonError, trio.TooSlowError):
            probe = None
    path = Path(s.worktree_path)
    workspace = (not await trio.to_thread.run_sync(trees.workspace_gone, s)
                 if trees.host_workspace(s) else None)
    repository = (await trio.to_thread.run_sync(workspaces.is_workspace, path)
                  if workspace else True)
    tip = (await trio.to_thread.run_sync(workspaces.read_tip, path, s.branch)
           if workspace else None)
    lines = await trio.to_thread.run_sync(browse.audit_lines, ctx.audit, s.id,
                                          AUDIT_LINES)
    return checkup.Facts(workload=seen.state if seen else None,
                         workload_image=seen.image if seen else None, workspace=workspace,
                         tip=tip, agents=ctx.settings.start_agents, probe=probe,
                         model=checkup.last_model_call(lines), repository=repository)


@blueprint.get("/api/sessions/<ref>/health")
@documented(RouteDoc(
    summary="The session's health: container, workspace, agent process, proxy and hook "
            "reachability from inside, last model error; and the recovery actions with "
            "what each loses",
    responses={"200": ok({"$ref": "#/components/schemas/Health"}), "404": err("No such session")}))
async def health(ref: str) -> dict[str, Any]:
    session = await current().resolve(ref)
    return render(wire.HEALTH, checkup.report(session, await _facts(session)))


async def _in_terminal(ref: str, verb: Verb, argv: list[str], what: str,
                       **changes: Any) -> Session:
    """Run ``argv`` in the session's container; once it has worked, record ``verb`` with
    ``changes`` in one write."""
    ctx = current()
    session = await ctx.resolve(ref)
    verbs.check(verb, session)
    assert session.backend_id is not None  # the rule needs a workload
    with trio.fail_after(30):
        done = await ctx.backend_for(session).exec(session.backend_id, argv)
    if done.exit_code != 0:
        said = quote("the container", done.stderr.strip() or done.stdout)
        raise BackendError(f"could not {what} in {session.name}: {said}", retryable=False)
    return await ctx.write(lambda: ctx.store.sync.update_session(
        session.id, event=str(verb), detail=None, **changes))


@blueprint.post("/api/sessions/<ref>/interrupt")
@documented(RouteDoc(
    summary="Press Ctrl-C in the agent's terminal (SIGINT to the agent: the turn under way "
            "stops; the session and the conversation are kept)",
    responses={"202": one_session(), "404": err("No such session"),
               "409": err("No running container")}))
async def interrupt(ref: str) -> tuple[dict[str, Any], int]:
    return one(await _in_terminal(ref, Verb.INTERRUPT, interrupt_argv(), "interrupt the agent"),
               202)


@blueprint.post("/api/sessions/<ref>/restart-agent")
@documented(RouteDoc(
    summary="Restart the agent in its container: " + verbs.RULES[Verb.RESTART_AGENT].warning,
    responses={"202": one_session(), "404": err("No such session"),
               "409": err("No running container")}))
async def restart_agent(ref: str) -> tuple[dict[str, Any], int]:
    if not current().settings.start_agents:
        raise Conflict("this appliance runs no agents ([agents] start = false)")
    # A new agent: whatever the last one's hooks said (that it exited, that it worked on a
    # turn now cut short) no longer holds, until the new one's hooks speak.
    return one(await _in_terminal(ref, Verb.RESTART_AGENT, restart_argv(),
                                  "restart the agent", agent_status=AgentStatus.UNKNOWN), 202)


for _verb, _summary in (
        (Verb.RECREATE, "Recreate the container (workspace and agent home kept)"),
        (Verb.RECREATE_FRESH, "Recreate fresh from the branch's last commit"),
        (Verb.UPDATE_IMAGE, "Recreate the container from the newest build of its image")):
    verb_route(blueprint, _verb, f"{_summary}: {verbs.RULES[_verb].warning}",
               ", or a recreate is under way")
