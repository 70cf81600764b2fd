"""What the agent's files cost the host's diff, from inside a real session container as
uid 1000.

The diff reads at most 2 MiB of git's output, but git computes a file's whole diff before
it writes a line of it, and its memory grows with the file's lines: a file of newlines
(48 MiB here; one write, nothing to compress) took host git past 2 GiB, and one of
500 MiB (git's own bound for a text diff) would take the host's memory. A file larger than
the diff shown is diffed as git diffs a binary file: named, not read into memory.
"""

from __future__ import annotations

from pathlib import Path

from appliance.errors import ClauderonError
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance
from tests.support.peaks import git_peak

MIB = 1 << 20


def test_a_file_of_newlines_costs_the_diff_no_more_than_a_large_file(
        app: Appliance, repo: Path) -> None:
    s = create(app, repo, "lines")
    in_container(app, s, "head -c $((48 << 20)) /dev/zero | tr '\\0' '\\n' > lines.txt && "
                         "echo changed >> README.md")
    with git_peak() as seen:
        diff = app.client().get(f"/api/sessions/{s['id']}/diff")
    assert max(seen) < 256 * MIB, f"host git grew to {max(seen) // MIB} MiB"
    assert {"status": "?", "path": "lines.txt"} in diff["files"], diff["files"]
    assert "Binary files /dev/null and b/lines.txt differ" in diff["diff"], diff["diff"][:300]
    assert "+changed" in diff["diff"]


def test_a_sparse_file_git_converts_whole_costs_the_diff_a_bounded_heap(
        app: Appliance, repo: Path) -> None:
    """A file of no size on disk (sparse: the agent says how large) whose attributes name a
    ``working-tree-encoding``: git converts it whole in memory, past any threshold, some
    eleven bytes for each one the file says it holds (192 MiB took it past 2 GiB). Its diff
    fails instead (the agent breaks only its own), and the host's memory is not taken."""
    s = create(app, repo, "sparse")
    in_container(app, s, "truncate -s 192M wide.txt && "
                         "echo 'wide.txt working-tree-encoding=UTF-16LE' > .gitattributes")
    with git_peak() as seen:
        try:
            answer = str(app.client().get(f"/api/sessions/{s['id']}/diff"))
        except ClauderonError as exc:
            answer = exc.message
    assert max(seen) < 600 * MIB, f"host git grew to {max(seen) // MIB} MiB"
    assert "Out of memory" in answer, answer[:300]
