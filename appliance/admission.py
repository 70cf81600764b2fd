"""Admitting a create request: every check against the world, then the new Session.

The API parses a body (:func:`appliance.intake.parse_create`) and hands the request here;
what comes back is a session ready to be inserted (the store then checks the limits in the
same transaction). The checks, in the order a person would want to hear about them: room
on the appliance's disk, the repository (a git checkout, whose owner is not root and can
reach the workspaces folder), the base (a branch, tag or commit of it), the name (free as
a session, as a branch of the repository and as a workspace folder), the backend
(reachable, with the image). The engine is asked while git answers: a create is as slow
as the slower of the two.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import trio

from appliance import hostgit, multirepo, remotes, repos
from appliance.agents import custom
from appliance.audit import room_at
from appliance.backends.base import Backend
from appliance.config import Settings
from appliance.errors import (
    ClauderonError,
    Conflict,
    GitError,
    InvalidInput,
    ServiceUnavailable,
)
from appliance.intake import CreateRequest, new_session, suggest_name
from appliance.sessions import (
    Agent,
    BackendKind,
    ExtraRepo,
    Session,
    branch_for,
)
from appliance.store import AsyncStore, Store

log = logging.getLogger(__name__)


def check_agent(req: CreateRequest, settings: Settings) -> None:
    """A custom agent must be defined, and have a print form for a print-mode create."""
    if req.agent is not Agent.CUSTOM:
        return
    defined = custom.lookup(settings.custom_agents, req.custom_agent)
    if req.print_mode and defined.print_args is None:
        raise InvalidInput(f"the custom agent {defined.name!r} has no print mode: add "
                           f"print_args to [agents.custom.{defined.name}] in config.toml",
                           field="print_mode")


def check_room(settings: Settings) -> None:
    """A new session needs the appliance's disk: refused, saying so, while the disk is
    below the audit log's reserve of bytes or of files (the agents can spend either)."""
    try:
        room = room_at(settings.worktrees_dir)
    except FileNotFoundError:  # not made yet: the create makes it, and says what it meets
        return
    if not room.full:
        return
    files = "" if room.free_files is None else f", room for {room.free_files} files"
    raise ServiceUnavailable(
        f"the appliance's disk is full ({room.free_bytes // 2**20} MiB free{files}): no "
        "session can be made, and every agent's requests are refused until space is freed. "
        "Free space on that disk (`clauderon status` names the sessions using the most; "
        "their workspaces are under its worktrees folder), then try again")


def engine_refusal(answer: ClauderonError | bool, *, image: str,
                   kind: str) -> ClauderonError | None:
    """What the engine's ``answer`` (its error, or whether it has ``image``) refuses, if
    anything: an error is shown beside the backend choice unless it names its own field."""
    if isinstance(answer, ClauderonError):
        if answer.field is None:
            answer.field = "backend"
        return answer
    if answer:
        return None
    return InvalidInput(f"the image {image!r} is not on the {kind.capitalize()} engine; build "
                        "it (`clauderon image build`) or pull it", field="image")


async def admit(req: CreateRequest, *, settings: Settings, store: AsyncStore,
                backends: Mapping[str, Backend], instance_key: bytes) -> Session:
    check_agent(req, settings)
    await trio.to_thread.run_sync(check_room, settings)
    backend = backends[str(req.backend)]
    image = req.image or settings.default_image
    engine: list[ClauderonError | bool] = []
    # Before any git runs there: the agents own what is in the appliance's folder.
    for path, field in ((req.repo_path, "repo_path"),
                        *((w.path, f"repos[{i}].path") for i, w in enumerate(req.repos or ()))):
        await _outside_appliance(path, field, settings=settings, store=store)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_ask_engine, backend, image, engine)
        repo = await trio.to_thread.run_sync(repos.inspect_repo, req.repo_path)
    base = await _primary_base(req, repo, settings)
    name = req.name or suggest_name(req.prompt)
    if await store.run(store.sync.get_by_name, name) is not None:
        raise Conflict(f"a session named {name!r} already exists; pick another name",
                       field="name")
    await _branch_free(repo, name)
    await _folder_free(settings.worktrees_dir / name, name)
    refusal = engine_refusal(engine[0], image=image, kind=backend.kind)
    if refusal is not None:
        raise refusal
    extras = await admit_extras(req, repo, base, name, settings)
    session = new_session(
        req, name=name, repo_root=repo.root, subdirectory=repo.subdirectory, base_ref=base,
        worktrees_dir=settings.worktrees_dir, default_image=settings.default_image,
        default_cpu=settings.default_cpu, default_memory=settings.default_memory,
        instance_key=instance_key, default_plan_mode=settings.default_plan_mode,
        extra_repos=extras)
    session = replace(session, github_repos=await trio.to_thread.run_sync(
        _github_repos, repo, extras))
    # A pod is named after the session (a stranger may hold that name); a Docker
    # container after its new id.
    holder = await backend.name_holder(session.workload_name)
    if holder is not None:
        raise Conflict(holder, field="name")
    return session


