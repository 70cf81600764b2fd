"""appliance.safefs on real temporary trees: paths, listings, reads and writes that never
follow a symlink, never open a non-regular file, and refuse clearly."""

from __future__ import annotations

import collections
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api import browse
from appliance import safefs
from appliance.errors import ClauderonError, Conflict, InvalidInput, NotFound
from appliance.safefs import Kind

ABSENT = "there is no worktree yet"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder that stands for the appliance's secrets: nothing in it may ever be read."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text("CANARY-outside\n")
    return secrets


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    wt = tmp_path / "wt"
    (wt / "src").mkdir(parents=True)
    (wt / "src" / "app.py").write_text("print('hi')\n")
    (wt / "README.md").write_text("hello\n")
    (wt / ".git").write_text("gitdir: elsewhere\n")
    os.symlink("src/app.py", wt / "inside.py")
    os.symlink(str(outside), wt / "out")
    os.symlink("../secrets/token", wt / "rel-out")
    os.symlink("nowhere", wt / "dangling")
    os.symlink("loop-b", wt / "loop-a")
    os.symlink("loop-a", wt / "loop-b")
    os.mkfifo(wt / "fifo")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(wt / "sock"))
    return wt


@pytest.fixture
def tree(root: Path) -> Iterator[safefs.Tree]:
    with safefs.open_tree(root, label="the worktree", absent=ABSENT) as t:
        yield t


def read(tree: safefs.Tree, rel: str, limit: int = 1 << 20) -> safefs.Blob:
    return safefs.read_file(tree, safefs.parse(rel), limit=limit)


def listing(tree: safefs.Tree, rel: str = "") -> safefs.Listing:
    return safefs.list_dir(tree, safefs.parse(rel), hidden=frozenset({".git"}))


