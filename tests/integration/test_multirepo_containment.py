"""The files and diff routes on a further repository of a multi-repo session, against the
hostile agent (DESIGN.md, "Containment", invariant 5, and "Multi-repo sessions").

A real appliance runs a session on two repositories; the agent works inside its real
container as uid 1000 in the further one, at ``/workspace/lib``. While the API reads that
repository (``?repo=lib``), the agent swaps folders and files in it for symlinks as fast as it
can — to the appliance's secrets, to ``/``, through ``/proc/self/root``, to the primary's
workspace and to the user's own repository: a read gives the decoy or a refusal, never a
byte from elsewhere. Then it replaces the further repository's ``.git`` with links out: the
diff says that repository cannot be read and shows the primary's all the same.
"""

from __future__ import annotations

import collections
import uuid
from pathlib import Path

from tests.integration.test_files_containment import SWAPPER, check_read
from tests.integration.test_multirepo import three
from tests.support.agent_app import in_container as run_in
from tests.support.appliance import Appliance
from tests.support.hostile import race

__all__ = ["three"]
LIB = "/workspace/lib"


def test_a_folder_swapped_for_a_symlink_in_a_further_repository_leaks_nothing(
        app: Appliance, three: tuple[Path, Path, Path]) -> None:
    app_repo, lib, _ = three
    canary = f"CANARY-{uuid.uuid4().hex}"
    in_user = f"USER-{uuid.uuid4().hex}"
    in_primary = f"PRIMARY-{uuid.uuid4().hex}"
    secrets = app.settings.secrets_dir
    (secrets / "canary.txt").write_text(canary + "\n")
    (lib / "canary.txt").write_text(in_user + "\n")  # the user's own repository's work tree
    never = (canary.encode(), in_user.encode(), in_primary.encode())
    app.cli("create", "--repo", str(app_repo), "--repo", f"{lib}:lib", "--name", "swapper",
            "--prompt", "p")
    s = app.wait_phase("swapper", "running")
    primary = Path(s["worktree_path"])
    (primary / "canary.txt").write_text(in_primary + "\n")  # the primary's, on the host
    further = Path(s["extra_repos"][0]["worktree_path"])
    assert further.parent.name == "swapper.repos"
    run_in(app, s, "mkdir -p swap a/b/swap && echo decoy > swap/canary.txt && "
                   "echo decoy > a/b/swap/canary.txt && echo 'leaf decoy' > leaf.txt && "
                   "echo 'pipe decoy' > pipe.txt && mkfifo pipe-alt", workdir=LIB)
    # Targets are resolved by the host, so they name host paths: the secrets folder, the
    # host's root, the primary's workspace and the user's repository, absolutely, through
    # /proc/self/root and relatively from the further workspace.
    sec, prim, user = str(secrets), str(primary), str(lib)
    far = "../" * 40 + sec.lstrip("/")
    folders = (sec, f"/proc/self/root{sec}", "/", "../../../secrets", far, prim,
               "../../swapper", user, f"/proc/self/root{prim}")
    specs = [(f"{LIB}/swap", f"{LIB}/swap-alt", *folders),
             (f"{LIB}/a/b/swap", f"{LIB}/a/b/swap-alt", *folders),
             (f"{LIB}/leaf.txt", f"{LIB}/leaf-alt", f"{sec}/canary.txt",
              f"{prim}/canary.txt", f"{user}/canary.txt", "../../swapper/canary.txt",
              f"/proc/self/root{sec}/canary.txt"),
             (f"{LIB}/pipe.txt", f"{LIB}/pipe-alt")]  # a regular file swapped for a FIFO
    [container] = app.containers(s["id"])
    argv = ["perl", "-e", SWAPPER, *("\t".join(spec) for spec in specs)]
    http = app.http(timeout=15)
    reads: list[tuple[str, str, object]] = [
        ("files", "swap", ["canary.txt"]), ("file", "swap/canary.txt", "decoy\n"),
        ("files", "a/b/swap", ["canary.txt"]), ("file", "a/b/swap/canary.txt", "decoy\n"),
        ("file", "leaf.txt", "leaf decoy\n"), ("file", "pipe.txt", "pipe decoy\n"),
        ("file", f"swap{sec}/canary.txt", None), ("files", f"swap{prim}", None),
        ("file", "swap/canary.txt/../../leaf.txt", None),
    ]
    seen: collections.Counter[tuple[str, int]] = collections.Counter()

    def read(n: int) -> None:
        route, rel, decoy = reads[n % len(reads)]
        r = http.get(f"/api/sessions/swapper/{route}", params={"path": rel, "repo": "lib"})
        check_read(r, route, rel, decoy, never, seen)
        if n % 50 == 49:  # the diff reads the same tree through git, as the owner
            # (git may find a name gone between its listing and its read: a 400)
            d = http.get("/api/sessions/swapper/diff", params={"repo": "lib"})
            assert d.status_code == 200 or d.json()["code"] == "git_error", d.text
            assert not any(c in d.content for c in never), d.text
            seen[("diff", d.status_code)] += 1

    race(container, argv, primary, read)
    # The positive controls: the reads saw both the decoys and the symlinks; and the same
    # paths are there in the further repository, not the primary.
    assert seen[("file", 200)] and seen[("files", 200)], seen
    assert seen[("symlink", 400)] and seen[("fifo", 400)], seen
    assert http.get("/api/sessions/swapper/file",
                    params={"path": "swap/canary.txt"}).status_code == 404
    assert http.get("/api/sessions/swapper/file",
                    params={"path": "canary.txt"}).json()["text"] == in_primary + "\n"

    # The further repository's git directory and HEAD made links out: its section says it
    # cannot be read, the primary's still shows, and nothing from elsewhere comes back.
    run_in(app, s, "echo primary-change > primary.txt")
    for target in (f"{user}/.git", sec, f"{prim}/.git"):
        run_in(app, s, f"rm -rf .git && ln -s {target} .git", workdir=LIB)
        d = http.get("/api/sessions/swapper/diff")
        assert d.status_code == 200, d.text
        sections = d.json()["repos"]
        assert not any(c in str(sections[1]).encode() for c in never), sections[1]
        assert canary.encode() not in d.content and in_user.encode() not in d.content
        assert [x["repo"] for x in sections] == [".", "lib"]
        assert {"status": "?", "path": "primary.txt"} in sections[0]["files"]
        assert sections[1]["error"] and sections[1]["files"] == [], sections[1]
        r = http.get("/api/sessions/swapper/files", params={"repo": "lib", "path": ".git"})
        assert r.status_code == 400 and "symlink" in r.json()["error"], r.text
        timeline = http.get("/api/sessions/swapper/timeline")
        assert timeline.status_code == 200
        assert canary.encode() not in timeline.content and in_user.encode() not in \
            timeline.content
    user_log = app.cli("diff", "swapper").stdout
    assert canary not in user_log and in_user not in user_log and "! " in user_log