async def _ask_engine(backend: Backend, image: str, answer: list[ClauderonError | bool]
                      ) -> None:
    """Whether the engine has ``image`` (or its error) into ``answer``."""
    try:
        await backend.ping()
        answer.append(await backend.image_exists(image))
    except ClauderonError as exc:
        answer.append(exc)


async def _primary_base(req: CreateRequest, repo: repos.RepoInfo, settings: Settings) -> str:
    """The base of the primary ``repo``, once its owner is known to reach the workspaces
    (and, for a pod, that it has a remote to clone)."""
    closed = await trio.to_thread.run_sync(hostgit.owner_can_reach, settings.worktrees_dir,
                                           repo.owner)
    if closed is not None:
        raise InvalidInput(
            f"the owner of {repo.root} (uid {repo.owner_uid}) cannot reach the workspaces "
            f"folder: {closed} is closed to them; make it traversable (chmod o+x {closed}) "
            "or move CLAUDERON_HOME", field="repo_path")
    if str(req.backend) == BackendKind.KUBERNETES:
        # Pods clone the remote: a repository without one is refused now, saying so.
        await trio.to_thread.run_sync(remotes.cluster_remote, repo)
    base = req.base if req.base else await trio.to_thread.run_sync(repos.current_branch,
                                                                     repo)
    return await trio.to_thread.run_sync(repos.kept_base, repo, base)


@contextmanager
def _field(name: str) -> Iterator[None]:
    """An error raised within names the request's field ``name``."""
    try:
        yield
    except ClauderonError as exc:
        exc.field = name
        raise


async def admit_extras(req: CreateRequest, primary: repos.RepoInfo, base: str, name: str,
                       settings: Settings) -> tuple[ExtraRepo, ...]:
    """Each further repository checked like the primary (errors name ``repos[i].<key>``):
    a checkout of its own, the primary's owner (the agent is one uid), its base, its
    session branch free; its mount name hides nothing of the primary's top folder."""
    if not req.repos:
        return ()
    if str(req.backend) != BackendKind.DOCKER:
        raise InvalidInput("multi-repo sessions run on Docker only for now; drop repos or "
                           "choose the docker backend", field="repos")
    commit = await trio.to_thread.run_sync(repos.resolve_ref, primary, base)
    top = await trio.to_thread.run_sync(repos.top_entries, primary, commit)
    roots = {primary.root}
    out: list[ExtraRepo] = []
    for i, want in enumerate(req.repos):
        at = f"repos[{i}]"
        if want.name in top:
            raise InvalidInput(f"the mount name {want.name!r} is already a file or folder at "
                               f"the top of {primary.root}; pick another name",
                               field=f"{at}.name")
        with _field(f"{at}.path"):
            info = await trio.to_thread.run_sync(repos.inspect_repo, want.path)
        if info.root in roots:
            raise InvalidInput(f"{info.root} is already one of this session's repositories",
                               field=f"{at}.path")
        roots.add(info.root)
        if info.owner != primary.owner:
            raise InvalidInput(
                f"{info.root} belongs to uid {info.owner_uid}, the primary repository to uid "
                f"{primary.owner_uid}: the agent works as one user, so every repository of a "
                "session must have the same owner", field=f"{at}.path")
        extra_base: str = want.base if want.base else await trio.to_thread.run_sync(
            repos.current_branch, info)
        with _field(f"{at}.base"):
            extra_base = await trio.to_thread.run_sync(repos.kept_base, info, extra_base)
        await _branch_free(info, name)
        out.append(multirepo.extra_repo(settings.worktrees_dir, name, mount=want.name,
                                        repo_root=info.root, base_ref=extra_base))
    await _folder_free(multirepo.extras_dir(settings.worktrees_dir, name), name)
    return tuple(out)


