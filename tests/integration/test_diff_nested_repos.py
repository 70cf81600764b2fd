"""A repository of the agent's inside its workspace, against the host's diff, from inside a
real session container as uid 1000.

The diff runs host git with the appliance's shadow as its git directory and the workspace
as its work tree, so the workspace's own ``.git`` is never read. But a folder of the
workspace holding a repository of its own is a submodule to that git: committed as one (a
gitlink in the branch's tree) or found by ``add --intent-to-add --all`` (an embedded
repository). To say whether a submodule is "dirty", ``git diff`` starts ``git status`` in
it, with the folder's ``.git`` as its git directory: the agent's config, whose clean
filter runs on every file whose timestamps differ from that repository's index. The
command-line configuration the host passes down turns hooks and fsmonitor off, not filters,
and a ``.gitmodules`` ``ignore = none`` outranks a ``diff.ignoreSubmodules`` setting: only
``--ignore-submodules`` on the command line holds. The test plants both kinds, each with
a clean filter that leaves a mark in a host folder the
container cannot see, reads the diff, and looks for the marks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance

NESTED = """
set -e
for sub in committed loose; do
  git init -q "$sub"
  cd "$sub"
  echo data > data.txt
  git add data.txt && git commit -qm data
  git config filter.evil.clean 'touch {markers}/clean-'"$sub"' /tmp/ran-'"$sub"'; cat'
  echo '* filter=evil' > .gitattributes
  touch -d '2001-01-01' data.txt   # its index no longer matches: status must read it
  cd ..
done
git config -f .gitmodules submodule.committed.path committed
git config -f .gitmodules submodule.committed.url ./committed
git config -f .gitmodules submodule.committed.ignore none
git add .gitmodules committed 2>/dev/null
git commit -qm 'a submodule'
echo changed >> README.md
"""


def test_the_diff_runs_nothing_of_a_repository_nested_in_the_workspace(
        app: Appliance, repo: Path, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    os.chmod(markers, 0o777)
    s = create(app, repo, "nested")
    in_container(app, s, NESTED.format(markers=markers))
    # Positive control: the filter is live for a git run in those repositories (its own
    # index left as it was, so the host's git would find it as stale).
    _, out = in_container(app, s, "for sub in committed loose; do GIT_OPTIONAL_LOCKS=0 "
                                  "git -C $sub status --short >/dev/null 2>&1; done; ls /tmp")
    assert {"ran-committed", "ran-loose"} <= set(out.split()), out
    diff = app.client().get(f"/api/sessions/{s['id']}/diff")
    assert {"status": "M", "path": "README.md"} in diff["files"], diff["files"]
    assert sorted(p.name for p in markers.iterdir()) == [], \
        "host git ran the filter of a repository the agent nested in its workspace"


#: Two repositories nested in the work tree whose HEAD is a FIFO: one a ``.git`` folder,
#: one a ``.git`` file naming another folder of the tree; beside them, a file of the agent's.
WAITING = """
set -e
mkdir -p fifo/.git/objects fifo/.git/refs named/.git-real/objects named/.git-real/refs
mkfifo fifo/.git/HEAD named/.git-real/HEAD
echo 'gitdir: .git-real' > named/.git
echo beside > fifo/beside.txt
echo changed >> README.md
echo new > new.txt
"""


def diffed_around(app: Appliance, repo: Path, name: str, plant: str) -> dict[str, Any]:
    """The diff of a session whose agent ran ``plant`` (which changes README.md and adds
    new.txt beside its traps): answered, with both files, whatever the traps."""
    s = create(app, repo, name)
    in_container(app, s, plant)
    answer = app.http(timeout=300).get(f"/api/sessions/{s['id']}/diff")
    assert answer.status_code == 200, answer.text
    diff: dict[str, Any] = answer.json()
    assert {"status": "M", "path": "README.md"} in diff["files"], diff["files"]
    assert {"status": "?", "path": "new.txt"} in diff["files"], diff["files"]
    return diff


def test_a_repository_nested_with_a_fifo_for_head_holds_no_diff(
        app: Appliance, repo: Path) -> None:
    """Host git asks each untracked folder whether it is a repository by opening its
    ``HEAD``; a FIFO there held the diff (and the agent's container, held still for it)
    for git's whole timeout, and the diff failed. The FIFOs never get a writer here."""
    diff = diffed_around(app, repo, "waiting", WAITING)
    assert "fifo" in diff["note"] and "named" in diff["note"], diff["note"]


#: Nested repositories whose ``HEAD`` is a plain file naming a branch, the branch itself
#: read through a FIFO: the loose ref, ``packed-refs`` (no loose ref), or the ``config``
#: git reads before either. Listing the untracked files reads ``HEAD`` only; adding the
#: folder (a gitlink) resolves the branch.
WAITING_REFS = """
set -e
for sub in loose packed config; do
  mkdir -p $sub/.git/objects $sub/.git/refs/heads
  echo 'ref: refs/heads/main' > $sub/.git/HEAD
done
mkfifo loose/.git/refs/heads/main packed/.git/packed-refs config/.git/config
echo changed >> README.md
echo new > new.txt
"""


def test_a_repository_nested_with_a_fifo_for_its_branch_holds_no_diff(
        app: Appliance, repo: Path) -> None:
    """The walk finds nothing to skip here (each ``HEAD`` is a file), and git's listing of
    the untracked files names each folder as a repository of its own; adding it held the
    diff on the FIFO for git's whole timeout. The FIFOs never get a writer here."""
    diffed_around(app, repo, "refs", WAITING_REFS)


#: A ``.git`` file whose path goes on past a line break: git reads the whole file (only its
#: trailing line breaks dropped), so it names the folder ``real<LF>x``, whose HEAD is a FIFO.
WAITING_SPLIT = """
set -e
d="split/$(printf 'real\\nx')"
mkdir -p "$d/objects" "$d/refs"
mkfifo "$d/HEAD"
printf 'gitdir: real\\nx\\n' > split/.git
echo changed >> README.md
echo new > new.txt
"""


def test_a_repository_named_past_a_line_break_holds_no_diff(
        app: Appliance, repo: Path) -> None:
    """The walk read a ``.git`` file's first line only (``real``, nothing there: no
    repository), while git's listing opened the HEAD of ``real<LF>x``, a FIFO, and waited
    for git's whole timeout. The FIFO never gets a writer here."""
    diff = diffed_around(app, repo, "split", WAITING_SPLIT)
    assert "split" in diff["note"], diff["note"]
