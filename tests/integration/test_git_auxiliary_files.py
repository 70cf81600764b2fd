"""The hostile agent against what host git shows and brings in, with git's auxiliary files:
the ones that change what a git reading the repository sees without changing an object,
from inside a real session container as uid 1000.

An agent that committed a backdoor and had it brought in tells its own git another story:
a replace ref gives the backdoor commit the tree and message of a cover commit, a graft and
a ``shallow`` file cut the branch's history at it, ``packed-refs`` names the branch at the
cover commit behind the loose ref. Then it makes the files git would read for commit
graphs, a multi-pack index, a pack's bitmap and reverse index, and the ``info/alternates``
and ``info/http-alternates`` of its objects, FIFOs: a host git that opened one
would wait there, and the diff, the timeline and the sync would all fail. The host reads
none of it (a shadow of ours, a view holding its loose objects and packs alone,
``GIT_NO_REPLACE_OBJECTS``): the diff, the timeline and the sync all see the backdoor
commit as it is, and the next commit comes in on top of it.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import user_git
from tests.integration.test_containment_git import synced
from tests.integration.test_diff_undone_commits import BACKDOOR, backdoored
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance

COVER = """
set -e
fork=$(git rev-parse HEAD~1)
cover=$(git -c user.name=a -c user.email=a@b commit-tree "$fork^{tree}" -p "$fork" \
    -m 'tests: tidy the fixtures')
git replace "$(git rev-parse HEAD)" "$cover"
branch=$(git symbolic-ref --short HEAD)
printf '%s refs/heads/%s\n' "$cover" "$branch" >> .git/packed-refs
git rev-parse HEAD > .git/shallow
mkdir -p .git/info && git rev-parse HEAD > .git/info/grafts
echo "said=$(git log --format=%s -1) $(grep -c curl src/app.py || true) \
$(git show HEAD:src/app.py | grep -c curl || true) $(git log --format=%s | wc -l)"
"""

NEXT_THEN_FIFOS = """
set -e
git -c user.name=a -c user.email=a@b commit -q --allow-empty -m 'docs: more'
echo "next=$(git rev-parse HEAD)"
git repack -adlq
pack=$(ls .git/objects/pack/*.pack)
rm -f .git/objects/info/commit-graph .git/objects/pack/multi-pack-index
mkdir -p .git/objects/info/commit-graphs
for f in .git/objects/info/commit-graph .git/objects/info/commit-graphs/commit-graph-chain \
         .git/objects/info/http-alternates \
         .git/objects/pack/multi-pack-index "${pack%.pack}.bitmap" "${pack%.pack}.rev"; do
  mkfifo "$f"
done
mv .git/objects/info/alternates .git/objects/info/alternates.real
mkfifo .git/objects/info/alternates
"""


def test_replace_refs_grafts_and_the_files_beside_the_objects_change_nothing_the_host_reads(
        app: Appliance, repo: Path) -> None:
    s, commit = backdoored(app, repo, "aux")
    _, out = in_container(app, s, COVER)
    # The control: the agent's own git tells the cover story (the work tree has the
    # backdoor, the commit it shows has not, and the history ends at it).
    assert out.split("said=")[1].split() == ["tests:", "tidy", "the", "fixtures", "1", "0",
                                             "1"], out
    _, out = in_container(app, s, NEXT_THEN_FIFOS)
    after = out.split("next=")[1].split()[0]
    synced(app, repo, s, after)
    assert user_git(repo, "rev-parse", f"{s['branch']}~1") == commit
    assert BACKDOOR in user_git(repo, "show", f"{s['branch']}:src/app.py")

    diff = app.client().get(f"/api/sessions/{s['id']}/diff")
    committed = diff["committed"]
    assert committed["commit"] == after, committed
    assert committed["files"] == [{"status": "M", "path": "src/app.py", "work_tree": None}], \
        f"the diff did not show what {s['branch']} sends: {committed['files']}"
    assert f"+{BACKDOOR}" in committed["diff"]

    page = app.client().get(f"/api/sessions/{s['id']}/timeline", limit="200")
    titles = [i["title"] for i in page["items"] if i["source"] == "commit"]
    assert "tests: tidy the fixtures" not in titles, titles
    assert {"docs: fix a typo", "docs: more"} <= set(titles), titles


def test_alternates_naming_another_sessions_objects_pass_none_of_them_off_as_the_agents(
        app: Appliance, repo: Path) -> None:
    """An agent that names another session's object folder (on the host, where its own
    container cannot reach) in its ``objects/info/alternates`` and points its branch at
    that session's commit, not yet brought in, would have any git that honours the file
    read that work as its own. The diff and the timeline (and the sync, through the same
    checked copy) read the agent's loose objects and packs alone, and find no such
    commit."""
    other = create(app, repo, "victim")
    s = create(app, repo, "borrower")
    app.stop("reconciler")  # nothing brought in: the other session's work is its own alone
    _, out = in_container(app, other, """
        set -e
        echo 'the other session, not yet reviewed' > other.txt && git add other.txt
        git -c user.name=a -c user.email=a@b commit -qm 'the other session'
        echo "commit=$(git rev-parse HEAD)"
        """)
    theirs = out.split("commit=")[1].split()[0]
    objects = Path(other["worktree_path"]) / ".git" / "objects"
    in_container(app, s, f"""
        set -e
        echo {objects} >> .git/objects/info/alternates
        echo {theirs} > .git/refs/heads/{s['branch']}
        """)
    # The control: a git that honours the agent's alternates reads the other session's
    # commit in the agent's repository.
    workspace = Path(s["worktree_path"])
    assert user_git(workspace, "cat-file", "-t", theirs) == "commit"

    r = app.http(timeout=60).get(f"/api/sessions/{s['id']}/diff")
    assert "other.txt" not in r.text and "the other session" not in r.text, r.text
    assert r.status_code == 400 and theirs[:12] in r.json()["error"], r.text
    page = app.client().get(f"/api/sessions/{s['id']}/timeline", limit="200")
    titles = [i["title"] for i in page["items"] if i["source"] == "commit"]
    assert "the other session" not in titles, titles
