"""The files API against a hostile agent (DESIGN.md, "Containment", invariant 5).

A real appliance runs a plain session of the base image; everything the agent does runs
inside its real container as uid 1000 (``docker exec``). The API runs on the host and reads
the worktree the agent is changing: it must never follow a symlink out, even while a folder
is swapped for one as fast as the agent can, never open a FIFO or socket, never hang, and
answer bad names with a clear 400 or 404, never a 500.
"""

from __future__ import annotations

import collections
import uuid
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from tests.integration.test_files_api import png
from tests.support.appliance import Appliance
from tests.support.hostile import AGENT, agent, race

#: The swapper, run in the container. Each argument is ``link<TAB>alt<TAB>target...``:
#: ``link`` starts as a real folder (or file) and ``alt`` as a symlink; each round exchanges
#: the two names atomically (``renameat2(RENAME_EXCHANGE)``), so ``link`` is a folder half
#: the time and a symlink the other half and never missing; while ``alt`` holds the symlink
#: it is pointed at the next target (with no targets, ``alt`` is left as it was made: a
#: FIFO). Stops at a stop file, or after 120 s whatever happens.
SWAPPER = r"""
use POSIX ();
my %renameat2 = (x86_64 => 316, aarch64 => 276);
my $nr = $renameat2{(POSIX::uname())[4]} or die "no renameat2 number for this machine";
sub exchange { my ($x, $y) = @_; syscall($nr, -100, $x, -100, $y, 2) == 0 or die "$x: $!" }
my @specs = map { [split /\t/] } @ARGV;
for my $s (@specs) { @$s < 3 or symlink $s->[2], $s->[1] or die "$s->[1]: $!" }
open(my $fh, ">", "/workspace/.swapping") or die; close $fh;
my ($n, $end) = (0, time + 120);
until (-e "/workspace/.stop" || time > $end) {
    for my $s (@specs) {
        my ($link, $alt, @targets) = @$s;
        exchange($link, $alt);
        next unless $n % 2 && @targets;  # alt holds the symlink again: repoint it
        my $target = $targets[($n / 2) % @targets];
        symlink $target, "$alt.new" or die; rename "$alt.new", $alt or die;
    }
    $n++;
}
print "$n\n";
"""


@pytest.fixture
def session(appliance: Appliance, http: httpx.Client, repo: Path) -> dict[str, Any]:
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    r = http.post("/api/sessions", json={"repo_path": str(repo), "name": name})
    assert r.status_code == 202, r.text
    return appliance.wait_phase(name, "running")


@pytest.fixture
def container(session: dict[str, Any]) -> Any:
    return docker.from_env(timeout=180).containers.get(session["backend_id"])


def check_read(r: httpx.Response, route: str, rel: str, decoy: object,
               never: tuple[bytes, ...], seen: collections.Counter[tuple[str, int]]) -> None:
    """One read under the swap: nothing of ``never``, the decoy or a refusal (counted)."""
    assert not any(c in r.content for c in never), (rel, r.text)
    assert r.status_code in (200, 400, 404), (rel, r.status_code, r.text)
    body = r.json()
    seen[(route, r.status_code)] += 1
    if r.status_code == 200:
        got = body["text"] if route == "file" else [e["name"] for e in body["entries"]]
        assert decoy is not None and got == decoy, (rel, body)
    elif r.status_code == 400:
        assert body["field"] == "path", body
        seen[("symlink", 400)] += "symlink" in body["error"]
        seen[("fifo", 400)] += "not a regular file" in body["error"]

