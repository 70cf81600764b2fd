"""The Create action: workspace, workload, start, agent — or nothing at all.

Theory of operation
-------------------
A create runs its steps in order, each announced as a progress event (``worktree``,
``container``, ``start``, ``agent``): the session branch in the user's repository and the
session's workspace (:func:`prepare_workspace`), the uploads and home folders, the workload
from the container contract, its start, the agent's boot. Any step that fails undoes what
this create made — the workload, and the workspace if no container ever used it — and the
failure policy decides between back-off and ``failed``; a workload that cannot be removed
keeps what it mounts until it is (:func:`undo`). A create cancelled part-way (the
session was deleted: :meth:`Reconciler._cancel_deleted_creates`) undoes the same, shielded,
so nothing appears after the delete. A recreate (the container vanished) keeps the
workspace and its work, and is rate-limited by back-off.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import trio

from appliance import controlstore, repos, safefs, workspaces
from appliance.agents import runner
from appliance.agents.boot import BootPlan, boot_plan
from appliance.agents.prestart import prestart
from appliance.backends.base import Backend, WorkloadSpec
from appliance.contract import RepoMounts, workload_for
from appliance.credentials import doctor
from appliance.errors import ClauderonError, GitError
from appliance.placeholders import chatgpt_placeholder, placeholder_env
from appliance.reconcile import pods
from appliance.reconcile.deps import Deps
from appliance.reconcile.failures import backoff_seconds
from appliance.reconcile.plan import Create
from appliance.sessions import Agent, AgentStatus, Phase, Session, status_at_start
from appliance.tokens import Purpose, derive_token

log = logging.getLogger(__name__)

UNDO_SECONDS = 30.0


def prepare_workspace(s: Session, repo: repos.RepoInfo) -> None:
    """The session branch in each user repository (made at its base the first time: it
    pins what the workspace borrows), then the workspace on it. Every start is resolved
    before any branch is made, so a base gone from any repository fails the create with
    nothing made in any of them."""
    extras = [(e, repos.repo_facts(e.repo_path)) for e in s.extra_repos]
    starts = [_start(repo, s.branch, s.base_ref),
              *(_start(info, s.branch, e.base_ref) for e, info in extras)]
    made: list[tuple[repos.RepoInfo, str]] = []
    for info, (start, existed) in zip([repo, *(i for _, i in extras)], starts, strict=True):
        if not existed:
            repos.create_branch(info, s.branch, start)
            made.append((info, start))
    primary = Path(s.worktree_path)
    fresh = not workspaces.is_workspace(primary)
    try:
        _workspace(repo, primary, s.branch, starts[0][0], s.base_ref)
        for (e, info), (start, _) in zip(extras, starts[1:], strict=True):
            workspaces.make_owned_dir(Path(e.worktree_path).parent, repo.owner)
            _workspace(info, Path(e.worktree_path), s.branch, start, e.base_ref)
        if extras and fresh:
            # Only in a workspace made just now: an older one is the agent's to shape.
            workspaces.add_mountpoints(primary, [e.mount for e, _ in extras], repo.owner)
    except (ClauderonError, OSError) as exc:
        if extras:
            # A multi-repo create leaves no branch it made behind (each still at its
            # start: nothing has used it); the workspaces go with the failed create.
            for info, start in made:
                repos.delete_branch_at(info, s.branch, start)
        if isinstance(exc, OSError):
            raise GitError(f"could not make the session's repositories: {exc}") from exc
        raise


def _start(repo: repos.RepoInfo, branch: str, base_ref: str) -> tuple[str, bool]:
    """Where the session branch starts: its tip when it exists (a retry or recreate),
    else the base; and whether it already exists."""
    tip = repos.branch_tip(repo, branch)
    if tip is not None:
        return tip, True
    return repos.resolve_ref(repo, base_ref), False


def _workspace(repo: repos.RepoInfo, path: Path, branch: str, start: str,
               base_ref: str) -> None:
    base_branch = base_ref if repos.branch_exists(repo, base_ref) else None
    workspaces.create_workspace(repo, path, branch, start, base_branch=base_branch)


class Marks:
    """When each step of one create began, on the host's monotonic clock (the same clock
    in every process here, so a benchmark can line them up with what it saw); written as
    the session's ``timing`` event when the create ends."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = [("begin", time.monotonic())]

    def __call__(self, step: str) -> None:
        self.marks.append((step, time.monotonic()))

    def payload(self) -> dict[str, object]:
        return {"clock": "monotonic", "marks": [[step, at] for step, at in self.marks]}


