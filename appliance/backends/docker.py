"""The Docker backend: the Docker SDK, called from trio on worker threads.

The SDK is synchronous; every call goes through :meth:`DockerBackend._call`, which runs it
with ``trio.to_thread.run_sync`` behind a CapacityLimiter and translates the SDK's errors
into the error tree (an unreachable engine is :class:`BackendUnavailable`, a refused
operation :class:`BackendError`). Workloads are found by label only: ``clauderon.managed``,
``clauderon.instance`` (one engine can serve several appliances) and ``clauderon.session``.

Before it creates or starts a container the backend ensures the sessions' network and its
firewall (:class:`~appliance.backends.docker_network.SessionNetwork`); a container of ours
that is not on that network alone or not hardened (one made before the lockdown) is
replaced, never adopted or started, and a running one is listed with what it lacks
(``uncontained``), so the reconciler makes it again: no session container runs open.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
import trio

from appliance.backends import docker_exec
from appliance.backends import docker_spec as spec_of
from appliance.backends.base import (
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_SESSION,
    ExecResult,
    Observed,
    Progress,
    RunState,
    Terminal,
    WorkloadSpec,
)
from appliance.backends.docker_archive import tar_of
from appliance.backends.docker_client import SharedClient
from appliance.backends.docker_freeze import Freezer, paused_refusal, unpause_if_paused
from appliance.backends.docker_judge import Judge
from appliance.backends.docker_network import DEFAULT_URL, SessionNetwork, unreachable
from appliance.errors import BackendError, ClauderonError
from appliance.threads import on_thread

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Paused(ClauderonError):
    """The engine refused to run something in the container: it is paused."""


#: How long a command waits for a paused container (a diff holding it still) to run again.
PAUSED_WAIT_SECONDS = 60.0
PAUSED_RETRY_SECONDS = 0.05


class DockerBackend:
    kind = "docker"
    root_exec = True

    def __init__(self, *, url: str | None, instance: str, timeout: float = 60.0,
                 network: SessionNetwork | None = None) -> None:
        self.url = url or DEFAULT_URL
        self.instance = instance
        self.timeout = timeout
        #: The sessions' network, ensured before each create and start (the reconciler's).
        self.network = network
        #: Judges each running container's containment (knowing the sessions' network).
        self._judge = Judge(network.plan.name if network else None,
                            info=lambda: self._call("engine info", lambda c: c.info()),
                            inspect=self.inspect)
        self._client = SharedClient(
            lambda: docker.DockerClient(base_url=self.url, timeout=int(self.timeout)))
        self._limiter = trio.CapacityLimiter(4)
        self._pinging, self._measuring = trio.CapacityLimiter(1), trio.CapacityLimiter(1)
        self._freezer = Freezer(self._call)

    # --- plumbing -------------------------------------------------------------------
    def _translate(self, exc: Exception, what: str) -> ClauderonError:
        if isinstance(exc, docker.errors.ImageNotFound):
            return BackendError(f"{what}: the image is not on this Docker engine "
                                f"({exc.explanation}); build it (`clauderon image build`) or "
                                "pull it", field="image", retryable=False)
        if isinstance(exc, docker.errors.APIError):
            retryable = exc.status_code is None or exc.status_code >= 500
            return BackendError(f"{what}: {exc.explanation or exc}", retryable=retryable)
        if isinstance(exc, (requests.exceptions.ConnectionError, docker.errors.DockerException,
                            requests.exceptions.Timeout, ConnectionError, FileNotFoundError)):
            return unreachable(self.url)
        return BackendError(f"{what}: {exc}")

    async def _call(self, what: str, fn: Callable[[docker.DockerClient], T], *,
                    abandon: bool = False, limiter: trio.CapacityLimiter | None = None) -> T:
        def run() -> T:
            try:
                with self._client.use() as client:
                    return fn(client)
            except ClauderonError:
                raise
            except Exception as exc:
                raise self._translate(exc, what) from exc

        return await on_thread(run, limiter=limiter or self._limiter, abandon=abandon)

    # --- Backend protocol -----------------------------------------------------------
    async def ping(self) -> None:
        await self._call("ping", lambda c: c.ping(), abandon=True, limiter=self._pinging)

    async def _ours(self, what: str, **filters: list[str]) -> list[dict[str, Any]]:
        """The engine's rows of this instance's containers (``filters`` narrow them)."""
        labels = [f"{LABEL_MANAGED}=true", f"{LABEL_INSTANCE}={self.instance}"]
        rows: list[dict[str, Any]] = await self._call(what, lambda c: c.api.containers(
            all=True, filters={"label": labels, **filters}), abandon=True)
        return rows

    async def list_workloads(self) -> list[Observed]:
        rows = await self._ours("list containers")
        out = []
        ids = {row["Id"] for row in rows}
        self._judge.keep(ids)
        for row in rows:
            state = row.get("State", "")
            run_state = (  # paused: running, held still by a read (docker_freeze)
                RunState.RUNNING if state in ("running", "paused")
                else RunState.DEAD if state in ("removing", "dead")
                else RunState.STOPPED
            )
            names = row.get("Names") or ["/"]
            out.append(Observed(
                kind=self.kind,
                session_id=row["Labels"].get(LABEL_SESSION, ""),
                backend_id=row["Id"],
                name=names[0].lstrip("/"),
                state=run_state,
                image=row.get("Image", ""),
                detail=row.get("Status", ""),
                # Judged by the backend that makes the sessions' network (the reconciler's);
                # another (the API's) knows no network to judge a container's by. One a read
                # holds still (paused) is judged once the read ends: made again under the
                # read, it ran unheld while host git read its tree.
                uncontained=await self._judge.uncontained(row["Id"], spec_of.networks(row))
                if state == "running" and self.network is not None else "",
            ))
        return out

    async def create(self, spec: WorkloadSpec) -> str:
        kwargs = spec_of.create_kwargs(spec)
        # The network must exist to create on it; its firewall waits for the start.
        await self._lockdown(spec.network, firewall_too=False)

        def create(c: docker.DockerClient) -> str:
            if spec.entry:
                kwargs.update(spec_of.entry_kwargs(
                    spec, c.api.inspect_image(spec.image)))  # type: ignore[no-untyped-call]
            created = make(c)
            # Before the first start (or again on an adopted one: the same files the exec
            # boot writes as root at every start), resolved inside the container.
            if spec.prestart and not c.api.put_archive(created, "/", tar_of(spec.prestart)):
                raise BackendError(f"could not write the boot files into {spec.name}")
            return created

        def make(c: docker.DockerClient) -> str:
            try:
                container = c.containers.create(spec.image, **kwargs)
            except docker.errors.APIError as exc:
                if exc.status_code == 409:
                    # A container of that name exists: ours (adopt it) or a stranger's.
                    existing = c.containers.get(spec.name)
                    if existing.labels.get(LABEL_SESSION) == spec.session_id:
                        if not spec_of.lacks(existing.attrs, spec_of.containment_of(spec)):
                            return str(existing.id)
                        # Ours but made before the lockdown: replaced, never adopted.
                        existing.remove(force=True)
                        return str(c.containers.create(spec.image, **kwargs).id)
                    raise BackendError(f"a container named {spec.name} already exists and is "
                                       "not this session's; remove it (`docker rm -f "
                                       f"{spec.name}`) or pick another session name",
                                       retryable=False) from exc
                raise
            return str(container.id)

        return await self._call(f"create container {spec.name}", create)

    async def _lockdown(self, network: str | None, *, firewall_too: bool = True) -> None:
        """The network (and, before a start, its firewall) in place."""
        if network is None:
            return
        if self.network is None or self.network.plan.name != network:
            raise BackendError(f"the sessions' network {network} is not this backend's; "
                               "restart the reconciler", retryable=False)
        ensure = self.network.ensure
        await trio.to_thread.run_sync(lambda: ensure(firewall_too=firewall_too),
                                      limiter=self._limiter)

    async def start(self, backend_id: str, *, progress: Progress | None = None) -> None:
        attrs = await self.inspect(backend_id)
        if attrs is not None:
            network = self.network.plan.name if self.network else None
            missing = spec_of.lacks(attrs, await self._judge.containment())
            if missing:
                # Made before the lockdown: never started again. Removed, so the next pass
                # creates the session a new one (its worktree and home live on the host).
                await self.remove(backend_id)
                name = str(attrs.get("Name") or backend_id).lstrip("/")
                why = spec_of.remade_because(missing, attrs)
                raise BackendError(f"container {name} was {why}: removed instead of started; "
                                   "the session gets a new one")
            await self._lockdown(network)
            if await unpause_if_paused(self._call, backend_id, attrs):
                return  # a read's pause outlived its reader (a crash): it runs again
        await self._call("start container", lambda c: c.api.start(backend_id))

    async def contain(self, backend_id: str) -> None:
        return None  # its network and firewall are made at each start (:meth:`_lockdown`)

    def frozen(self, backend_id: str) -> AbstractAsyncContextManager[None]:
        return self._freezer.frozen(backend_id)

    async def thaw(self) -> None:
        for row in await self._ours("list paused containers", status=["paused"]):
            await unpause_if_paused(self._call, row["Id"], {"State": {"Paused": True}})

    async def stop(self, backend_id: str) -> None:
        await self._freezer.outwait(backend_id, "stop")  # a read's hold ends first
        attrs = await self.inspect(backend_id)
        if attrs is not None:  # held past the wait (nobody lets go): undone, then stopped
            await unpause_if_paused(self._call, backend_id, attrs)
        await self._call("stop container", lambda c: c.api.stop(backend_id, timeout=5))

    async def remove(self, backend_id: str) -> None:
        def remove(c: docker.DockerClient) -> None:
            try:
                c.api.remove_container(backend_id, force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code == 409 and "already in progress" in str(exc.explanation):
                    return
                raise

        await self._call("remove container", remove)

    async def forget(self, backend_id: str) -> None:
        """Nothing to forget: a Docker session's workspace and home are the host's."""

    async def inspect(self, backend_id: str) -> dict[str, Any] | None:
        def inspect(c: docker.DockerClient) -> dict[str, Any] | None:
            try:
                result: dict[str, Any] = c.api.inspect_container(backend_id)
            except docker.errors.NotFound:
                return None
            return result

        return await self._call("inspect container", inspect)

    async def image_exists(self, image: str) -> bool:
        def check(c: docker.DockerClient) -> bool:
            try:
                c.api.inspect_image(image)  # type: ignore[no-untyped-call]
            except docker.errors.ImageNotFound:
                return False
            return True

        return await self._call(f"inspect image {image}", check)

    async def disk_use(self) -> dict[str, int]:
        def sizes(c: docker.DockerClient) -> dict[str, int]:
            found = c.api.containers(all=True, size=True,
                                     filters={"label": f"{LABEL_INSTANCE}={self.instance}"})
            return {str(x["Labels"][LABEL_SESSION]): int(x.get("SizeRw") or 0)
                    for x in found if (x.get("Labels") or {}).get(LABEL_SESSION)}

        return await self._call("measure the layers", sizes, abandon=True, limiter=self._measuring)

    async def name_holder(self, cname: str) -> str | None:
        if await self.inspect(cname) is None:
            return None
        return (f"a container named {cname} already exists on the Docker engine and is "
                f"no session of this appliance; remove it (`docker rm -f {cname}`) or "
                "pick another name")

    async def rename(self, backend_id: str, name: str) -> None:
        # The engine's DNS drops the old name with it, a running container's too.
        await self._call(f"rename container {backend_id[:12]} to {name}",
                         lambda c: c.api.rename(backend_id, name))

    def _docker_cli(self) -> list[str]:
        return ["docker"] if self.url == DEFAULT_URL else ["docker", "--host", self.url]

    async def attach_command(self, backend_id: str) -> list[str]:
        return [*self._docker_cli(), "attach", "--detach-keys", "ctrl-q", backend_id]

    def terminal_command(self, backend_id: str, argv: list[str]) -> list[str]:
        """The argv a local terminal runs to use ``argv`` inside the workload interactively."""
        return [*self._docker_cli(), "exec", "-it", backend_id, *argv]

    async def _unfrozen(self, backend_id: str, what: str,
                        start: Callable[[Callable[[], None]], Awaitable[T]]) -> T:
        """``start``, which starts something in the container, once no read holds it still
        (``docker_freeze``), and with no hold beginning before what it started runs (it
        calls what it is given then, or returns). A hold of this process is waited for;
        one that began in between, or another process's, is retried until it ends
        (bounded)."""
        with trio.move_on_after(PAUSED_WAIT_SECONDS):
            while True:
                try:
                    async with self._freezer.starting(backend_id) as running:
                        return await start(running)
                except _Paused:
                    await trio.sleep(PAUSED_RETRY_SECONDS)
        raise BackendError(f"could not {what}: the container has been paused for over "
                           f"{PAUSED_WAIT_SECONDS:.0f}s (`docker unpause` it)")

    async def _refusable(self, what: str, fn: Callable[[docker.DockerClient], T]) -> T:
        """``fn`` on a worker thread, the engine's refusal of a paused container told apart."""
        def attempt(c: docker.DockerClient) -> T:
            try:
                return fn(c)
            except docker.errors.APIError as exc:
                if paused_refusal(exc):
                    raise _Paused(what) from exc
                raise

        return await self._call(what, attempt)

    async def exec(self, backend_id: str, argv: list[str], *, stdin: bytes | None = None,
                   user: str | None = None, seconds: float | None = None) -> ExecResult:
        what = f"run {argv[0]} in the container"

        async def start(running: Callable[[], None]) -> ExecResult:
            # The rest of the run (its output, up to its deadline) lets holds begin.
            def ran() -> None:
                trio.from_thread.run_sync(running)

            return await self._refusable(what, lambda c: docker_exec.run_exec(
                c, backend_id, argv, stdin=stdin, user=user, running=ran, seconds=seconds))

        return await self._unfrozen(backend_id, what, start)

    async def open_terminal(self, backend_id: str, argv: list[str], *, rows: int,
                            cols: int) -> Terminal:
        what = "open a terminal"

        async def start(_: Callable[[], None]) -> tuple[str, trio.abc.Stream, bytes]:
            created: dict[str, Any] = await self._refusable(what, lambda c: c.api.exec_create(
                backend_id, argv, stdin=True, tty=True, environment={"TERM": "xterm-256color"}))
            exec_id = created["Id"]
            stream, pending = await docker_exec.open_exec_stream(self.url, exec_id)
            ok = False
            try:
                await self._call(what, lambda c: docker_exec.wait_running(c, exec_id))
                ok = True
            finally:
                if not ok:
                    await trio.aclose_forcefully(stream)
            return exec_id, stream, pending

        exec_id, stream, pending = await self._unfrozen(backend_id, what, start)

        async def resize(rows: int, cols: int) -> None:
            await self._call("resize the terminal",
                             lambda c: c.api.exec_resize(exec_id, height=rows, width=cols))

        terminal = docker_exec.DockerTerminal(stream, pending, resize)
        try:
            await terminal.resize(rows, cols)
        except ClauderonError:
            await terminal.aclose()
            raise
        return terminal