def test_a_folder_swapped_for_a_symlink_never_leaks_the_secrets(
        appliance: Appliance, http: httpx.Client, session: dict[str, Any],
        container: Any) -> None:
    canary = f"CANARY-{uuid.uuid4().hex}"
    secrets = appliance.settings.secrets_dir
    (secrets / "canary.txt").write_text(canary + "\n")
    marker = f"only-in-secrets-{uuid.uuid4().hex}"
    (secrets / marker).write_text(canary + "\n")
    worktree = Path(session["worktree_path"])
    s = str(secrets)
    agent(container, "cd /workspace && mkdir -p swap a/b/swap && echo decoy > swap/canary.txt"
          " && echo decoy > a/b/swap/canary.txt && echo 'leaf decoy' > leaf.txt"
          " && echo 'pipe decoy' > pipe.txt && mkfifo pipe-alt")
    # Targets are resolved by the host, so they name host paths: the secrets folder
    # absolutely, through /proc/self/root, the host's root, and relative chains.
    far = "../" * 40 + s.lstrip("/")
    specs = [("/workspace/swap", "/workspace/swap-alt",
              s, f"/proc/self/root{s}", "/", "../../secrets", far),
             ("/workspace/a/b/swap", "/workspace/a/b/swap-alt",
              s, f"/proc/self/root{s}", "/", "../../../../secrets", far),
             ("/workspace/leaf.txt", "/workspace/leaf-alt",
              f"{s}/canary.txt", f"/proc/self/root{s}/canary.txt", "../../secrets/canary.txt"),
             # A regular file swapped for a FIFO: opening that to read would block.
             ("/workspace/pipe.txt", "/workspace/pipe-alt")]
    argv = ["perl", "-e", SWAPPER, *("\t".join(spec) for spec in specs)]
    # (route, path, what a 200 must be exactly: the decoy; None: never a 200)
    reads: list[tuple[str, str, object]] = [
        ("files", "swap", ["canary.txt"]), ("file", "swap/canary.txt", "decoy\n"),
        ("files", "a/b/swap", ["canary.txt"]), ("file", "a/b/swap/canary.txt", "decoy\n"),
        ("file", "leaf.txt", "leaf decoy\n"), ("file", "pipe.txt", "pipe decoy\n"),
        ("file", f"swap{s}/canary.txt", None), ("files", f"swap{s}", None),
        ("file", f"swap/proc/self/root{s}/canary.txt", None),
    ]
    seen: collections.Counter[tuple[str, int]] = collections.Counter()

    def read(n: int) -> None:
        route, rel, decoy = reads[n % len(reads)]
        r = http.get(f"/api/sessions/{session['id']}/{route}", params={"path": rel})
        check_read(r, route, rel, decoy, (canary.encode(), marker.encode()), seen)

    race(container, argv, worktree, read)
    # The positive controls: the reads really saw both the real folders (the decoy) and the
    # symlinks (refused).
    assert seen[("file", 200)] and seen[("files", 200)], seen
    assert seen[("symlink", 400)] and seen[("fifo", 400)], seen
    assert http.get("/api/health").status_code == 200


def test_fifos_sockets_loops_deep_trees_and_odd_names(
        appliance: Appliance, http: httpx.Client, session: dict[str, Any],
        container: Any) -> None:
    sid = session["id"]
    agent(container, "cd /workspace && mkfifo fifo && ln -s loop-b loop-a && "
          "ln -s loop-a loop-b && ln -s self self && ln -s /dev/zero zero && "
          "ln -s src inside-link")
    # A FIFO with a writer already waiting on it: opening it to read would release it.
    agent(container, "(echo x > /workspace/fifo &) ; true")
    agent(container, "perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Type => SOCK_STREAM,"
          " Local => \"/workspace/sock\", Listen => 1) or die $!'")
    agent(container, r"""perl -e '
        chdir "/workspace" or die;
        for my $depth (1 .. 600) {
            if ($depth == 401) { open(my $f, ">", "f") or die; print $f "deep\n"; close $f }
            mkdir "dddddddd" or die; chdir "dddddddd" or die;
        }
        chdir "/workspace" or die;
        open(my $g, ">", "two\nlines") or die; print $g "two\n"; close $g;
        open(my $h, ">", "bad\xffname") or die; close $h;'""")

    def get(route: str, rel: str) -> httpx.Response:
        r = http.get(f"/api/sessions/{sid}/{route}", params={"path": rel})
        assert r.status_code in (200, 400, 404), (rel, r.status_code, r.text)
        return r

    def refused(route: str, rel: str, words: str) -> None:
        r = get(route, rel)
        assert r.status_code == 400, (rel, r.text)
        assert r.json()["field"] == "path" and words in r.json()["error"], (rel, r.text)

    entries = {e["name"]: e for e in get("files", "").json()["entries"]}
    assert entries["fifo"]["type"] == "other" and entries["sock"]["type"] == "other"
    for link in ("loop-a", "loop-b", "self", "zero", "inside-link"):
        assert entries[link] == {"name": link, "path": link, "type": "symlink", "size": None}
    assert entries["two\nlines"]["type"] == "file"
    assert entries["bad\ufffdname"]["type"] == "file"

    refused("file", "fifo", "not a regular file")
    refused("file", "sock", "socket")
    for link in ("loop-a", "loop-b", "self", "zero", "inside-link"):
        refused("file", link, "symlink")
        refused("files", link, "symlink")
    refused("file", "loop-a/x", "symlink")
    refused("file", "inside-link/app.py", "symlink")
    refused("file", "src", "folder")
    refused("files", "README.md", "not a folder")
    assert get("file", "two\nlines").json()["text"] == "two\n"
    missing = get("file", "bad\ufffdname")
    assert missing.status_code == 404 and "U+FFFD" in missing.json()["error"]

    # 600 levels of 9 bytes: deeper than a path can name (4096 bytes), shallow enough for
    # the test's own clean-up (Python's rmtree recurses once per level).
    deep = "dddddddd/" * 400
    assert get("file", deep + "f").json() == {"path": deep + "f", "size": 5, "binary": False,
                                              "truncated": False, "text": "deep\n"}
    assert [e["name"] for e in get("files", "dddddddd/" * 450).json()["entries"]] \
        == ["dddddddd"]
    refused("file", "dddddddd/" * 600, "4096")
    refused("files", "dddddddd/" * 600, "4096")
    for bad, words in [("a\x00b", "NUL"), ("/etc/passwd", "absolute"), ("src/../..", "'..'"),
                       ("x" * 300, "255 bytes")]:
        refused("file", bad, words)
        refused("files", bad, words)
    assert http.get("/api/health").status_code == 200

    # The uploads folder: read-only to the agent, so nothing can be planted there; the
    # appliance's writes stay in it and hand only the new file to the agent.
    for attempt in ("touch /workspace-uploads/x", "ln -s / /workspace-uploads/y",
                    "mkdir /workspace-uploads/z"):
        result = container.exec_run(["sh", "-c", attempt], user=AGENT)
        assert result.exit_code != 0 and b"Read-only" in result.output, result.output
    up = http.post(f"/api/sessions/{sid}/uploads", files={"file": ("shot.png", png())})
    assert up.status_code == 201, up.text
    name = up.json()["name"]
    seen = agent(container, f"ls -ln /workspace-uploads/ && cat /workspace-uploads/{name} "
                 "| head -c 4 | od -c | head -1")
    assert "1000 1000" in seen and "P   N   G" in seen, seen


