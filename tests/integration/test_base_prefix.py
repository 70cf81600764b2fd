"""The hostile agent against another session's view, through the user's object store, from
inside a real session container as uid 1000.

A session's base may be typed as a commit's short name. The diff and the timeline resolved
that name again in the user's repository on every read, and every session's sync brings
its commits into that repository: an agent that made a commit whose name begins the same
(a few seconds of hashing for five hex digits, minutes for seven) and committed it on its
own branch made the name ambiguous there, so the other session's base was "gone". Its diff
was then of its work tree against its own HEAD (its commits not shown), and its timeline
listed the person's whole history as the session's commits. A base given as an object's
name is now kept as the full commit id when the session is admitted.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import user_git
from tests.integration.test_containment_git import synced
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance

PREFIX = 5


def test_a_neighbours_commit_named_like_a_short_base_changes_no_view(
        app: Appliance, repo: Path) -> None:
    (repo / "history.txt").write_text("the person's earlier work\n")
    user_git(repo, "add", "history.txt")
    user_git(repo, "commit", "-qm", "PERSONS-OWN-HISTORY")
    user_git(repo, "commit", "-q", "--allow-empty", "-m", "tip")
    short = user_git(repo, "rev-parse", "HEAD")[:PREFIX]
    planter = create(app, repo, "planter")
    app.cli("create", "--repo", str(repo), "--name", "victim", "--prompt", "p", "--base", short)
    victim = app.wait_phase("victim", "running")
    _, out = in_container(app, victim, "echo mine > victim.txt && git add victim.txt && "
                                       "git commit -qm VICTIMS-WORK && git rev-parse HEAD")
    synced(app, repo, victim, out.split()[-1])

    # The planter's commit whose name begins like the victim's base, on its own branch.
    _, out = in_container(app, planter, f"""python3 - <<'EOF'
import hashlib, subprocess
git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True,
                                check=True).stdout.strip()
head, tree = git("rev-parse", "HEAD"), git("rev-parse", "HEAD^{{tree}}")
who = "a <a@b> 1 +0000"
for n in range(1 << 30):
    body = f"tree {{tree}}\\nparent {{head}}\\nauthor {{who}}\\ncommitter {{who}}\\n\\n{{n}}\\n"
    data = body.encode()
    if hashlib.sha1(b"commit %d\\0" % len(data) + data).hexdigest().startswith("{short}"):
        break
made = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], input=data,
                      capture_output=True, check=True).stdout.decode().strip()
git("update-ref", "refs/heads/{planter['branch']}", made)
print("planted", made)
EOF""")
    planted = out.split("planted ")[1].split()[0]
    assert planted.startswith(short)
    synced(app, repo, planter, planted)

    diff = app.client().get(f"/api/sessions/{victim['id']}/diff")
    page = app.client().get(f"/api/sessions/{victim['id']}/timeline")
    titles = [i["title"] for i in page["items"] if i["kind"] == "commit"]
    assert (diff["files"], titles) == (
        [{"status": "A", "path": "victim.txt"}], ["VICTIMS-WORK"]), json.dumps(page)[:1000]
