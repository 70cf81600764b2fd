"""Multi-repo sessions: the further repositories of one session (pure).

Theory of operation
-------------------
A session works in 1 to :data:`MAX_REPOS` repositories. The first, the *primary*, is the
session's ``repo_path`` as always: its workspace is ``/workspace`` and the agent's working
directory. Each further one (:class:`appliance.sessions.ExtraRepo`) has a *mount name*, its
own base, and its own per-session repository at ``<worktrees>/<session>.repos/<mount>``
(a dot never occurs in a session name, so the folder can never be another session's),
mounted at ``/workspace/<mount>``. Every one of them is made, contained, synced and kept
exactly like the primary (:mod:`appliance.workspaces`): the session branch
``clauderon/<name>`` in each user repository is the only ref the session ever moves there.

This module says what a well-formed list of further repositories is (:func:`parse_repos`:
each error names its field, ``repos[i].path`` / ``.name`` / ``.base``) and where things
go; :mod:`appliance.admission` checks them against the world.

Every view of a session (diff, files, timeline) covers each of its repositories, named the
one way :func:`views` gives: the primary is :data:`PRIMARY` (``.``, which no mount can be),
a further one its mount. A client's ``repo`` is only ever looked up among those names
(:func:`select`), never joined into a path: where a repository's workspace lies is the
session record's, written by the appliance at create.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from appliance.contract import WORKSPACE
from appliance.errors import InvalidInput
from appliance.sessions import ExtraRepo, Session

#: How the views name the primary repository (a mount name can never be ``.``).
PRIMARY = "."
#: The primary and at most four more.
MAX_REPOS = 5
MOUNT_MAX = 40
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MOUNT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
#: Names a mount may never take: git's own folder, and what a folder name cannot be.
RESERVED = frozenset({".git", ".", "..", "lost+found"})

#: The ``repos`` member of the create request, as the OpenAPI document publishes it.
REPOS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "maxItems": MAX_REPOS - 1,
    "description": "Further repositories (the primary is repo_path); each is mounted at "
                   "/workspace/<name> on its own session branch",
    "items": {
        "type": "object",
        "required": ["path"],
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string", "description": "Absolute path of a git repository"},
            "name": {"type": "string", "maxLength": MOUNT_MAX,
                     "description": "The mount name (default: the folder's name)"},
            "base": {"type": "string", "description": "Its base (default: its current "
                     "branch)"},
        },
    },
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoRequest:
    """One further repository as asked for: ``name`` may still be the default."""

    path: str
    name: str
    base: str | None


def validate_mount(name: str, field: str) -> str:
    """A mount name is one plain folder name: no ``/``, no ``..``, no leading dot."""
    if not name:
        raise InvalidInput("the mount name is empty", field=field)
    if len(name) > MOUNT_MAX:
        raise InvalidInput(f"the mount name {name[:50]!r} is over {MOUNT_MAX} characters",
                           field=field)
    if name in RESERVED or name.startswith(".") or ".." in name or "/" in name \
            or not _MOUNT_RE.fullmatch(name):
        raise InvalidInput(
            f"the mount name {name!r} must be one plain folder name (letters, digits, "
            "'_', '-', '.'; no '/', no '..', not starting with a dot, not .git)",
            field=field)
    return name


def default_mount(path: str) -> str:
    """The folder's own name, made a valid mount name."""
    raw = PurePosixPath(path.rstrip("/")).name
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", raw).lstrip(".-")[:MOUNT_MAX]
    return cleaned or "repo"


