"""Reading and writing trees an agent can write, without ever following a symlink out.

The appliance runs as root on the host and reads folders an agent changes from inside its
container while we read them (its worktree; its home). A path that is checked and then
opened by name can be swapped between the two steps (a folder replaced by a symlink to
``/``, to the appliance's ``secrets/``, to ``/proc/self/root``), so nothing here checks a
path and then uses it. Instead:

* every component is opened relative to the folder opened before it, with ``O_NOFOLLOW``
  (and ``O_DIRECTORY`` for folders): a symlink anywhere in a path refuses the path, inside
  or out, because where it leads is decided at the instant it is followed;
* what is reported is ``fstat`` of the descriptor that was opened; folders are listed
  through their descriptor (``os.scandir(fd)``) and entries are ``lstat``-ed relative to it;
* files are opened ``O_NONBLOCK | O_NOCTTY`` (a FIFO must not hang the reader, nor a write
  lease the writer holds on a regular file) and refused unless regular; they are read with
  ``pread`` from an offset, so a reader can take a file a piece at a time;
* writes create new names only (``O_CREAT | O_EXCL | O_NOFOLLOW``) in a folder opened without
  following, and ownership and mode are set on the descriptor (``fchown``/``fchmod``).

:func:`parse` (the rules for a client's path) and :func:`kind_of` are pure; the rest are thin
shells over ``os`` calls on descriptors. Callers: ``api/browse.py`` (the files routes and
uploads), :mod:`appliance.workspaces` (a workspace's refs), :mod:`appliance.agents.reader`
(the agent's logs in its home). Errors are the appliance's own: 400 for a bad path or one
that names something of the wrong kind, 404 for nothing there, 409 for a file under a lease.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from appliance import opening
from appliance.errors import ClauderonError, Conflict, InvalidInput, NotFound
from appliance.quoted import quote

MAX_PATH = 4096  # bytes of a client's path (Linux PATH_MAX)
MAX_NAME = 255  # bytes of one component (Linux NAME_MAX)
CHUNK = 1 << 20  # bytes of one read(2)

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
UNDECODABLE = ("names that are not valid UTF-8 are shown with U+FFFD in place of the bad bytes"
               " and cannot be opened by that name")


class Kind(StrEnum):
    DIR = "dir"
    FILE = "file"
    SYMLINK = "symlink"
    OTHER = "other"  # a FIFO, a socket or a device: listed, never opened


@dataclass(frozen=True, slots=True, kw_only=True)
class Tree:
    """An open folder; every path under it is walked from this descriptor."""

    fd: int
    label: str  # how messages name it: "the worktree"


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    name: str
    path: str
    kind: Kind
    size: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    path: str
    entries: tuple[Entry, ...]
    truncated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenFile:
    """A regular file opened by :func:`open_file`; valid inside its ``with`` only."""

    fd: int
    path: str
    size: int  # at the time it was opened


@dataclass(frozen=True, slots=True, kw_only=True)
class Blob:
    path: str
    size: int
    data: bytes


# --- pure ------------------------------------------------------------------------------


def parse(rel: str, *, field: str = "path", within: str = "the worktree") -> tuple[str, ...]:
    """The components of a client's path relative to ``within``, or :class:`InvalidInput`
    naming ``field``.

    Empty and ``.`` components are dropped (``src//a/./b`` is ``src/a/b``); ``..``, absolute
    paths, NUL bytes and paths longer than Linux allows are refused.
    """
    if "\x00" in rel:
        raise InvalidInput(f"the {field} holds a NUL byte; remove it", field=field)
    try:
        size = len(rel.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"the {field} is not valid UTF-8", field=field) from None
    if size > MAX_PATH:
        raise InvalidInput(f"the {field} is {size} bytes long; the limit is {MAX_PATH}",
                           field=field)
    if rel.startswith("/"):
        raise InvalidInput(f"{rel!r} is absolute; give a path relative to {within}",
                           field=field)
    parts = tuple(p for p in rel.split("/") if p not in ("", "."))
    if ".." in parts:
        raise InvalidInput(f"{rel!r} climbs out with '..'; give a path inside {within}",
                           field=field)
    for part in parts:
        if len(part.encode("utf-8")) > MAX_NAME:
            raise InvalidInput(f"a name in the {field} is longer than {MAX_NAME} bytes",
                               field=field)
    return parts


def kind_of(mode: int) -> Kind:
    if stat.S_ISLNK(mode):
        return Kind.SYMLINK
    if stat.S_ISDIR(mode):
        return Kind.DIR
    if stat.S_ISREG(mode):
        return Kind.FILE
    return Kind.OTHER


def shown(name: str) -> str:
    """A name as JSON can carry it: undecodable bytes become U+FFFD."""
    return os.fsencode(name).decode("utf-8", errors="replace")


def _single(name: str) -> str:
    """``name`` as one plain component (a name the appliance made, checked all the same)."""
    parts = parse(name, field="name", within="its folder")
    if len(parts) != 1 or parts[0] != name:
        raise InvalidInput(f"{name!r} is not a plain file name", field="name")
    return name


def joined(parts: tuple[str, ...]) -> str:
    return "/".join(shown(p) for p in parts)


# --- reading ---------------------------------------------------------------------------


@contextmanager
def open_tree(path: Path, *, label: str, absent: str) -> Iterator[Tree]:
    """Open the root of an agent-writable tree. The path to it is the appliance's own
    (trusted); only its last component must not be a symlink. ``absent``: the 400 message
    when it does not exist (yet)."""
    try:
        fd = os.open(path, DIR_FLAGS)
    except FileNotFoundError:
        raise InvalidInput(absent) from None
    except OSError as exc:
        raise ClauderonError(f"{label} at {path} is not a plain folder ({exc.strerror}); "
                             "refusing to read it") from exc
    try:
        yield Tree(fd=fd, label=label)
    finally:
        os.close(fd)


def _refusal(tree: Tree, exc: OSError, parent: int, parts: tuple[str, ...], *,
             last: bool, want: Kind, rel: str) -> ClauderonError:
    """The error for a component that could not be opened as ``want``. The ``lstat`` here
    only words the message: nothing is opened after it."""
    here = joined(parts)
    if exc.errno == errno.ENOENT:
        hint = f" ({UNDECODABLE})" if "\ufffd" in rel else ""
        return NotFound(f"{rel!r} does not exist in {tree.label}{hint}")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return InvalidInput(f"{here!r} cannot be read (permission denied)", field="path")
    if exc.errno == errno.EAGAIN:
        # A write lease held by whoever writes the file: a blocking open would wait for it
        # (up to fs.lease-break-time, again for every lease taken anew).
        return Conflict(f"{here!r} is held by a lease of the process writing it; try again "
                        "when it lets go")
    if exc.errno == errno.ENXIO:
        return InvalidInput(f"{here!r} is a socket or a device; only regular files can be "
                            "read", field="path")
    if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
        return ClauderonError(f"could not open {here!r} in {tree.label}: {exc.strerror}")
    # ELOOP under O_NOFOLLOW is the kernel saying "a symlink"; ENOTDIR under O_DIRECTORY
    # is a symlink or any other non-folder, so look (for the wording only).
    found = Kind.SYMLINK
    if exc.errno == errno.ENOTDIR:
        try:
            found = kind_of(os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode)
        except OSError:
            found = Kind.OTHER
    if found is Kind.SYMLINK:
        return InvalidInput(f"{here!r} is a symlink; symlinks are listed but never followed",
                            field="path")
    if not last:
        return NotFound(f"{rel!r} does not exist in {tree.label} ({here!r} is not a folder)")
    return InvalidInput(f"{here!r} is not a {'folder' if want is Kind.DIR else 'file'}",
                        field="path")


def _inside(tree: Tree, parts: tuple[str, ...]) -> None:
    """Refuse ``parts`` unless each is one name in its folder. Not every caller's parts come
    from :func:`parse`: a branch the agent's ``HEAD`` names is split as they are, and a
    ``..`` among them walked out of the tree, as root, to any file of the host."""
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\x00" in part:
            raise InvalidInput(f"{joined(parts)!r} is no path inside {tree.label} ({part!r} "
                               "is not a name); give one without '..', '.' or '//'",
                               field="path")


@contextmanager
def _walk(tree: Tree, parts: tuple[str, ...], *, rel: str, final: bool) -> Iterator[int]:
    """A descriptor of the folder ``parts`` names, opened one component at a time.
    ``final``: whether the last of ``parts`` is the one the client asked for. Each parent
    is closed once its child is open: at most two are open at once, where a path of
    one-letter folders held one a component (2,049 for 4 KiB) until the walk ended."""
    _inside(tree, parts)
    fd = os.open(".", DIR_FLAGS, dir_fd=tree.fd)
    try:
        for i, name in enumerate(parts):
            try:
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _refusal(tree, exc, fd, parts[:i + 1], want=Kind.DIR, rel=rel,
                               last=final and i == len(parts) - 1) from None
            parent, fd = fd, child
            os.close(parent)
        yield fd
    finally:
        os.close(fd)


def has_dir(tree: Tree, parts: tuple[str, ...]) -> bool:
    """Whether ``parts`` names a real folder (no symlink on the way)."""
    try:
        with _walk(tree, parts, rel=joined(parts), final=True):
            return True
    except ClauderonError:
        return False


def list_dir(tree: Tree, parts: tuple[str, ...], *, hidden: frozenset[str] = frozenset(),
             limit: int = 10_000) -> Listing:
    """The entries of a folder (at most ``limit``), folders first, by name; symlinks and
    other non-regular entries are typed as what they are, never followed."""
    rel = joined(parts)
    entries: list[Entry] = []
    truncated = False
    with _walk(tree, parts, rel=rel, final=True) as fd, os.scandir(fd) as it:
        for item in it:
            if item.name in hidden:
                continue
            if len(entries) >= limit:
                truncated = True
                break
            try:
                st = item.stat(follow_symlinks=False)  # fstatat(fd, name, NOFOLLOW)
            except FileNotFoundError:
                continue  # removed since the folder was read
            kind = kind_of(st.st_mode)
            entries.append(Entry(name=shown(item.name), path=joined((*parts, item.name)),
                                 kind=kind, size=st.st_size if kind is Kind.FILE else None))
    entries.sort(key=lambda e: (e.kind is not Kind.DIR, e.name.lower(), e.name))
    return Listing(path=rel, entries=tuple(entries), truncated=truncated)


@contextmanager
def open_file(tree: Tree, parts: tuple[str, ...]) -> Iterator[OpenFile]:
    """A regular file of the tree, open for reading: never through a symlink, never a FIFO,
    socket or device (those are refused after an open that cannot block)."""
    rel = joined(parts)
    if not parts:
        raise InvalidInput(f"the root of {tree.label} is a folder, not a file", field="path")
    _inside(tree, parts)
    with _walk(tree, parts[:-1], rel=rel, final=False) as folder:
        try:
            fd = os.open(parts[-1], FILE_FLAGS, dir_fd=folder)
        except OSError as exc:
            raise _refusal(tree, exc, folder, parts, want=Kind.FILE, rel=rel,
                           last=True) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InvalidInput(f"{rel!r} is a folder, not a file", field="path")
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"{rel!r} is not a regular file (a FIFO, socket or "
                               "device); only regular files can be read", field="path")
        yield OpenFile(fd=fd, path=rel, size=st.st_size)
    finally:
        os.close(fd)


def read_at(f: OpenFile, offset: int, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``f`` from ``offset``: fewer at its end (which may have
    moved since it was opened: the agent writes while we read)."""
    chunks: list[bytes] = []
    got = 0
    while got < limit and (chunk := os.pread(f.fd, min(limit - got, CHUNK), offset + got)):
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_file(tree: Tree, parts: tuple[str, ...], *, limit: int, offset: int = 0) -> Blob:
    """``limit`` bytes of a regular file from ``offset`` and its size (from ``fstat``)."""
    with open_file(tree, parts) as f:
        data = read_at(f, offset, limit)
    return Blob(path=f.path, size=f.size, data=data)


# --- writing ---------------------------------------------------------------------------


@contextmanager
def child_dir(parent: Path, name: str, *, mode: int) -> Iterator[int]:
    """A descriptor of ``parent/name``, made if missing. ``parent`` is the appliance's own
    path; ``name`` must be a real folder, never a symlink. Its mode is set (by descriptor)
    when the appliance owns it, so a restrictive umask cannot hide it from the agent."""
    part = _single(name)
    parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        base = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        stack.callback(os.close, base)
        with suppress(FileExistsError):
            os.mkdir(part, mode, dir_fd=base)
        try:
            fd = os.open(part, DIR_FLAGS, dir_fd=base)
        except OSError as exc:
            raise ClauderonError(f"{parent / part} is not a plain folder ({exc.strerror}); "
                                 "refusing to write through it") from exc
        stack.callback(os.close, fd)
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, mode)
        yield fd