async def codex_login(deps: Deps, s: Session) -> dict[str, str] | None:
    """The person's ChatGPT login for a Codex session, as the proxy published it, or None
    (Codex goes with the API key's placeholder)."""
    if s.agent is not Agent.CODEX:
        return None
    raw = await deps.store.run(controlstore.read_meta, deps.store.sync, doctor.CODEX_LOGIN_KEY)
    login = doctor.codex_login(raw)
    return login and {**login, "last_refresh": deps.clock().isoformat(),
                      "placeholder": chatgpt_placeholder(deps.key, s.id)}


async def boot_agent(deps: Deps, s: Session, backend_id: str, *,
                     plan: BootPlan | None = None, mark: runner.Mark | None = None) -> None:
    """Hooks, settings and the agent itself, inside the started workload (``plan``: what
    is left of it after a warm start)."""
    if not deps.settings.start_agents:
        return
    await deps.progress(s, "agent", f"starting {s.agent}")
    backend = deps.backend_for(s)
    if plan is None:
        plan = boot_plan(s, placeholder_env(deps.key, s.id), agents=deps.settings.custom_agents,
                         codex_login=await codex_login(deps, s))
    if not backend.root_exec:
        # No root in the workload: its root files came with the spec, read-only.
        plan = replace(plan, files=tuple(f for f in plan.files if not f.as_root))
    await runner.boot(backend, backend_id, plan, image=s.image, mark=mark)


async def start(deps: Deps, s: Session, backend_id: str) -> None:
    """Start a stopped workload and boot its agent again: running, or failed saying why."""
    s = await agent_starting(deps, s)
    try:
        await deps.backend_for(s).start(backend_id)
        await boot_agent(deps, s, backend_id)
    except ClauderonError as exc:
        await deps.fail(s, exc)
        return
    await deps.update(s, phase=Phase.RUNNING, backend_id=backend_id, status_reason=None)


async def _docker_spec(deps: Deps, s: Session, repo: repos.RepoInfo) -> WorkloadSpec:
    await trio.to_thread.run_sync(prepare_workspace, s, repo)
    await trio.to_thread.run_sync(lambda: (deps.settings.uploads_dir / s.id).mkdir(
        parents=True, exist_ok=True))
    await deps.progress(s, "container", f"creating container {s.workload_name}")
    await trio.to_thread.run_sync(runner.prepare_home, deps.settings.homes_dir / s.id,
                                  repo.owner_uid, repo.owner_gid)
    ca = deps.settings.ca_cert_path
    host = replace(deps.host, ca_cert_path=str(ca) if ca.exists() else None,
                   homes_root=str(deps.settings.homes_dir))
    borrowed = await trio.to_thread.run_sync(_borrowed, repo, s)
    return workload_for(
        s, host=host,
        repo=RepoMounts(borrowed_objects=borrowed,
                        owner_uid=repo.owner_uid, owner_gid=repo.owner_gid),
        proxy_token=derive_token(deps.key, s.id, Purpose.PROXY),
        hook_token=derive_token(deps.key, s.id, Purpose.HOOK),
        placeholders=placeholder_env(deps.key, s.id),
    )


def _borrowed(repo: repos.RepoInfo, s: Session) -> tuple[str, ...]:
    """Every object folder the session's repositories borrow (each mounted read-only)."""
    dirs = [str(d) for d in repos.borrowed_object_dirs(repo.objects_dir)]
    for e in s.extra_repos:
        info = repos.repo_facts(e.repo_path)
        dirs += [str(d) for d in repos.borrowed_object_dirs(info.objects_dir)]
    return tuple(dict.fromkeys(dirs))


