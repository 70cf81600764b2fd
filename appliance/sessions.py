"""The Session record, its phases and the transitions between them (pure).

Theory of operation
-------------------
A session has two state fields. ``desired`` is what a person asked for (written by the API):
``running``, ``stopped``, ``archived`` or ``deleted``. ``phase`` is what the reconciler last
observed and did (written by the reconciler, and by the API only when it accepts a request):

    creating -> running <-> stopped
    running | stopped -> archived -> running
    creating | running | stopped | archived -> completed -> archived | deleting   (print)
    any -> deleting -> (row removed)
    any -> failed        (with ``status_reason``; retry or delete)

``completed`` is where a print-mode session ends: its agent answered once and exited, the
start script reported it (a ``Completed`` hook), the API asked for ``completed``, and the
reconciler stopped the container and never makes another. Its workspace, branch and
transcript stay until it is archived or deleted.

:func:`check_transition` is the single place that says which phase changes are legal;
the store refuses any other. ``agent_status`` comes from the agent's hooks and is
independent of the phase.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import NewType

from appliance.errors import Conflict, InvalidInput
from appliance.pullstate import PullStatus

SessionId = NewType("SessionId", str)

NAME_MAX = 40
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"
_NAME_RE = re.compile(NAME_PATTERN)
BRANCH_PREFIX = "clauderon/"
CONTAINER_PREFIX = "clauderon-"


class Phase(StrEnum):
    CREATING = "creating"
    RUNNING = "running"
    STOPPED = "stopped"
    ARCHIVED = "archived"
    DELETING = "deleting"
    FAILED = "failed"
    #: A print-mode session whose agent answered and exited (no compute, nothing recreated).
    COMPLETED = "completed"


class Desired(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"
    ARCHIVED = "archived"
    DELETED = "deleted"
    #: Asked for by the print-mode agent's end (its ``Completed`` hook), never by a person.
    COMPLETED = "completed"


class AgentStatus(StrEnum):
    UNKNOWN = "unknown"
    WORKING = "working"
    WAITING_APPROVAL = "waiting_approval"
    WAITING_INPUT = "waiting_input"
    IDLE = "idle"
    #: The agent's process ended (crashed, killed, or quit) and its terminal is a shell:
    #: nothing more happens until a person restarts it (its start script says so).
    EXITED = "exited"


def status_at_start(status: AgentStatus) -> AgentStatus:
    """The status as a new agent process starts in the session's terminal (a recreated or
    restarted container): "exited" no longer holds; any other status describes the
    conversation the new agent resumes, until its hooks say more."""
    return AgentStatus.UNKNOWN if status is AgentStatus.EXITED else status


class AccessMode(StrEnum):
    READ_WRITE = "read-write"
    READ_ONLY = "read-only"


class Agent(StrEnum):
    CLAUDE = "claude"
    CODEX = "codex"
    GEMINI = "gemini"
    #: A terminal agent defined in ``config.toml`` (``[agents.custom.<name>]``); the
    #: session's ``custom_agent`` names which.
    CUSTOM = "custom"


class BackendKind(StrEnum):
    DOCKER = "docker"
    KUBERNETES = "kubernetes"


class Rebuild(StrEnum):
    """A recreate a person asked for (the reconciler carries it out, then clears it)."""

    CONTAINER = "container"  # a new container; workspace and agent home kept
    FRESH = "fresh"  # also a new workspace from the branch and a new agent home
    IMAGE = "image"  # a new container from the newest build of the session's image


_ALLOWED: dict[Phase, frozenset[Phase]] = {
    Phase.CREATING: frozenset({Phase.RUNNING, Phase.STOPPED, Phase.DELETING, Phase.FAILED,
                               Phase.COMPLETED}),
    # Running or stopped -> creating: a person asked for the container to be recreated.
    Phase.RUNNING: frozenset({Phase.STOPPED, Phase.ARCHIVED, Phase.DELETING, Phase.FAILED,
                              Phase.COMPLETED, Phase.CREATING}),
    Phase.STOPPED: frozenset({Phase.RUNNING, Phase.ARCHIVED, Phase.DELETING, Phase.FAILED,
                              Phase.COMPLETED, Phase.CREATING}),
    # Archived -> completed: a print session unarchived, its agent done before it was marked.
    Phase.ARCHIVED: frozenset({Phase.RUNNING, Phase.STOPPED, Phase.DELETING, Phase.FAILED,
                               Phase.COMPLETED}),
    # A delete the person asked for goes on until the session is gone: nothing undoes it.
    Phase.DELETING: frozenset(),
    # A failed session can be retried (back to creating) or deleted.
    Phase.FAILED: frozenset({Phase.CREATING, Phase.DELETING}),
    # A completed session is kept, archived or deleted; it never runs again as itself.
    Phase.COMPLETED: frozenset({Phase.ARCHIVED, Phase.DELETING}),
}


def can_transition(old: Phase, new: Phase) -> bool:
    return old == new or new in _ALLOWED[old]


def check_transition(old: Phase, new: Phase) -> None:
    if not can_transition(old, new):
        raise Conflict(f"a session cannot go from {old} to {new}")


def validate_name(name: str) -> str:
    """Names become a branch, a container and a DNS label: keep them boring."""
    if not name:
        raise InvalidInput("the session name is empty", field="name")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"the session name {name[:50]!r} is {len(name)} characters; the "
                           f"limit is {NAME_MAX}", field="name")
    if not _NAME_RE.fullmatch(name):
        raise InvalidInput(f"the session name {name!r} may only hold lowercase letters, "
                           "digits and inner hyphens (like fix-flaky-test)", field="name")
    return name


def new_session_id() -> SessionId:
    return SessionId(str(uuid.uuid4()))


def utcnow() -> datetime:
    return datetime.now(UTC)


def branch_for(name: str) -> str:
    return BRANCH_PREFIX + name


def container_name_for(name: str) -> str:
    return CONTAINER_PREFIX + name


def docker_name_for(session_id: str) -> str:
    """A Docker session's container name: its id, never its name. The engine's DNS on the
    sessions' network answers every container's name to every other (reverse lookups of
    its address included, inter-container traffic off or not), and a session's name is
    made from its prompt; its id tells a neighbour nothing."""
    return CONTAINER_PREFIX + session_id


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtraRepo:
    """A further repository of a multi-repo session (:mod:`appliance.multirepo`): the user's
    repository at ``repo_path``, its base, and the session's own repository for it at
    ``worktree_path``, mounted at ``/workspace/<mount>``. Its session branch has the
    session's branch name."""

    mount: str
    repo_path: str
    base_ref: str
    worktree_path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    id: SessionId
    name: str
    repo_path: str
    subdirectory: str = ""
    worktree_path: str
    branch: str
    base_ref: str
    agent: Agent = Agent.CLAUDE
    model: str | None = None
    backend: BackendKind = BackendKind.DOCKER
    image: str
    cpu: float | None = None
    memory: str | None = None
    access_mode: AccessMode = AccessMode.READ_WRITE
    initial_prompt: str = ""
    skip_permissions: bool = False
    phase: Phase = Phase.CREATING
    desired: Desired = Desired.RUNNING
    agent_status: AgentStatus = AgentStatus.UNKNOWN
    status_reason: str | None = None
    backend_id: str | None = None
    proxy_token_hash: str = ""
    hook_token_hash: str = ""
    attempts: int = 0
    retry_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    #: The proxy's controls (``appliance.egress``, ``appliance.budgets``): the session's own
    #: egress mode (None: the configured default), the last honeytoken alert until a person
    #: clears it, and why its model requests are refused while a budget is spent.
    egress_mode: str | None = None
    alert: str | None = None
    budget_exceeded: str | None = None
    #: The branch on its remote: what was pushed, its pull request, CI and review.
    pull: PullStatus | None = None
    #: A recreate a person asked for, until the reconciler has done it.
    rebuild: Rebuild | None = None
    #: Why its model requests fail, as the proxy last saw them (``appliance.modelhealth``);
    #: None once one succeeds.
    model_error: str | None = None
    #: The daily workflow: plan before editing; answer once and end (``completed``); which
    #: ``config.toml`` agent a ``custom`` session runs; a title and description made from
    #: the prompt (a person may edit them; shown escaped everywhere: they are data).
    plan_mode: bool = False
    print_mode: bool = False
    custom_agent: str | None = None
    title: str = ""
    description: str = ""
    #: Further repositories (multi-repo sessions); the primary is ``repo_path``.
    extra_repos: tuple[ExtraRepo, ...] = ()
    #: Its repositories on GitHub (``owner/repo``): the GitHub remotes of its repositories
    #: when it was made, the only ones its writes there reach (``proxy/ownrepos.py``).
    github_repos: tuple[str, ...] = ()

    @property
    def container_name(self) -> str:
        """What the session's Kubernetes pod and volume are named (and kept named: a
        volume outlives its pod)."""
        return container_name_for(self.name)

    @property
    def workload_name(self) -> str:
        """The engine's name of the session's workload: a Docker container is named by the
        session's id (:func:`docker_name_for`), a pod by :attr:`container_name`."""
        if str(self.backend) == BackendKind.KUBERNETES:
            return self.container_name
        return docker_name_for(self.id)
