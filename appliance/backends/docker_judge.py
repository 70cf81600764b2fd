"""Whether each running container of ours has this version's containment (the I/O shell
around the pure :func:`~appliance.backends.docker_spec.lacks`).

What a container is made with never changes, so each is inspected once; the networks it is
on do (``docker network connect``), and each listing shows them: a container is judged
again when they change. Where the spec is not at hand, the containment asked is what
every container of ours has: the sessions' network alone, some bound on its processes (not
the one configured now: a new ``pids_limit`` is no reason to restart every running agent),
and none on an engine that keeps none (no pids cgroup: it drops every limit, and every
container would be made again at every pass).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from appliance.backends.docker_spec import Containment, lacks, remade_because

log = logging.getLogger(__name__)


class Judge:
    def __init__(self, network: str | None, *,
                 info: Callable[[], Awaitable[dict[str, Any]]],
                 inspect: Callable[[str], Awaitable[dict[str, Any] | None]]) -> None:
        self._network = network
        self._info = info
        self._inspect = inspect
        #: What each running container lacks, by id, with the networks it was on then.
        self._lacks: dict[str, tuple[frozenset[str], str]] = {}
        #: Whether the engine bounds a container's processes at all (its ``PidsLimit``).
        self._pids_bounded: bool | None = None

    async def containment(self) -> Containment:
        """What a container of ours has, as far as it is known without its spec."""
        if self._pids_bounded is None:
            self._pids_bounded = bool((await self._info()).get("PidsLimit", True))
            if not self._pids_bounded:
                log.warning("this engine bounds no container's processes (no pids cgroup): "
                            "a fork bomb in one agent reaches the host's process table")
        return Containment(network=self._network, pids_bounded=self._pids_bounded)

    def keep(self, ids: Collection[str]) -> None:
        """Forget the containers no longer listed."""
        self._lacks = {k: v for k, v in self._lacks.items() if k in ids}

    async def uncontained(self, backend_id: str, on: frozenset[str]) -> str:
        """Why the running container ``backend_id``, listed on the networks ``on``, is made
        again (empty: it is not)."""
        seen = self._lacks.get(backend_id)
        if seen is None or seen[0] != on:
            attrs = await self._inspect(backend_id)
            missing = lacks(attrs, await self.containment()) if attrs is not None else []
            seen = on, (f"{remade_because(missing, attrs)}; made again on its "
                        "worktree and home") if attrs is not None and missing else ""
            self._lacks[backend_id] = seen
        return seen[1]
