"""The hostile agent against the diff of what a push sends, with attributes of its own, from
inside a real session container as uid 1000.

git reads ``.gitattributes`` from the work tree it is given, and ``-diff`` (or ``binary``)
has a file diffed as a binary one: named, its lines not shown. An agent that commits a
backdoor beside a ``.gitattributes`` saying ``*.py -diff`` (committed with it, or only left
in its work tree) has its work tree's diff say ``Binary files ... differ`` where the
backdoor's line is; the branch's commit is diffed with no work tree, so no attribute of the
agent's is read for what a push sends, and the line shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_containment_git import synced
from tests.integration.test_diff_undone_commits import BACKDOOR
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance

ATTRIBUTES = {
    "committed": "echo '*.py -diff' > .gitattributes && git add .gitattributes",
    "in the work tree": "mkdir -p .git/info",
}


@pytest.mark.parametrize("where", list(ATTRIBUTES))
def test_the_agents_attributes_hide_no_committed_line(app: Appliance, repo: Path,
                                                      where: str) -> None:
    s = create(app, repo, "attrs")
    _, out = in_container(app, s, f"""
        set -e
        echo "{BACKDOOR}" >> src/app.py
        {ATTRIBUTES[where]}
        git -c user.name=a -c user.email=a@b commit -qam 'docs: fix a typo'
        echo '*.py -diff' > .gitattributes
        echo "commit=$(git rev-parse HEAD)"
        """)
    commit = out.split("commit=")[1].split()[0]
    synced(app, repo, s, commit)
    committed = app.client().get(f"/api/sessions/{s['id']}/diff")["committed"]
    assert committed["commit"] == commit
    assert {"status": "M", "path": "src/app.py", "work_tree": None} in committed["files"]
    assert f"+{BACKDOOR}" in committed["diff"], \
        f"the diff hid the backdoor's line on {s['branch']}: {committed['diff']}"