async def warm(deps: Deps, s: Session, spec: WorkloadSpec
               ) -> tuple[WorkloadSpec, BootPlan | None]:
    """The warm start on Docker (:mod:`appliance.agents.prestart`): the boot's files go into
    the created container and its entry starts the agent; what is left runs after start."""
    if not (deps.settings.start_agents and deps.settings.warm_start):
        return spec, None
    plan = boot_plan(s, placeholder_env(deps.key, s.id), agents=deps.settings.custom_agents,
                     codex_login=await codex_login(deps, s))
    pre = prestart(plan)
    return replace(spec, prestart=pre.files, entry=pre.entry), pre.after_start(plan)


async def create(deps: Deps, a: Create) -> None:
    s = a.session
    backend = deps.backend_for(s)
    marks = Marks()
    created: str | None = None
    fresh_workspace = False
    settled = False
    try:
        if a.recreate:
            await deps.event(s, "drift", {"attempt": s.attempts + 1,
                                          "reason": "the container is missing; recreating it"})
        fresh_workspace = await _fresh_workspace(s)
        spec, after_start = await _spec(deps, a, s, marks)
        marks("container")
        created = await backend.create(spec)
        if a.start:
            s = await agent_starting(deps, s, working=_working_from_start(deps, a, s))
            await _start_and_boot(deps, backend, s, created, plan=after_start, marks=marks)
        settled = True
    except ClauderonError as exc:
        settled = True
        if left := await undo(deps, a, created, remove_workspace=fresh_workspace):
            exc.message = f"{exc.message}; {left}"
        await deps.fail(s, exc, what="creating")
        return
    finally:
        if not settled:  # cancelled: the session was deleted while it was being made
            await undo(deps, a, created, remove_workspace=fresh_workspace)
    attempts = s.attempts + 1 if a.recreate else 0
    retry_at = None
    if a.recreate:
        p = deps.policy
        delay = backoff_seconds(attempts, p.backoff_seconds, p.backoff_max_seconds)
        retry_at = deps.clock() + timedelta(seconds=delay)
    marks("settled")
    await deps.update(s, phase=Phase.RUNNING if a.start else Phase.STOPPED, backend_id=created,
                      status_reason=None, attempts=attempts, retry_at=retry_at)
    await deps.event(s, "timing", marks.payload())


async def remade(deps: Deps, s: Session) -> str:
    """A new container for the running session ``s``, whose old one was removed (made by an
    older version, or changed after it was made): made from today's spec on its worktree and
    home, started and booted; its id. One that fails to start is removed; the workspace is
    kept (the agent's work)."""
    a = Create(session=s, start=True, recreate=True)
    spec, after_start = await _spec(deps, a, s, Marks())
    backend = deps.backend_for(s)
    created = await backend.create(spec)
    settled = False
    try:
        await _start_and_boot(deps, backend, s, created, plan=after_start, marks=Marks())
        settled = True
    finally:
        if not settled:
            await undo(deps, a, created, remove_workspace=False)
    return created


async def _fresh_workspace(s: Session) -> bool:
    """Whether a failed create may remove the workspace: one this create makes (its folder
    is gone). A folder that stands is kept whatever its ``.git`` holds, a never-running
    session's too: a container of an earlier attempt may have run on it (one its undo could
    not remove), and the files in it are the agent's. On Kubernetes the workspace is on its
    volume: new when the session never had a workload."""
    if pods.on_kubernetes(s):
        return s.backend_id is None
    return not await trio.to_thread.run_sync(os.path.lexists, s.worktree_path)


