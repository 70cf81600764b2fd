"""The pure half of reading a pod's tree: strict parsing of what the pod's scripts print,
and the same refusals safefs gives. The scripts themselves run in the real agent image in
tests/integration/test_kubernetes_files.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from appliance import podfs
from appliance.backends.base import ExecResult
from appliance.errors import BackendError, InvalidInput, NotFound
from appliance.safefs import Kind


def triples(*entries: tuple[str, str, str]) -> bytes:
    return b"".join(f"{k}\0{s}\0".encode() + n.encode() + b"\0" for k, s, n in entries)


def test_a_listing_is_typed_sorted_hidden_and_cut() -> None:
    out = triples(("f", "3", "b.txt"), ("d", "4096", "src"), ("l", "11", "link"),
                  ("p", "0", "pipe"), ("d", "4096", ".git"), ("f", "1", "A"))
    listing = podfs.parse_listing(out, ("sub",), hidden=frozenset({".git"}), limit=10)
    assert [(e.name, e.path, e.kind, e.size) for e in listing.entries] == [
        ("src", "sub/src", Kind.DIR, None), ("A", "sub/A", Kind.FILE, 1),
        ("b.txt", "sub/b.txt", Kind.FILE, 3), ("link", "sub/link", Kind.SYMLINK, None),
        ("pipe", "sub/pipe", Kind.OTHER, None)]
    assert not listing.truncated and listing.path == "sub"
    cut = podfs.parse_listing(out, (), hidden=frozenset({".git"}), limit=2)
    assert cut.truncated and len(cut.entries) == 2


def test_names_are_shown_as_they_are_and_undecodable_bytes_replaced() -> None:
    out = b"f\x001\x00evil\nname\x1b[31m\x00f\x002\x00bad\xff\x00"
    names = [e.name for e in podfs.parse_listing(out, (), hidden=frozenset(), limit=9).entries]
    assert names == ["bad\ufffd", "evil\nname\x1b[31m"]


@pytest.mark.parametrize("out", [
    b"f\x001\x00a",  # no final NUL
    b"f\x001\x00",  # a field short
    b"ff\x001\x00a\x00",  # a type of two letters
    b"f\x00-1\x00a\x00",  # a size that is not digits
    b"f\x001\x00\x00",  # an empty name
    b"f\x001\x00a/b\x00",  # a name with a slash
    b"d\x001\x00..\x00",
])
def test_a_malformed_listing_is_refused_whole(out: bytes) -> None:
    with pytest.raises(BackendError):
        podfs.parse_listing(out, (), hidden=frozenset(), limit=10)


def test_a_read_is_size_then_bytes() -> None:
    assert podfs.parse_read(b"12\nline\nmore") == (12, b"line\nmore")
    for bad in (b"", b"12", b"x\n", b"-1\n", b"9" * 21 + b"\n"):
        with pytest.raises(BackendError):
            podfs.parse_read(bad)


def _said(code: int, index: str = "", want: Kind = Kind.FILE,
          parts: tuple[str, ...] = ("a", "b")) -> Exception:
    return podfs.refusal(ExecResult(exit_code=code, stdout=index.encode()), parts,
                         label="the worktree", absent="no tree yet", want=want)


def test_refusals_word_what_safefs_says() -> None:
    assert str(_said(podfs.SYMLINK, "1\n")) == \
        "'a' is a symlink; symlinks are listed but never followed"
    assert isinstance(_said(podfs.SYMLINK, "1\n"), InvalidInput)
    assert isinstance(_said(podfs.MISSING, "2\n"), NotFound)
    missing_parent = _said(podfs.NOT_DIR, "1\n")
    assert isinstance(missing_parent, NotFound) and "'a' is not a folder" in str(missing_parent)
    assert isinstance(_said(podfs.NOT_DIR, "2\n", want=Kind.DIR), InvalidInput)
    assert str(_said(podfs.IS_DIR, "2\n")) == "'a/b' is a folder, not a file"
    assert "not a regular file" in str(_said(podfs.NOT_REGULAR, "2\n"))
    assert "permission denied" in str(_said(podfs.DENIED, "2\n"))
    assert str(_said(podfs.NO_ROOT)) == "no tree yet"
    # An index the script could not have printed, or another failure: the pod's fault (502).
    for code, index in ((podfs.SYMLINK, "7\n"), (podfs.SYMLINK, "x"), (2, "")):
        assert isinstance(_said(code, index), BackendError)


def _sh(script: str, *args: str, cwd: Path) -> ExecResult:
    """The pod's scripts under this host's sh and coreutils (the same GNU tools as the
    agent image, at the same paths), for a fast check of their edge cases."""
    done = subprocess.run(["/bin/sh", "-c", script, "sh", *args], capture_output=True,
                          cwd=cwd, check=False, timeout=30)
    return ExecResult(exit_code=done.returncode, stdout=done.stdout, stderr=done.stderr)


def test_the_scripts_walk_without_following(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("hello")
    (tmp_path / "l").symlink_to(tmp_path / "d")
    tree = podfs.PodTree(run=lambda argv: _sh(*argv[2:3], *argv[4:], cwd=tmp_path),
                         root=str(tmp_path), label="the worktree", absent="none")
    assert [e.name for e in tree.list_dir(("d",)).entries] == ["f"]
    assert tree.read(("d", "f"), 1, 3) == (5, b"ell")
    with pytest.raises(InvalidInput, match="symlink"):
        tree.read(("l", "f"), 0, 10)
    with pytest.raises(InvalidInput, match="symlink"):
        tree.list_dir(("l",))
    with tree.open_file(("d", "f")) as f:
        assert (f.size, f.read_at(0, 100)) == (5, b"hello")
    gone = podfs.PodTree(run=tree.run, root=str(tmp_path / "nothing"), label="x",
                         absent="no tree yet")
    with pytest.raises(InvalidInput, match="no tree yet"):
        gone.list_dir(())