def appliance_folder(path: str, settings: Settings) -> tuple[Path, str | None] | None:
    """Where ``path`` lies when it is inside the appliance's own folder, and the name of the
    session whose workspace holds it (or None); None when it is outside."""
    where = Path(path).expanduser()
    if not where.is_absolute():
        return None  # inspect_repo says so
    resolved, home = where.resolve(), settings.home.resolve()
    if resolved != home and home not in resolved.parents:
        return None
    work = settings.worktrees_dir.resolve()
    if work not in resolved.parents:
        return resolved, None
    return resolved, resolved.relative_to(work).parts[0].removesuffix(".repos")


async def _outside_appliance(path: str, field: str, *, settings: Settings,
                             store: AsyncStore) -> None:
    """No session is made on a folder of the appliance's own (a session's workspace, an
    agent's home): its agent owns that repository whole, its config and remotes too (a
    remote it added there would be the new session's own GitHub repository)."""
    found = await trio.to_thread.run_sync(appliance_folder, path, settings)
    if found is None:
        return
    at, name = found
    session = await store.run(store.sync.get_by_name, name) if name else None
    instead = (f" (the workspace of session {name}, made on {session.repo_path}): make the "
               f"session on {session.repo_path}" if session is not None else
               ": make the session on your own repository")
    raise InvalidInput(f"{at} is inside the appliance's own folder, where the agents write "
                       f"(its git config and remotes too), so no session is made on it"
                       f"{instead}", field=field)


async def _branch_free(repo: repos.RepoInfo, name: str) -> None:
    """The session branch of ``name`` is not in ``repo`` yet."""
    branch = branch_for(name)
    if await trio.to_thread.run_sync(repos.branch_exists, repo, branch):
        raise Conflict(
            f"the branch {branch} already exists in {repo.root} (kept from an earlier "
            f"session); pick another name, or remove it with `git branch -D {branch}`",
            field="name")


async def _folder_free(path: Path, name: str) -> None:
    """Nothing is at ``path``, where the session ``name`` keeps a workspace."""
    if await trio.to_thread.run_sync(os.path.lexists, path):
        raise Conflict(f"the workspace folder for {name!r} already exists; pick another name",
                       field="name")


def _github_repos(primary: repos.RepoInfo, extras: tuple[ExtraRepo, ...]) -> tuple[str, ...]:
    """The GitHub remotes of the session's repositories: the only ones its writes on GitHub
    reach (``proxy/ownrepos.py``)."""
    found = list(repos.github_remotes(primary.root, primary.owner))
    for extra in extras:
        found += repos.github_remotes(Path(extra.repo_path), primary.owner)
    return tuple(dict.fromkeys(found))


def fill_github_repos(store: Store) -> list[str]:
    """Record the GitHub repositories of each session made before they were recorded (its
    column NULL: until then the proxy lets it write to none), read from its repositories'
    remotes as a create reads them; the names of the sessions filled. A repository that
    cannot be read gives none (safe: the session writes to no repository on GitHub)."""
    filled = []
    for row in store.rows("SELECT id FROM sessions WHERE github_repos IS NULL"):
        session = store.get_session(row["id"])
        if session is None:
            continue
        try:
            found = _github_repos(repos.repo_facts(session.repo_path), session.extra_repos)
        except (GitError, InvalidInput, OSError) as exc:
            log.warning("the GitHub remotes of %s's repository could not be read (%s): it "
                        "writes to no repository on GitHub", session.name, exc,
                        extra={"session": session.id})
            found = ()
        store.update_session(session.id, github_repos=found)
        filled.append(session.name)
    return filled