async def _spec(deps: Deps, a: Create, s: Session,
                marks: Marks) -> tuple[WorkloadSpec, BootPlan | None]:
    """The workload to create (its workspace made on the way), and on a warm start what is
    left of the agent's boot once it has started."""
    repo = await trio.to_thread.run_sync(repos.repo_facts, s.repo_path)
    if pods.on_kubernetes(s):
        await deps.progress(s, "volume", f"creating the volume {s.container_name} "
                            f"(the workspace on {s.branch}, cloned in the cluster)")
        return await pods.pod_spec(deps, s, repo), None
    marks("worktree")
    await deps.progress(s, "worktree", f"creating the workspace on {s.branch}")
    spec = await _docker_spec(deps, s, repo)
    return await warm(deps, s, spec) if a.start else (spec, None)


async def agent_starting(deps: Deps, s: Session, *, working: bool = False) -> Session:
    """Record the status a new agent starts with, before it starts (its first hook then
    always comes after): ``working`` when it gets its prompt with no hook to say so, else
    :func:`~appliance.sessions.status_at_start` of the last one."""
    status = AgentStatus.WORKING if working else status_at_start(s.agent_status)
    return s if status is s.agent_status else await deps.update(s, agent_status=status)


def _working_from_start(deps: Deps, a: Create, s: Session) -> bool:
    """Codex has no prompt or tool hooks (only a notify when a turn ends): it is working
    from the moment it gets the prompt. Said before the start (its entry may start it),
    so its end-of-turn notify always comes after."""
    return (not a.recreate and deps.settings.start_agents and s.agent is Agent.CODEX
            and bool(s.initial_prompt))


async def _start_and_boot(deps: Deps, backend: Backend, s: Session, created: str, *,
                          plan: BootPlan | None, marks: Marks) -> None:
    """Start the created workload and boot its agent."""
    marks("start")
    await deps.progress(s, "start", "starting the container")

    async def progress(step: str, message: str) -> None:
        await deps.progress(s, step, message)

    await backend.start(created, progress=progress)
    marks("started")
    await boot_agent(deps, s, created, plan=plan, mark=marks)


async def undo(deps: Deps, a: Create, created: str | None, *,
               remove_workspace: bool) -> str | None:
    """Leave nothing behind a failed or cancelled create; never remove a workspace we did
    not just make (a recreated or retried session's workspace holds its work), nor what a
    container that could not be removed mounts (it may run on, the agent in it): the
    workspace and the agent home then stay, and the ``undo_incomplete`` event and the
    returned words (for the session's reason) say so. The container carries the session's
    label: a failed session's is removed by the next pass, a deleted one's by the delete,
    before its workspace; a session tried again takes it up."""
    s = a.session
    with trio.CancelScope(shield=True):
        if (left := await _remove_created(deps, s, created)) is not None:
            await deps.event(s, "undo_incomplete", {"backend_id": created, "reason": left})
            return left
        if not remove_workspace or a.recreate:
            return None
        with trio.move_on_after(UNDO_SECONDS):
            if created is not None:
                try:  # a new session's volume, Secret, policy (nothing on Docker)
                    await deps.backend_for(s).forget(created)
                except ClauderonError as exc:
                    log.warning("could not remove what a failed create made: %s", exc,
                                extra={"session": s.id})
            await trio.to_thread.run_sync(safefs.remove_tree, Path(s.worktree_path))
            for holder in {Path(e.worktree_path).parent for e in s.extra_repos}:
                await trio.to_thread.run_sync(safefs.remove_tree, holder)
            await trio.to_thread.run_sync(safefs.remove_tree, deps.settings.homes_dir / s.id)
    return None


async def _remove_created(deps: Deps, s: Session, created: str | None) -> str | None:
    """The workload a create made removed: None, or why it is still there."""
    if created is None:
        return None
    why = f"the backend did not answer in {UNDO_SECONDS:.0f}s"
    with trio.move_on_after(UNDO_SECONDS):
        try:
            await deps.backend_for(s).remove(created)
            return None
        except ClauderonError as exc:
            why = exc.message
    log.warning("could not remove the container of a failed create: %s", why,
                extra={"session": s.id})
    return (f"its container {s.workload_name} could not be removed ({why}); its workspace "
            "and agent home are kept until it is")
