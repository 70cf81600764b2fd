"""Reading a tree inside a session's pod through the exec API, with safefs's contract.

A Kubernetes session's workspace and home live on its volume; when the appliance does not
see that volume (``[kubernetes] volume_root`` unset), they are read from inside the pod,
as the pod's own user, by small POSIX shell scripts run through the Backend's ``exec``.
The agent image has no python: the scripts use ``sh``, ``find``, ``stat``, ``head`` and
``dd`` at absolute paths (never a name the agent could put first on ``PATH``).

The contract is :mod:`appliance.safefs`'s: the client's path is parsed by
:func:`safefs.parse` (absolute, ``..``, NUL, too long refused) and the same errors come
back for the same cases:

* every component is looked at before it is entered: a symlink anywhere refuses the path,
  a missing one is a 404, a non-folder on the way is a 404, the wrong kind a 400;
* listings come from ``find -P`` (never following) as NUL-separated ``type, size, name``
  triples, cut at the limit inside the pod (``head -z``); names cannot hold NUL or ``/``, so
  a name the agent chose (newlines, escape sequences) cannot forge an entry, and any output
  that does not parse strictly is refused (502), never guessed at;
* files are refused unless regular, then read by ``dd iflag=nofollow,nonblock`` from an
  offset for a bounded count: a FIFO swapped in at the last instant cannot hang the reader,
  a huge file costs only what is asked for.

Why a race inside the pod does not matter here: these scripts run as the pod's user, the
agent's own uid, with no privilege the agent lacks, so a path swapped between a check and
its use can only show the agent's own bytes, which it could have copied into the workspace
anyway. What must hold is the contract (symlinks typed, never followed when the check sees
them; bounded time and size; strict parsing), and that nothing it returns is run or trusted.

:func:`refusal` and :func:`parse_listing` are pure; :class:`PodTree` is the thin shell, its
``run`` a blocking call of ``exec`` (``trio.from_thread`` in the API's worker threads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from appliance.backends.base import ExecResult
from appliance.errors import BackendError, ClauderonError, Conflict, InvalidInput, NotFound
from appliance.quoted import quote
from appliance.safefs import Entry, Kind, Listing, joined

Run = Callable[[list[str]], ExecResult]

#: Seconds the pod gives ``find`` or ``dd`` before killing it (the exec has its own bound).
POD_SECONDS = 20
SH, FIND, HEAD, STAT, DD, TIMEOUT = ("/bin/sh", "/usr/bin/find", "/usr/bin/head",
                                     "/usr/bin/stat", "/usr/bin/dd", "/usr/bin/timeout")

# Exit codes the scripts use; each prints the 1-based index of the component concerned.
NO_ROOT, SYMLINK, MISSING, NOT_DIR, DENIED, IS_DIR, NOT_REGULAR = range(90, 97)

_WALK = r"""
cd -P -- "$r" 2>/dev/null || exit 90
i=0
for c do
  i=$((i+1))
  if [ -L "$c" ]; then echo "$i"; exit 91; fi
  if [ ! -e "$c" ]; then echo "$i"; exit 92; fi
  if [ "$i" -lt "$#" ] || [ "$want" = dir ]; then
    [ -d "$c" ] || { echo "$i"; exit 93; }
    cd -P -- "$c" 2>/dev/null || { echo "$i"; exit 94; }
  fi
done
"""
LIST_SCRIPT = r'r=$1; n=$2; want=dir; shift 2' + _WALK + rf"""
[ -r . ] || {{ echo "$#"; exit 94; }}
{TIMEOUT} -s KILL {POD_SECONDS} {FIND} -P . -mindepth 1 -maxdepth 1 \
  -printf '%y\0%s\0%f\0' 2>/dev/null | {HEAD} -z -n "$n"
"""
READ_SCRIPT = r'r=$1; off=$2; cnt=$3; want=file; shift 3' + _WALK + rf"""
# the loop left the last component in $c
[ -d "$c" ] && {{ echo "$#"; exit 95; }}
[ -f "$c" ] || {{ echo "$#"; exit 96; }}
[ -r "$c" ] || {{ echo "$#"; exit 94; }}
s=$({STAT} -c %s -- "$c") || {{ echo "$#"; exit 92; }}
echo "$s"
exec {TIMEOUT} -s KILL {POD_SECONDS} {DD} if="$c" iflag=nofollow,nonblock,skip_bytes,count_bytes \
  skip="$off" count="$cnt" bs=65536 status=none
