"""The timeline's commits: what the agent committed on its session branch, read safely.

The workspace is the agent's repository, so git never runs with it as its git directory:
like :mod:`appliance.changes`, the branch's tip is read as hex
(:func:`appliance.workspaces.read_tip`) into a shadow (:mod:`appliance.shadow`) that borrows
the workspace's and the user's objects, and ``git log`` runs there through
:mod:`appliance.hostgit` (the owner's uid, no hooks, no config of the agent's). The commits
listed are those on the branch since it forked from its base, at most :data:`MAX_COMMITS`
(the newest). Commit dates are the agent's to write: they order, clamped, and never hide.

A commit's position is its index from the oldest listed (1, 2, ...), so the cursor holds as
long as the agent only adds commits; a rewritten branch is listed as it now stands.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from appliance import hostgit, repos, shadow, workspaces
from appliance.errors import InvalidInput
from appliance.repos import RepoInfo
from appliance.sessions import Session
from appliance.timeline import Batch, Entry, Source, clamp, plain, title

MAX_COMMITS = 1000
_FORMAT = "%H %ct%n%an <%ae>%n%B"


def parse_log(out: bytes) -> list[tuple[str, datetime | None, str, str]]:
    """``git log -z --format=_FORMAT`` output as (sha, date, author, message), newest first;
    a record that does not parse is passed over."""
    found = []
    for record in out.split(b"\0"):
        head, _, rest = record.decode("utf-8", "replace").partition("\n")
        author, _, message = rest.partition("\n")
        sha, _, stamp = head.strip().partition(" ")
        if len(sha) not in (40, 64) or not stamp.isdigit():
            continue
        try:
            when: datetime | None = datetime.fromtimestamp(int(stamp), UTC)
        except (OverflowError, OSError, ValueError):
            when = None
        found.append((sha, when, author, message))
    return found


def commits(repo: RepoInfo, workspace: Path, session: Session, scratch: Path,
            before: int | None, *, now: datetime) -> Batch:
    """The session branch's commits before position ``before``, all in one batch."""
    tip = workspaces.read_tip(workspace, session.branch)
    listed: list[tuple[str, datetime | None, str, str]] = []
    if tip is not None:
        try:
            base = repos.resolve_ref(repo, session.base_ref)
        except InvalidInput:
            base = None  # the base branch is gone from the user's repository
        refs = {"head": tip} | ({"base": base} if base else {})
        objects = (workspace / ".git" / "objects",
                   *repos.borrowed_object_dirs(repo.objects_dir))
        with shadow.shadow_dir(scratch, owner=repo.owner, refs=refs,
                               objects=objects) as gitdir:
            proc = hostgit.run(
                ["log", "-z", f"--max-count={MAX_COMMITS}", "--topo-order", "--no-color",
                 f"--format={_FORMAT}", "head", *(["^base"] if base else []), "--"],
                owner=repo.owner, cwd=gitdir, env={"GIT_DIR": str(gitdir)}, check=False)
        if proc.returncode == 0:
            listed = parse_log(proc.stdout)
    oldest_first = list(reversed(listed))
    count = len(oldest_first)
    end = count + 1 if before is None else min(before, count + 1)
    entries = []
    for index, (sha, when, author, message) in enumerate(oldest_first[:max(0, end - 1)],
                                                        start=1):
        entries.append(Entry(
            source=Source.COMMIT, pos=index,
            ts=clamp(when, low=session.created_at, high=now), key=f"c{sha}",
            kind="commit", title=title(message) or sha[:12],
            text=plain(f"{sha[:12]} · {author}\n{message.strip()}"), trusted_time=False))
    return Batch(source=Source.COMMIT, entries=tuple(entries), end=end, start=0,
                 exhausted=True)
