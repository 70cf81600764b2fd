"""The timeline's commits: what the agent committed on its session branch, read safely.

The workspace is the agent's repository, so git never runs with it as its git directory:
like :mod:`appliance.changes`, the branch's tip is read as hex
(:func:`appliance.workspaces.read_tip`) and fetched, as the diff's commit is, into a shadow
that borrows the user's objects only (:func:`appliance.branchsync.checked_shadow`: each
object named from its content, no more than one sync brings in), and ``git log`` runs there
through :mod:`appliance.hostgit` (the owner's uid, no hooks, no config of the agent's). The
commits listed are those on the branch since it forked from its base, at most
:data:`MAX_COMMITS` (the newest), and git walks no further down the branch than it must to
find them (:func:`log_argv`). Commit dates are the agent's to write: they order, clamped,
and never hide.

A multi-repo session's branches (one per repository) are one source: :func:`interleave`
merges them by their clamped dates, each repository's own order kept, and every commit says
which repository it is in (``repo``; a further repository's key carries its mount, since two
repositories may share a commit).

A commit's position is its index from the oldest listed (1, 2, ...), so the cursor holds as
long as the agent only adds commits (dated now, in any repository); a rewritten branch, or a
commit the agent dated into the past, is listed as it now stands.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from appliance import branchsync, hostgit, repos, workspaces
from appliance.multirepo import RepoView
from appliance.repos import RepoInfo
from appliance.sessions import Session
from appliance.timeline import Batch, Entry, Source, clamp, plain, title

MAX_COMMITS = 1000
#: The log's bytes read at most: the agent writes the messages, of any length.
LOG_LIMIT = 8 << 20
#: How long the log may take: it runs under the API's readers limiter, which every session's
#: transcript and timeline share, and an agent can make host git wait (a FIFO where an
#: object should be) until this passes.
LOG_SECONDS = 5.0
_FORMAT = "%H %ct%n%an <%ae>%n%B"
_HEX = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


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


def log_argv(*, base: bool, floor: str) -> list[str]:
    """The log of the branch's newest :data:`MAX_COMMITS` commits in topological order, down
    to the base (when there is one) and to ``floor``, the commit :data:`MAX_COMMITS` first
    parents below the tip (when there is one: a hex id). No commit ``floor`` reaches is
    among those listed (each comes after its :data:`MAX_COMMITS` descendants on the
    first-parent line), and without it git walks the whole branch to order it: a million
    commits took it past its deadline, and the timeline showed none."""
    stops = (["^base"] if base else []) + ([f"^{floor}"] if _HEX.fullmatch(floor) else [])
    return ["log", "-z", f"--max-count={MAX_COMMITS}", "--topo-order", "--no-color",
            f"--format={_FORMAT}", "head", *stops, "--"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BranchLog:
    """One repository's commits on the session branch, newest first (:func:`branch_log`)."""

    view: RepoView
    commits: tuple[tuple[str, datetime | None, str, str], ...]


def branch_log(repo: RepoInfo, workspace: Path, view: RepoView, branch: str,
               scratch: Path, *, max_bytes: int) -> BranchLog:
    """The session branch's commits in one repository since it forked from its base, read
    from its tip checked (:func:`appliance.branchsync.checked_shadow`): a pack of the
    agent's whose index gave a commit of the branch the content of another had the log show
    that one, and not the commit the branch holds. Copied up to ``max_bytes``, within
    :data:`LOG_SECONDS`."""
    tip = workspaces.read_tip(workspace, branch)
    if tip is None:
        return BranchLog(view=view, commits=())
    base = repos.base_commit(repo, view.base_ref)
    with branchsync.checked_shadow(repo, workspace, scratch, {"head": tip},
                                   {"base": base} if base else {}, branch=branch,
                                   max_bytes=max_bytes, timeout=LOG_SECONDS) as gitdir:
        def git(args: list[str], limit: int | None = None) -> subprocess.CompletedProcess[bytes]:
            return hostgit.run(args, owner=repo.owner, cwd=gitdir, env={"GIT_DIR": str(gitdir)},
                               check=False, limit=limit, timeout=LOG_SECONDS,
                               memory=hostgit.READ_MEMORY)

        below = git(["rev-parse", "--verify", "--quiet", f"head~{MAX_COMMITS}^{{commit}}"])
        floor = below.stdout.strip().decode("ascii", "replace") if below.returncode == 0 else ""
        proc = git(log_argv(base=bool(base), floor=floor), limit=LOG_LIMIT)
    out = proc.stdout
    if len(out) > LOG_LIMIT:  # the agent writes the messages: whole commits up to the bound
        return BranchLog(view=view, commits=tuple(parse_log(out[:out.rfind(b"\0", 0,
                                                                           LOG_LIMIT) + 1])))
    return BranchLog(view=view, commits=tuple(parse_log(out)) if proc.returncode == 0 else ())


def interleave(logs: Sequence[BranchLog], *, low: datetime,
               high: datetime) -> list[tuple[RepoView, tuple[str, datetime | None, str, str]]]:
    """Every repository's commits in one order, oldest first (pure). Each repository's own
    order (its topology) is kept; between repositories the newer clamped date goes later, so
    a commit made now lands at the end and the positions before it hold. A tie goes to the
    repository listed first (the primary)."""
    left = [list(log.commits) for log in logs]  # newest first: pop(0) is the newest
    out = []
    while any(left):
        i = max((n for n, rest in enumerate(left) if rest),
                key=lambda n: (clamp(left[n][0][1], low=low, high=high), -n))
        out.append((logs[i].view, left[i].pop(0)))
    out.reverse()
    return out


def commits(logs: Sequence[BranchLog], session: Session, before: int | None, *,
            now: datetime) -> Batch:
    """The session branches' commits before position ``before``, all in one batch; each
    labelled with its repository when the session has more than one."""
    ordered = interleave(logs, low=session.created_at, high=now)[-MAX_COMMITS:]
    count = len(ordered)
    end = count + 1 if before is None else min(before, count + 1)
    several = bool(session.extra_repos)
    entries = []
    for index, (view, (sha, when, author, message)) in enumerate(
            ordered[:max(0, end - 1)], start=1):
        where = f" · {view.label}" if several else ""
        entries.append(Entry(
            source=Source.COMMIT, pos=index,
            ts=clamp(when, low=session.created_at, high=now),
            key=f"c{sha}" if view.primary else f"c{view.key}:{sha}",
            kind="commit", title=title(message) or sha[:12],
            text=plain(f"{sha[:12]} · {author}{where}\n{message.strip()}"),
            trusted_time=False, repo=view.key))
    return Batch(source=Source.COMMIT, entries=tuple(entries), end=end, start=0,
                 exhausted=True)
