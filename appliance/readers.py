"""Where a session's workspace and agent home are read from: one choice, made here.

The API's readers (files, file, diff, transcript) ask :func:`reader_for` for a
:class:`WorkspaceReader` and never look at the backend themselves:

* :class:`HostReader`: the trees are folders of this host, read through
  :mod:`appliance.safefs` (a Docker session's worktree and home; a Kubernetes session's
  volume where ``[kubernetes] volume_root`` says this host sees it). A Docker session's diff
  is the workspace against its fork point, through a shadow git directory
  (:mod:`appliance.changes`), its container held still; a pod's is its fetched branch.
* :class:`PodReader`: a Kubernetes session without a host view of its volume. Its trees are
  read inside its pod through the exec API (:mod:`appliance.podfs`, same contract); its diff
  is of the session branch the appliance fetched into the user's repository (the agent's
  commits, as pushed: work not yet committed is in the pod only).

A multi-repo session's further repositories (Docker only) are folders of this host like its
primary: ``workspace(view)`` and ``diff(view)`` take the :class:`~appliance.multirepo.RepoView`
the caller selected (:func:`appliance.multirepo.select`; ``None``: the primary), whose
workspace path is the session record's, never a client's.

Everything here blocks: callers run it on a worker thread. The pod reader reaches the
backend's async ``exec`` with ``trio.from_thread.run``, so it must be called from a thread
trio started (``trio.to_thread.run_sync``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import trio

from appliance import changes, podfs, repos, safefs, trees, workspaces
from appliance.backends.base import Backend, ExecResult
from appliance.config import Settings
from appliance.contract import CONTAINER_HOME, WORKSPACE
from appliance.errors import Conflict, InvalidInput
from appliance.multirepo import RepoView
from appliance.sessions import Phase, Session

WORKTREE = "the worktree"
HOME = "the agent's home"


class OpenedFile(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, limit: int) -> bytes: ...


class Tree(Protocol):
    """One agent-writable tree, read without following a symlink the agent made."""

    def list_dir(self, parts: tuple[str, ...], *, hidden: frozenset[str] = frozenset(),
                 limit: int = 10_000) -> safefs.Listing: ...

    def open_file(self, parts: tuple[str, ...]) -> AbstractContextManager[OpenedFile]: ...


class WorkspaceReader(Protocol):
    def workspace(self, view: RepoView | None = None) -> AbstractContextManager[Tree]:
        """The workspace of one repository (``None``: the primary); :class:`InvalidInput`
        (the ``absent`` message) when none yet."""

    def home(self) -> AbstractContextManager[Tree]:
        """The agent's home; :class:`InvalidInput` when none yet."""

    def diff(self, view: RepoView | None = None) -> dict[str, Any]:
        """Files and unified diff of one repository (``None``: the primary) against where
        its branch forked from its base."""


# --- on this host ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostFile:
    opened: safefs.OpenFile

    @property
    def path(self) -> str:
        return self.opened.path

    @property
    def size(self) -> int:
        return self.opened.size

    def read_at(self, offset: int, limit: int) -> bytes:
        return safefs.read_at(self.opened, offset, limit)


@dataclass(frozen=True, slots=True)
class HostTree:
    tree: safefs.Tree

    def list_dir(self, parts: tuple[str, ...], *, hidden: frozenset[str] = frozenset(),
                 limit: int = 10_000) -> safefs.Listing:
        return safefs.list_dir(self.tree, parts, hidden=hidden, limit=limit)

    @contextmanager
    def open_file(self, parts: tuple[str, ...]) -> Iterator[OpenedFile]:
        with safefs.open_file(self.tree, parts) as f:
            yield HostFile(f)


@contextmanager
def host_tree(root: Path, *, label: str, absent: str) -> Iterator[Tree]:
    """A folder of this host as a :class:`Tree` (``absent``: the 400 when it is not there)."""
    with safefs.open_tree(root, label=label, absent=absent) as tree:
        yield HostTree(tree)