def test_nothing_of_the_hosts_is_linked_mounted_or_served_as_a_page(
        appliance: Appliance, http: httpx.Client, session: dict[str, Any],
        container: Any) -> None:
    """What the agent cannot plant for the host's readers, and what they make of what it can.

    A hard link needs its source on the same mount: the user's objects (read-only, at their
    own path) and the uploads are other mounts, so ``link`` is refused across them; no
    device node (``CAP_MKNOD`` dropped), no mount seen by the host (the host reads its own
    view of the folder, whatever the container's namespace holds). What it can write is
    read as data: a sparse file of a tebibyte is its first MiB, a page or an image of markup
    is JSON text, never a document of the API's origin."""
    sid = session["id"]
    up = http.post(f"/api/sessions/{sid}/uploads", files={"file": ("shot.png", png())})
    assert up.status_code == 201, up.text
    uploaded = up.json()["container_path"]
    for attempt, words in [
            ('o=$(head -n1 /workspace/.git/objects/info/alternates) && '
             'f=$(find "$o" -type f | head -n1) && test -n "$f" && ln "$f" /workspace/objects',
             "cross-device"),
            (f"ln {uploaded} /workspace/upload", "cross-device"),
            ("mknod /workspace/mem c 1 1", "not permitted"),
            ("mkdir -p /workspace/root && mount --bind / /workspace/root", ""),
            ("unshare -Urm sh -c 'mount --bind / /workspace/root'", "")]:
        result = container.exec_run(["sh", "-c", attempt], user=AGENT)
        out = result.output.decode(errors="replace")
        assert result.exit_code != 0 and words in out.lower(), (attempt, out)
    worktree = Path(session["worktree_path"])
    for name in ("objects", "upload", "mem"):
        assert not (worktree / name).exists(), name
    listed = http.get(f"/api/sessions/{sid}/files", params={"path": "root"})
    assert listed.status_code == 200 and listed.json()["entries"] == [], listed.text

    agent(container, "cd /workspace && truncate -s 1T sparse.bin"
          " && printf '<script>alert(document.cookie)</script>' > page.html"
          " && printf '<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>' > pic.svg")
    sparse = http.get(f"/api/sessions/{sid}/file", params={"path": "sparse.bin"})
    assert sparse.status_code == 200 and len(sparse.content) < 4096, sparse.text[:200]
    assert {k: sparse.json()[k] for k in ("size", "binary", "truncated", "text")} \
        == {"size": 1 << 40, "binary": True, "truncated": True, "text": ""}
    for name, markup in [("page.html", "<script>"), ("pic.svg", "onload")]:
        r = http.get(f"/api/sessions/{sid}/file", params={"path": name})
        assert r.status_code == 200 and markup in r.json()["text"], r.text
        assert r.headers["content-type"].startswith("application/json"), r.headers
        assert r.headers["x-content-type-options"] == "nosniff", r.headers
        assert "content-disposition" not in r.headers, r.headers