"""

_KINDS = {b"d": Kind.DIR, b"f": Kind.FILE, b"l": Kind.SYMLINK}


def _index(out: bytes, parts: tuple[str, ...]) -> int | None:
    """The component a refusal names (what the script printed), checked."""
    text = out.strip()
    if not text.isdigit() or not 0 <= int(text) <= len(parts):
        return None
    return int(text)


def refusal(done: ExecResult, parts: tuple[str, ...], *, label: str, absent: str,
            want: Kind) -> ClauderonError:
    """The error safefs would give for what the script found (pure)."""
    rel = joined(parts)
    code = done.exit_code
    if code == NO_ROOT:
        return InvalidInput(absent)
    if code not in (SYMLINK, MISSING, NOT_DIR, DENIED, IS_DIR, NOT_REGULAR):
        said = quote("the pod", done.stderr, limit=200)
        return BackendError(f"reading {rel or 'the root'!r} of {label} in the session's pod "
                            f"failed (exit {code}): {said}", retryable=True)
    i = _index(done.stdout, parts)
    if i is None:
        return BackendError("a read in the session's pod answered something unexpected",
                            retryable=False)
    here = joined(parts[:i])
    last = i == len(parts)
    if code == SYMLINK:
        return InvalidInput(f"{here!r} is a symlink; symlinks are listed but never followed",
                            field="path")
    if code == MISSING:
        return NotFound(f"{rel!r} does not exist in {label}")
    if code == DENIED:
        return InvalidInput(f"{here!r} cannot be read (permission denied)", field="path")
    if code == NOT_DIR and not (last and want is Kind.DIR):
        return NotFound(f"{rel!r} does not exist in {label} ({here!r} is not a folder)")
    if code == NOT_DIR:
        return InvalidInput(f"{here!r} is not a folder", field="path")
    if code == IS_DIR:
        return InvalidInput(f"{rel!r} is a folder, not a file", field="path")
    return InvalidInput(f"{rel!r} is not a regular file (a FIFO, socket or device); only "
                        "regular files can be read", field="path")


def parse_listing(out: bytes, parts: tuple[str, ...], *, hidden: frozenset[str],
                  limit: int) -> Listing:
    """``type NUL size NUL name NUL`` triples as a listing, sorted like safefs's (pure).
    Anything but well-formed triples is refused whole: nothing is guessed."""
    fields = out.split(b"\0")
    if fields.pop() != b"" or len(fields) % 3:
        raise BackendError("the listing from the session's pod is malformed", retryable=True)
    entries: list[Entry] = []
    truncated = False
    for i in range(0, len(fields), 3):
        kind_b, size_b, name_b = fields[i:i + 3]
        if len(kind_b) != 1 or not kind_b.isalpha() or not size_b.isdigit() or \
                not name_b or b"/" in name_b or name_b in (b".", b".."):
            raise BackendError("the listing from the session's pod is malformed",
                               retryable=True)
        name = name_b.decode("utf-8", "replace")
        if name in hidden:
            continue
        if len(entries) >= limit:
            truncated = True
            break
        kind = _KINDS.get(kind_b, Kind.OTHER)
        entries.append(Entry(name=name, path=joined((*parts, name)), kind=kind,
                             size=int(size_b) if kind is Kind.FILE else None))
    entries.sort(key=lambda e: (e.kind is not Kind.DIR, e.name.lower(), e.name))
    return Listing(path=joined(parts), entries=tuple(entries), truncated=truncated)


def parse_read(out: bytes) -> tuple[int, bytes]:
    """``size LF data``: the file's size when looked at, and the bytes read (pure)."""
    head, sep, data = out.partition(b"\n")
    if not sep or not head.isdigit() or len(head) > 20:
        raise BackendError("a file read from the session's pod is malformed", retryable=True)
    return int(head), data


@dataclass(frozen=True, slots=True, kw_only=True)
class PodFile:
    """A regular file of a pod's tree: its size when first looked at; reads go back to the
    pod each time (the walk is checked again)."""

    tree: PodTree
    parts: tuple[str, ...]
    path: str
    size: int

    def read_at(self, offset: int, limit: int) -> bytes:
        return self.tree.read(self.parts, offset, limit)[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class PodTree:
    """One folder of the pod (``root``: the appliance's own path, /workspace or the home)."""

    run: Run
    root: str
    label: str
    absent: str

    def list_dir(self, parts: tuple[str, ...], *, hidden: frozenset[str] = frozenset(),
                 limit: int = 10_000) -> Listing:
        fields = 3 * (limit + 1 + len(hidden))
        done = self.run([SH, "-c", LIST_SCRIPT, "sh", self.root, str(fields), *parts])
        if done.exit_code != 0:
            raise refusal(done, parts, label=self.label, absent=self.absent, want=Kind.DIR)
        return parse_listing(done.stdout, parts, hidden=hidden, limit=limit)

    def read(self, parts: tuple[str, ...], offset: int, limit: int) -> tuple[int, bytes]:
        if not parts:
            raise InvalidInput(f"the root of {self.label} is a folder, not a file",
                               field="path")
        done = self.run([SH, "-c", READ_SCRIPT, "sh", self.root, str(offset), str(limit),
                         *parts])
        if done.exit_code == 0:
            return parse_read(done.stdout)
        if done.exit_code in (1, 137) and done.stdout[:1].isdigit():
            # dd refused after the checks passed: swapped for something else, or held.
            raise Conflict(f"{joined(parts)!r} changed while it was read; try again")
        raise refusal(done, parts, label=self.label, absent=self.absent, want=Kind.FILE)

    @contextmanager
    def open_file(self, parts: tuple[str, ...]) -> Iterator[PodFile]:
        size, _ = self.read(parts, 0, 0)
        yield PodFile(tree=self, parts=parts, path=joined(parts), size=size)
