"""What the reconciler needs from a compute backend (Docker today, Kubernetes next).

Backends speak in :class:`WorkloadSpec` (what to run, derived purely from a session by
:mod:`appliance.contract`) and :class:`Observed` (what is there, found *by label*, never
from memory). Nothing Docker-specific leaks past this protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

LABEL_SESSION = "clauderon.session"
LABEL_MANAGED = "clauderon.managed"
LABEL_INSTANCE = "clauderon.instance"
LABEL_NAME = "clauderon.name"
#: The host folders a Docker container of ours is made with (JSON ``[source, target,
#: read-only]`` rows): labels are set at create and never change, so a pass without the spec
#: compares a container's mounts with it exactly.
LABEL_MOUNTS = "clauderon.mounts"
#: The version that made a workload (a container, a pod), written at create: what a
#: workload lacking containment is said to be (:func:`remade_because`).
LABEL_MADE_BY = "clauderon.made-by"


def remade_because(missing: list[str], labels: Mapping[str, object] | None, *, this: str,
                   how: str) -> str:
    """Why a workload that lacks ``missing`` is made again, in words true of how it came to
    lack it: made by another version (its :data:`LABEL_MADE_BY` among ``labels``; none: one
    from before the label), or made by ``this`` one and changed since (``how``: what can
    change it)."""
    lacking = "; ".join(missing)
    made_by = (labels or {}).get(LABEL_MADE_BY)
    if made_by and str(made_by) == this:
        return f"changed after this version made it ({how}): it lacks {lacking}"
    return f"made by an older version without this version's containment: {lacking}"


class RunState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"  # created, exited, paused: present but not running
    DEAD = "dead"  # removal in progress or broken


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecFile:
    """A file the workload gets read-only at ``path`` (Kubernetes: from the session's
    Secret; Docker writes these through exec after start instead)."""

    path: str
    content: bytes
    mode: int = 0o444


@dataclass(frozen=True, slots=True, kw_only=True)
class CloneSpec:
    """A workspace made inside the cluster: the repository's remote cloned through the
    proxy, the session branch checked out (from the remote when it is there already, else
    at ``start``, the base's commit)."""

    remote_url: str
    branch: str
    start: str
    base: str


#: ``(step, message)``: a create's progress, shown to the person waiting for it.
Progress = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecResult:
    """What a command run inside a workload left behind."""

    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""


class Terminal(Protocol):
    """A live terminal inside a workload (``tmux attach``): bytes both ways, resizable."""

    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes:
        """The next output bytes; ``b""`` once the terminal has ended."""

    async def resize(self, rows: int, cols: int) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSpec:
    session_id: str
    name: str
    image: str
    labels: Mapping[str, str]
    env: Mapping[str, str]
    mounts: tuple[Mount, ...]
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    workdir: str
    user: str
    cpu: float | None = None
    memory: str | None = None
    command: tuple[str, ...] | None = None
    extra_hosts: Mapping[str, str] = field(default_factory=dict)
    #: The one network the workload joins; None: no network at all. The defaults below
    #: are the locked-down ones, so a spec that forgets them is contained, not open.
    network: str | None = None
    #: Where the engine's embedded DNS forwards names it does not know itself.
    dns: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ("ALL",)
    cap_add: tuple[str, ...] = ()
    no_new_privileges: bool = True
    pids_limit: int | None = None
    #: Kubernetes only: the workspace is cloned in the cluster (no host mounts at all), and
    #: these files are mounted read-only from the session's Secret.
    clone: CloneSpec | None = None
    files: tuple[SpecFile, ...] = ()
    #: Docker only, the warm start (:mod:`appliance.agents.prestart`): root-owned files
    #: written into the created container before its first start, and the script it runs
    #: first at every start (then the image's own entrypoint and command).
    prestart: tuple[SpecFile, ...] = ()
    entry: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    session_id: str
    backend_id: str
    name: str
    state: RunState
    image: str
    detail: str = ""
    #: Which backend found it (``docker``, ``kubernetes``): orphans are removed there.
    kind: str = "docker"
    #: Why it runs without this version's containment (made by an older version, or changed
    #: after it was made), so is made again; empty when it has it.
    uncontained: str = ""
    #: Why what confines it from outside (a pod's NetworkPolicy) is not this version's, so
    #: is replaced (no restart needed); empty when it is.
    loose: str = ""


class Backend(Protocol):
    """A compute backend: every operation the API and the reconciler use, and nothing of
    Docker or Kubernetes past it. Every method is idempotent where the operation allows it."""

    kind: str
    #: Where the engine (or cluster API) is, for health reports and error messages.
    url: str
    #: Whether ``exec`` can run as root (Docker); when not (Kubernetes: the pod is non-root
    #: with no way up), the files a boot writes as root come in the spec, read-only.
    root_exec: bool

    async def ping(self) -> None:
        """Raise BackendUnavailable when the engine cannot be reached."""

    async def list_workloads(self) -> list[Observed]:
        """Every workload of this appliance instance, found by label."""

    async def create(self, spec: WorkloadSpec) -> str:
        """Create (not start) the workload; return its backend id."""

    async def start(self, backend_id: str, *, progress: Progress | None = None) -> None:
        """Start the workload and wait until it runs (``progress`` hears the steps)."""

    async def contain(self, backend_id: str) -> None:
        """What confines the running workload from outside (Kubernetes: its NetworkPolicy)
        made as this version makes it, without a restart."""

    async def stop(self, backend_id: str) -> None: ...

    async def remove(self, backend_id: str) -> None:
        """Remove the workload; a missing one is not an error."""

    async def forget(self, backend_id: str) -> None:
        """Remove what the backend keeps for the session besides its workload (Kubernetes:
        the volume, Secret and NetworkPolicy; Docker keeps nothing: its workspace is the
        host's). Called once the session is deleted; a missing one is not an error."""

    async def image_exists(self, image: str) -> bool:
        """Whether ``image`` can be run without fetching it (a create's early check)."""

    async def disk_use(self) -> dict[str, int]:
        """Bytes each session's workload keeps on the engine's own disk beyond its image (a
        container's writable layer: what the agent wrote outside its workspace, ``/tmp``
        included), by session id; empty where the engine keeps none (Kubernetes: the
        workspace is the volume). Slow with many files: asked when the disk is full."""

    async def name_holder(self, workload: str) -> str | None:
        """What already holds the name ``workload`` on the engine, said with what to do;
        None when the name is free. The engine's names are its own, not this
        instance's: another appliance on the same engine, or a person's own container,
        may hold one (a create's early check, so nothing is made only to fail)."""

    async def rename(self, backend_id: str, name: str) -> None:
        """Give the workload the engine name ``name`` (Docker: one made before its name
        became the session's id); a backend whose workloads cannot be renamed refuses."""

    async def attach_command(self, backend_id: str) -> list[str]:
        """The argv a local terminal runs to attach to the workload's console."""

    def terminal_command(self, backend_id: str, argv: list[str]) -> list[str]:
        """The argv a local terminal runs to use ``argv`` inside the workload interactively."""

    async def exec(self, backend_id: str, argv: list[str], *, stdin: bytes | None = None,
                   user: str | None = None, seconds: float | None = None) -> ExecResult:
        """Run ``argv`` in the running workload (as ``user``, default its own) to the end,
        or fail when it has not ended within ``seconds`` (default: the backend's own limit).
        The deadline is the exec's own: a caller's ``fail_after`` cannot stop its thread."""

    async def open_terminal(self, backend_id: str, argv: list[str], *, rows: int,
                            cols: int) -> Terminal:
        """Run ``argv`` in the workload on a new TTY and stream it."""

    def frozen(self, backend_id: str) -> AbstractAsyncContextManager[None]:
        """The workload's processes held still while the host reads its tree by path (the
        diff's git), so the agent cannot swap a folder for a symlink under the reader."""

    async def thaw(self) -> None:
        """Let go every hold ``frozen`` left behind (the API calls it as it starts: it alone
        holds workloads still, so one left held is a crash's)."""