@dataclass(frozen=True, slots=True, kw_only=True)
class HostReader:
    settings: Settings
    session: Session
    absent: str

    def _root(self, view: RepoView | None) -> tuple[Path, str]:
        if view is None or view.primary:
            return trees.workspace_dir(self.settings, self.session), WORKTREE
        return Path(view.worktree_path), f"the worktree of {view.key}"

    def workspace(self, view: RepoView | None = None) -> AbstractContextManager[Tree]:
        root, label = self._root(view)
        return host_tree(root, label=label, absent=self.absent)

    def home(self) -> AbstractContextManager[Tree]:
        return host_tree(trees.home_dir(self.settings, self.session), label=HOME,
                         absent=self.absent)

    def diff(self, view: RepoView | None = None) -> dict[str, Any]:
        if not trees.host_workspace(self.session):
            # A pod's volume seen here: git walks a tree by path, and a pod cannot be held
            # still while it does (a folder swapped for a link steers it out), so the
            # branch as fetched is read, as in the pod.
            return changes.branch_diff(repos.repo_facts(self.session.repo_path),
                                       self.session.branch, self.session.base_ref)
        root, _ = self._root(view)
        if not workspaces.is_workspace(root):
            raise InvalidInput(self.absent)
        repo_path, base_ref = ((view.repo_path, view.base_ref) if view is not None
                               else (self.session.repo_path, self.session.base_ref))
        return changes.diff(repos.repo_facts(repo_path), root, base_ref,
                            self.settings.shadows_dir / self.session.id,
                            branch=self.session.branch,
                            max_bytes=self.settings.max_sync_mib << 20)


# --- inside the pod ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PodReader:
    backend: Backend
    session: Session
    absent: str

    def _run(self, argv: list[str]) -> ExecResult:
        backend_id = self.session.backend_id
        assert backend_id is not None  # checked by _tree
        return trio.from_thread.run(lambda: self.backend.exec(backend_id, argv))

    @contextmanager
    def _tree(self, root: str, label: str) -> Iterator[Tree]:
        s = self.session
        if s.backend_id is None or s.phase is not Phase.RUNNING:
            raise Conflict(
                f"{s.name} is {s.phase}: its files are read inside its pod, which is not "
                "running; start it, or set [kubernetes] volume_root where this host sees the "
                "cluster's volumes")
        yield podfs.PodTree(run=self._run, root=root, label=label, absent=self.absent)

    def _primary_only(self, view: RepoView | None) -> None:
        if view is not None and not view.primary:  # admission refuses repos on Kubernetes
            raise InvalidInput(f"{self.session.name} runs on Kubernetes, where a session has "
                               "one repository", field="repo")

    def workspace(self, view: RepoView | None = None) -> AbstractContextManager[Tree]:
        self._primary_only(view)
        return self._tree(WORKSPACE, WORKTREE)

    def home(self) -> AbstractContextManager[Tree]:
        return self._tree(CONTAINER_HOME, HOME)

    def diff(self, view: RepoView | None = None) -> dict[str, Any]:
        self._primary_only(view)
        repo = repos.repo_facts(self.session.repo_path)
        return changes.branch_diff(repo, self.session.branch, self.session.base_ref)


def reader_for(settings: Settings, session: Session, backend: Backend | None, *,
               absent: str) -> WorkspaceReader:
    """The reader of ``session``'s trees: on this host when they are here, else in its pod."""
    kube = settings.kubernetes
    if trees.host_workspace(session) or (kube is not None and kube.volume_root is not None):
        return HostReader(settings=settings, session=session, absent=absent)
    if backend is None:
        raise InvalidInput(f"{session.name} runs on Kubernetes, which is not configured on "
                           "this appliance (see [kubernetes] in config.toml)")
    return PodReader(backend=backend, session=session, absent=absent)