def bounded(fn: Callable[[], object], seconds: float = 10) -> object:
    """Run ``fn`` in a thread; a call still blocked after ``seconds`` fails the test."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "the call blocked"
    return out[0]


# --- parse (pure) ------------------------------------------------------------------------


@pytest.mark.parametrize(("rel", "parts"), [
    ("", ()), (".", ()), ("src", ("src",)), ("src/", ("src",)),
    ("./src//app.py", ("src", "app.py")),
    ("~root", ("~root",)), ("a\nb/c d", ("a\nb", "c d")), ("é/ü", ("é", "ü")),
])
def test_parse_accepts(rel: str, parts: tuple[str, ...]) -> None:
    assert safefs.parse(rel) == parts


@pytest.mark.parametrize(("rel", "words"), [
    ("/etc/passwd", "absolute"), ("..", "'..'"), ("src/../../x", "'..'"), ("a/\x00b", "NUL"),
    ("a" * 256, "255 bytes"), ("a/" * 2049, "4096"), ("bad\udcff", "UTF-8"),
])
def test_parse_refuses(rel: str, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        safefs.parse(rel)
    assert info.value.field == "path" and words in info.value.message


@given(st.text())
def test_parse_never_yields_a_way_out(rel: str) -> None:
    try:
        parts = safefs.parse(rel)
    except InvalidInput:
        return
    for part in parts:
        assert part not in ("", ".", "..") and "/" not in part and "\x00" not in part


# --- listing -----------------------------------------------------------------------------


def test_listing_types_every_entry_without_following(tree: safefs.Tree) -> None:
    got = {e.name: (e.kind, e.size, e.path) for e in listing(tree).entries}
    assert ".git" not in got
    assert got["src"] == (Kind.DIR, None, "src")
    assert got["README.md"] == (Kind.FILE, 6, "README.md")
    for link in ("inside.py", "out", "rel-out", "dangling", "loop-a", "loop-b"):
        assert got[link] == (Kind.SYMLINK, None, link)
    assert got["fifo"][0] is Kind.OTHER and got["sock"][0] is Kind.OTHER
    names = [e.name for e in listing(tree).entries]
    assert names[0] == "src"  # folders first
    assert listing(tree, "src").entries == (
        safefs.Entry(name="app.py", path="src/app.py", kind=Kind.FILE, size=12),)


@pytest.mark.parametrize("rel", ["out", "out/", "loop-a", "dangling", "inside.py",
                                 "out/token"])
def test_listing_through_a_symlink_is_refused(tree: safefs.Tree, rel: str) -> None:
    with pytest.raises(InvalidInput) as info:
        listing(tree, rel)
    assert "symlink" in info.value.message and info.value.field == "path"


def test_listing_refusals(tree: safefs.Tree) -> None:
    with pytest.raises(InvalidInput, match="not a folder"):
        listing(tree, "README.md")
    with pytest.raises(NotFound):
        listing(tree, "nope")
    with pytest.raises(NotFound, match=r"'README\.md' is not a folder"):
        listing(tree, "README.md/x")


def test_odd_names_are_listed_as_json_can_carry_them(root: Path, tree: safefs.Tree) -> None:
    os.close(os.open(os.fsencode(root) + b"/bad\xffname", os.O_CREAT | os.O_WRONLY, 0o644))
    (root / "two\nlines").write_text("x")
    names = {e.name for e in listing(tree).entries}
    assert "bad\ufffdname" in names and "two\nlines" in names
    assert read(tree, "two\nlines").data == b"x"
    with pytest.raises(NotFound, match="U\\+FFFD"):
        read(tree, "bad\ufffdname")


def test_a_huge_folder_is_cut(root: Path, tree: safefs.Tree) -> None:
    for i in range(30):
        (root / "src" / f"f{i:02}").touch()
    cut = safefs.list_dir(tree, ("src",), limit=10)
    assert cut.truncated and len(cut.entries) == 10
    assert not safefs.list_dir(tree, ("src",)).truncated



@pytest.mark.parametrize(("text", "size"), [
    ("plain.txt", 11),  # ASCII as it is, in its quotes
    ('a"b\\c\n', 11),  # two bytes each for a quote, a backslash, a newline
    ("\x01" * 10, 62),  # a control character is six bytes (\u0001)
    ("\u00e9t\u00e9", 15),  # a letter of another script six, whatever its UTF-8
    ("\U0001f600", 14),  # outside the BMP, a surrogate pair: twelve
])
def test_json_size_counts_what_escaping_writes(text: str, size: int) -> None:
    assert browse.json_size(text) == size


def entries(names: list[str], folder: str = "") -> safefs.Listing:
    return safefs.Listing(path=folder, truncated=False, entries=tuple(
        safefs.Entry(name=n, path=f"{folder}/{n}" if folder else n, kind=Kind.FILE, size=0)
        for n in names))


@pytest.mark.parametrize(("names", "folder", "budget", "kept"), [
    (["a", "b", "c"], "", 3 * (3 + 3 + browse.ENTRY_JSON), 3),  # just fits: whole
    (["a", "b", "c"], "", 3 * (3 + 3 + browse.ENTRY_JSON) - 1, 2),  # one byte over: cut
    ([], "", 0, 0),  # an empty folder is never cut
    (["\x01" * 255] * 4, "", 3 * (2 * 1532 + browse.ENTRY_JSON), 3),  # names that swell: fewer fit
    (["x"] * 4, "\x01" * 3839, 3 * (23_040 + 3 + browse.ENTRY_JSON), 3),  # a deep folder's
])
def test_a_listing_is_cut_at_its_json_budget(names: list[str], folder: str, budget: int,
                                              kept: int) -> None:
    cut = browse.within(entries(names, folder), budget)
    assert len(cut.entries) == kept
    assert cut.truncated == (kept < len(names))
    assert cut.entries == entries(names, folder).entries[:kept]


# --- reading -----------------------------------------------------------------------------


def test_reads_a_regular_file(tree: safefs.Tree) -> None:
    assert read(tree, "src/app.py") == safefs.Blob(path="src/app.py", size=12,
                                                   data=b"print('hi')\n")
    cut = read(tree, "src/app.py", limit=5)
    assert cut.data == b"print" and cut.size == 12


@pytest.mark.parametrize(("rel", "words"), [
    ("inside.py", "symlink"), ("out/token", "symlink"), ("rel-out", "symlink"),
    ("dangling", "symlink"), ("loop-a", "symlink"), ("loop-a/x", "symlink"),
    ("fifo", "not a regular file"), ("sock", "socket"), ("src", "folder"), ("", "folder"),
])
def test_reads_refuse_what_is_not_a_regular_file_reached_without_symlinks(
        tree: safefs.Tree, rel: str, words: str) -> None:
    got = bounded(lambda: read(tree, rel))
    assert isinstance(got, InvalidInput), got
    assert words in got.message and got.field == "path"


def test_a_fifo_with_a_writer_waiting_does_not_block_either(root: Path,
                                                              tree: safefs.Tree) -> None:
    def write() -> None:
        # Blocks until a reader opens the FIFO; ours opens and closes it unread.
        with suppress(OSError):
            Path(root / "fifo").write_text("x")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    assert isinstance(bounded(lambda: read(tree, "fifo")), InvalidInput)
    writer.join(10)


def test_reads_from_an_offset(root: Path, tree: safefs.Tree) -> None:
    (root / "big").write_bytes(bytes(range(256)) * 8192)  # 2 MiB: more than one read(2)
    blob = safefs.read_file(tree, ("big",), limit=1_500_000, offset=300_000)
    assert blob.size == 2 << 20 and blob.data == (bytes(range(256)) * 8192)[300_000:1_800_000]
    assert safefs.read_file(tree, ("big",), limit=10, offset=(2 << 20) - 4).data \
        == bytes(range(252, 256))
    assert safefs.read_file(tree, ("big",), limit=10, offset=5 << 20).data == b""
    with safefs.open_file(tree, ("big",)) as f:
        (root / "big").write_bytes(b"shrunk")  # the writer truncates it while we read
        assert f.size == 2 << 20 and safefs.read_at(f, 2, 100) == b"runk"


#: Holds a write lease on a file (as its writer may), ignoring the signal that asks it to
#: let go, until its stdin closes.
LEASER = """
import fcntl, os, signal, sys
signal.signal(signal.SIGIO, signal.SIG_IGN)
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print("leased", flush=True)
sys.stdin.read()
"""


def test_a_file_under_a_write_lease_is_refused_not_waited_for(root: Path,
                                                              tree: safefs.Tree) -> None:
    (root / "leased").write_text("x\n")
    with subprocess.Popen([sys.executable, "-c", LEASER, str(root / "leased")],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as leaser:
        assert leaser.stdout is not None and leaser.stdin is not None
        assert leaser.stdout.readline() == "leased\n"
        got = bounded(lambda: read(tree, "leased"))  # a blocking open waits 45 s
        assert isinstance(got, Conflict) and "lease" in got.message, got
        leaser.stdin.close()
        leaser.wait(10)
    assert read(tree, "leased").data == b"x\n"


def test_missing_things_are_404(tree: safefs.Tree) -> None:
    for rel in ("nope", "src/nope", "nope/x", "README.md/x"):
        with pytest.raises(NotFound):
            read(tree, rel)


def test_a_tree_deeper_than_path_max(root: Path, tree: safefs.Tree) -> None:
    """Walked by descriptor, so depth is no problem until the client's path is too long.
    400 levels of 16 bytes: deeper than a path can name, shallow enough for rmtree (which
    recurses once per level) to clean up."""
    name = "d" * 15
    fd = os.open(root, os.O_RDONLY)
    for depth in range(400):
        if depth == 250:
            os.close(os.open("f", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
        os.mkdir(name, dir_fd=fd)
        nxt = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
    assert read(tree, f"{name}/" * 250 + "f").size == 0
    assert [e.name for e in listing(tree, f"{name}/" * 255).entries] == [name]
    with pytest.raises(InvalidInput, match="4096"):
        read(tree, f"{name}/" * 400 + "f")
    safefs.remove_tree(root / name)  # no path-based cleanup has to walk it later
    assert not (root / name).exists()


def test_a_deep_walk_holds_no_descriptor_a_component(root: Path, tree: safefs.Tree,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A path of one-letter folders as long as a path may be (2,047 components in 4 KiB)
    is walked holding at most two folders open at once: each parent is closed once its
    child is open. Counted in ``/proc/self/fd`` while the deepest folder is being listed."""
    depth = 2047
    fd = os.open(root, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("a", dir_fd=fd)
        nxt = os.open("a", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(os.open("f", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    os.close(fd)
    seen: list[int] = []
    scandir = os.scandir

    def counting(path: int) -> object:
        seen.append(len(os.listdir("/proc/self/fd")))
        return scandir(path)

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "scandir", counting)
    rel = "a/" * (depth - 1) + "a"
    try:
        assert len(rel) == 4093
        assert [e.name for e in listing(tree, rel).entries] == ["f"]
    finally:
        monkeypatch.undo()
        safefs.remove_tree(root / "a")  # deeper than pytest's own clean-up can recurse
    # The walk's one folder, and the count's own listing of /proc/self/fd.
    assert seen and seen[0] <= before + 2, (before, seen)
    assert len(os.listdir("/proc/self/fd")) == before


def test_open_tree_refusals(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(InvalidInput, match=ABSENT), \
            safefs.open_tree(tmp_path / "nope", label="the worktree", absent=ABSENT):
        pass
    os.symlink(outside, tmp_path / "link")
    with pytest.raises(ClauderonError, match="not a plain folder"), \
            safefs.open_tree(tmp_path / "link", label="the worktree", absent=ABSENT):
        pass


#: Swaps ``swap`` (a real folder) with ``alt`` (a symlink, repointed at each target in
#: turn) by ``renameat2(RENAME_EXCHANGE)``, in its own process so the GIL cannot pace it.
SWAPPER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
root, stop, *targets = sys.argv[1:]
os.chdir(root)
os.symlink(targets[0], "alt")
open(".swapping", "w").close()
n = 0
while not os.path.exists(stop):
    if libc.renameat2(-100, b"swap", -100, b"alt", 2) != 0:
        raise OSError(ctypes.get_errno(), "renameat2")
    if n % 2:
        os.symlink(targets[(n // 2) % len(targets)], "alt.new")
        os.rename("alt.new", "alt")
    n += 1
print(n)
"""


def test_a_swapping_folder_never_leaks(root: Path, tree: safefs.Tree, outside: Path,
                                       tmp_path: Path) -> None:
    """``swap`` is a real folder holding a decoy ``token`` half the time and a symlink to
    the outside folder (absolute, relative, through /proc/self/root, /) the other half."""
    (root / "swap").mkdir()
    (root / "swap" / "token").write_text("decoy\n")
    stop = tmp_path / "stop"
    targets = [str(outside), "../secrets", f"/proc/self/root{outside}", "/"]
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(root), str(stop), *targets],
                               stdout=subprocess.PIPE, text=True)
    outcomes: collections.Counter[str] = collections.Counter()
    try:
        started = time.monotonic()
        while not (root / ".swapping").exists():
            assert time.monotonic() - started < 30 and swapper.poll() is None, "no swapper"
            time.sleep(0.01)
        rounds = 100_000  # bounds the loop: enough to see every outcome many times
        while (outcomes.total() < 3000 or len(outcomes) < 3) and rounds:
            rounds -= 1
            for rel in ("swap/token", "swap", f"swap{outside}/token"):
                try:
                    got = read(tree, rel) if rel.endswith("token") else listing(tree, rel)
                    assert b"CANARY" not in repr(got).encode()
                    outcomes["ok"] += 1
                except (InvalidInput, NotFound) as exc:
                    assert "CANARY" not in exc.message
                    outcomes[type(exc).__name__] += 1
    finally:
        stop.touch()
        out, _ = swapper.communicate(timeout=30)
    assert swapper.returncode == 0 and int(out) > 100, out  # the swap really raced the reads
    assert outcomes["ok"] and outcomes["InvalidInput"] and outcomes["NotFound"], outcomes


# --- writing -----------------------------------------------------------------------------


def test_writes_a_new_file_owned_and_moded_by_descriptor(tmp_path: Path) -> None:
    old = os.umask(0o077)  # a restrictive umask must not hide the upload from the agent
    try:
        with safefs.child_dir(tmp_path / "uploads", "sid", mode=0o755) as folder:
            owner = (1000, 1000) if os.geteuid() == 0 else None
            safefs.write_new(folder, "a.png", b"data", mode=0o644, owner=owner)
    finally:
        os.umask(old)
    made = tmp_path / "uploads" / "sid"
    assert stat.S_IMODE(made.stat().st_mode) == 0o755
    assert (made / "a.png").read_bytes() == b"data"
    assert stat.S_IMODE((made / "a.png").stat().st_mode) == 0o644
    if os.geteuid() == 0:
        assert (made / "a.png").stat().st_uid == 1000
        assert made.stat().st_uid == 0  # the folder stays the appliance's


def test_never_writes_or_chowns_through_a_planted_symlink(tmp_path: Path,
                                                           outside: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    os.symlink(outside, uploads / "sid")
    before = {p.name: p.stat() for p in [outside, *outside.iterdir()]}
    with pytest.raises(ClauderonError, match="not a plain folder"), \
            safefs.child_dir(uploads, "sid", mode=0o755):
        pass
    (uploads / "sid").unlink()
    with safefs.child_dir(uploads, "sid", mode=0o755) as folder:
        os.symlink(outside / "token", uploads / "sid" / "b.png")
        with pytest.raises(FileExistsError):
            safefs.write_new(folder, "b.png", b"evil", mode=0o644, owner=(1000, 1000))
    after = {p.name: p.stat() for p in [outside, *outside.iterdir()]}
    assert (outside / "token").read_text() == "CANARY-outside\n"
    assert {k: (v.st_uid, v.st_mode, v.st_size) for k, v in after.items()} == \
        {k: (v.st_uid, v.st_mode, v.st_size) for k, v in before.items()}


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "", "/abs", "."])
def test_only_plain_names_are_written(tmp_path: Path, name: str) -> None:
    with safefs.child_dir(tmp_path, "sid", mode=0o755) as folder, \
            pytest.raises(InvalidInput):
        safefs.write_new(folder, name, b"x", mode=0o644, owner=None)
    with pytest.raises(InvalidInput), safefs.child_dir(tmp_path, name, mode=0o755):
        pass
