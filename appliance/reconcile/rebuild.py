"""The Recreate action: a person asked for the session's container to be made again.

Theory of operation. The verbs ``recreate``, ``recreate-fresh`` and ``update-image``
(:mod:`appliance.verbs`) only write ``rebuild`` on the session; the plan turns it into
:class:`~appliance.reconcile.plan.Recreate`, carried out here, in order:

1. the session's workloads are removed (the agent stops; nothing of the workspace or the
   agent home lives in the container);
2. ``fresh`` only: the workspace's commits are brought into the user's repository one last
   time (:func:`~appliance.reconcile.sync.last_sync`: when that fails the workspace is
   moved to ``kept/``, never lost), then the workspace and the agent home are removed (on
   Kubernetes: the volume); the branch is never touched, so the new workspace starts from
   its last commit;
3. ``rebuild`` is cleared and the phase set to ``creating`` in one write;
4. the reconciler's normal create (:func:`appliance.reconcile.creating.create`) makes the
   workspace (if gone), the container from the session's image — the newest build its tag
   names, which is what ``update-image`` is for — starts it and boots the agent, with every
   containment property of any create, and the failure policy of any create.

A reconciler stopped between 3 and 4 finds a ``creating`` session without a workload on its
next pass: the plan creates it. Stopped before 3, the plan asks for the Recreate again, and
each step is idempotent.
"""

from __future__ import annotations

from pathlib import Path

import trio

from appliance import safefs
from appliance.reconcile import creating, pods, sync
from appliance.reconcile.deps import Deps
from appliance.reconcile.plan import Create, Recreate
from appliance.sessions import Desired, Phase, Rebuild

SAID = {Rebuild.CONTAINER: "recreating the container (workspace and agent home kept)",
        Rebuild.FRESH: "recreating from the branch's last commit: new workspace, new agent "
                       "home, new container",
        Rebuild.IMAGE: "recreating the container from the newest build of its image"}


async def recreate(deps: Deps, a: Recreate) -> None:
    s = a.session
    kind = s.rebuild or Rebuild.CONTAINER
    await deps.progress(s, "recreate", SAID[kind])
    backend = deps.backend_for(s)
    for bid in a.backend_ids:
        await backend.remove(bid)
    if kind is Rebuild.FRESH:
        await deps.progress(s, "worktree", f"bringing {s.branch} in, then removing the "
                            "workspace and the agent home (the branch is kept)")
        await sync.last_sync(deps, s)
        if pods.on_kubernetes(s):
            await backend.forget(s.container_name)
        await trio.to_thread.run_sync(safefs.remove_tree, Path(s.worktree_path))
        await trio.to_thread.run_sync(safefs.remove_tree, deps.settings.homes_dir / s.id)
    s = await deps.update(s, event="recreate", detail={"rebuild": str(kind)}, rebuild=None,
                          phase=Phase.CREATING, attempts=0, retry_at=None, status_reason=None)
    await creating.create(deps, Create(session=s, start=s.desired is Desired.RUNNING,
                                       recreate=False))