def write_new(folder: int, name: str, data: bytes, *, mode: int,
              owner: tuple[int, int] | None) -> None:
    """Create ``name`` (which must not exist, not even as a symlink) in the open ``folder``,
    write ``data``, then set owner and mode on the descriptor. A failed write leaves nothing."""
    part = _single(name)
    fd = os.open(part, NEW_FILE_FLAGS, 0o600, dir_fd=folder)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)
    except BaseException:
        with suppress(OSError):
            os.unlink(part, dir_fd=folder)
        raise
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Remove an agent-writable tree, never following a link out. Idempotent.

    ``rm`` rather than :func:`shutil.rmtree`: an agent can build a tree deeper than Python's
    recursion limit, and ``rm`` neither recurses on the stack nor follows links. A folder
    the agent closed to everyone (``chmod 000``) stops ``rm`` when the appliance runs as the
    the tree's owner rather than as root: its folders are then opened to their owner, by
    descriptor (:func:`appliance.opening.open_to_owner`), and ``rm`` goes again.
    """
    if os.path.islink(path):
        path.unlink()
        return
    if not os.path.lexists(path):
        return
    rm = ["rm", "-rf", "--one-file-system", "--", str(path)]
    proc = subprocess.run(rm, capture_output=True, check=False, timeout=600)
    if proc.returncode != 0 and os.geteuid() != 0 and not os.path.islink(path) \
            and os.path.lexists(path):  # root needs no opening, and gets none
        with suppress(OSError):  # a folder it could not open: rm says what is left
            opening.open_to_owner(path)
        proc = subprocess.run(rm, capture_output=True, check=False, timeout=600)
    if proc.returncode != 0 and os.path.lexists(path):
        raise ClauderonError(f"could not remove {path}: {quote('rm', proc.stderr)}")