def parse_repos(raw: object) -> tuple[RepoRequest, ...]:
    """The create body's ``repos``: a list of ``{path, name?, base?}``, at most four."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidInput("repos must be a list of {path, name, base}", field="repos")
    if len(raw) > MAX_REPOS - 1:
        raise InvalidInput(f"a session works in at most {MAX_REPOS} repositories (the "
                           f"primary and {MAX_REPOS - 1} more); {len(raw) + 1} were given",
                           field="repos")
    out: list[RepoRequest] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        at = f"repos[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInput(f"{at} must be an object {{path, name, base}}", field=at)
        unknown = sorted(str(k) for k in item if k not in ("path", "name", "base"))
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0][:50]!r} in {at} (known: base, "
                               "name, path)", field=at)
        path, name, base = item.get("path"), item.get("name"), item.get("base")
        if not isinstance(path, str) or not path:
            raise InvalidInput(f"{at}.path is required (an absolute path)",
                               field=f"{at}.path")
        if not path.startswith("/"):
            raise InvalidInput(f"the repo path {path!r} must be absolute", field=f"{at}.path")
        for key, value in (("path", path), ("name", name), ("base", base)):
            if value is not None and not isinstance(value, str):
                raise InvalidInput(f"{at}.{key} must be a string", field=f"{at}.{key}")
            if isinstance(value, str) and _CONTROL.search(value):
                raise InvalidInput(f"{at}.{key} holds a control character", field=f"{at}.{key}")
        mount = validate_mount(name or default_mount(path), f"{at}.name")
        if mount in seen:
            raise InvalidInput(f"the mount name {mount!r} is used twice; give each "
                               "repository its own name", field=f"{at}.name")
        seen.add(mount)
        out.append(RepoRequest(path=path, name=mount, base=base or None))
    return tuple(out)


def extras_dir(worktrees_dir: Path, session_name: str) -> Path:
    """Where a session's further repositories live (one folder per mount)."""
    return worktrees_dir / f"{session_name}.repos"


def extra_repo(worktrees_dir: Path, session_name: str, *, mount: str, repo_root: Path,
               base_ref: str) -> ExtraRepo:
    return ExtraRepo(mount=mount, repo_path=str(repo_root), base_ref=base_ref,
                     worktree_path=str(extras_dir(worktrees_dir, session_name) / mount))


def to_json(extras: Sequence[ExtraRepo]) -> list[dict[str, str]]:
    return [asdict(e) for e in extras]


def from_json(raw: object) -> tuple[ExtraRepo, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(ExtraRepo(mount=str(e["mount"]), repo_path=str(e["repo_path"]),
                           base_ref=str(e["base_ref"]),
                           worktree_path=str(e["worktree_path"])) for e in raw)


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoView:
    """One repository of a session as the views show it."""

    key: str  # what ``?repo=`` takes: PRIMARY, or the mount
    label: str  # what a person reads: the primary's folder name, or the mount
    primary: bool
    repo_path: str
    base_ref: str
    worktree_path: str  # the primary's is the session's (a pod's: see appliance.trees)
    container_path: str  # where the agent sees it


def views(session: Session) -> tuple[RepoView, ...]:
    """Every repository of ``session``, the primary first."""
    primary = RepoView(key=PRIMARY, label=PurePosixPath(session.repo_path).name or PRIMARY,
                       primary=True, repo_path=session.repo_path, base_ref=session.base_ref,
                       worktree_path=session.worktree_path, container_path=WORKSPACE)
    return (primary, *(RepoView(key=e.mount, label=e.mount, primary=False,
                                repo_path=e.repo_path, base_ref=e.base_ref,
                                worktree_path=e.worktree_path,
                                container_path=f"{WORKSPACE}/{e.mount}")
                       for e in session.extra_repos))


def select(session: Session, raw: str | None, *, field: str = "repo") -> RepoView:
    """The repository a client names (``None`` or empty: the primary); 400 naming
    ``field`` for any other name, with the names it could have given."""
    found = views(session)
    if not raw:
        return found[0]
    for view in found:
        if view.key == raw:
            return view
    names = ", ".join(repr(v.key) for v in found)
    raise InvalidInput(f"{session.name} has no repository {raw[:50]!r}; give one of {names} "
                       f"('{PRIMARY}' is the primary, at {WORKSPACE})", field=field)
