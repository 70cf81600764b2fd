"""Run a terminal program (an attach) whose output the agent controls, between the person's
terminal and :class:`cli.escapes.TerminalFilter` (I/O shell).

The program gets a pseudo-terminal of its own, sized like the person's and resized with it
(SIGWINCH, passed on); keys go to it untouched, in raw mode; what it writes reaches the person's
terminal only through the filter, and the terminal's modes are given back when it ends
(:data:`cli.escapes.RESTORE`), its answers to the program's queries read and dropped
(:data:`BARRIER`), unless the terminal has shown that it answers no such question
(``cli/termanswers.py``). Its stderr goes where the caller says (the TUI reads the detach message
there). The exit status is the program's.

:func:`run_attach_filtered` waits out a hold: the host holds a session's container still while it
reads the container's files (the diff; ``appliance/backends/docker_freeze.py``), and the
engine refuses an attach or a terminal into a container held still. Just after a start, the
moment a person attaches is the moment a client reads the new session's diff, so the attach
is asked again (told once) until the hold ends, instead of failing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import termios
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from cli.escapes import RESTORE, TerminalFilter
from cli.termanswers import (
    ANSWER,
    HOLD_SECONDS,
    LEARN_SECONDS,
    QUERY,
    FirstAnswer,
    barrier_deadline,
)

CHUNK = 65536
#: In what the engine says when it refuses to attach to, or run in, a container held still
#: ("You cannot attach to a paused container, unpause it first"; "Container … is paused,
#: unpause the container before exec").
HELD = b"unpause"
#: How often, and how long apart, an attach refused for a hold is asked again: a minute in
#: all, far past one git read of a worktree.
HOLD_TRIES, HOLD_WAIT = 120, 0.5
WAITING = (b"the session's container is held still while its files are read; waiting "
           b"(ctrl-c stops)\r\n")
#: Keys typed while waiting that are kept for the program (less than a terminal buffers).
TYPE_AHEAD = 1024
#: Keys that end the waiting: ctrl-c, ctrl-d, and ctrl-q (what detaches once attached).
GIVE_UP = frozenset(b"\x03\x04\x11")
#: Asked of the person's terminal once the program has ended: the primary device attributes,
#: which the filter never lets the program ask. Answers come in order, so once this one is
#: read, the terminal has answered everything the agent asked (over a slow link, answers
#: arrive after the attach has ended: a shell would read them as typed, and the TUI as keys,
#: ``m`` in ``tmux 3.3a`` switching the access mode). The same is asked as the program
#: starts, to learn whether the terminal answers at all (``cli/termanswers.py``).
BARRIER = QUERY
BARRIER_ANSWER = ANSWER


@dataclass
class Probe:
    """What an attach learns of the person's terminal, kept across the tries of one attach:
    the first question is asked once, and its answer taken out of the keys whichever try
    reads it."""

    first: FirstAnswer = field(default_factory=FirstAnswer)
    asked: float | None = None
    began: bool = False
    settled: bool = True


def _copy_size(src: int, dst: int) -> None:
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)


@contextlib.contextmanager
def _raw(fd: int) -> Iterator[None]:
    """The person's terminal in raw mode (keys as typed, no echo), restored after."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _relay(master: int, fin: int, fout: int, first: FirstAnswer, *, typed: bytes = b"",
           sent: bytearray | None = None) -> None:
    """Keys to the program (first ``typed``, already read; less the answer ``first`` takes
    out), its output through the filter, until its side closes.
    The first keys sent (up to :data:`CHUNK`) are kept in ``sent``."""

    def send(keys: bytes) -> None:
        _write_all(master, keys)
        if sent is not None and len(sent) < CHUNK:
            sent.extend(keys)

    with contextlib.suppress(OSError):  # a program that already ended reads nothing
        _write_all(master, typed)
    if sent is not None:
        sent += typed
    screen = TerminalFilter()
    with selectors.DefaultSelector() as sel:
        sel.register(master, selectors.EVENT_READ)
        with contextlib.suppress(ValueError, OSError):
            sel.register(fin, selectors.EVENT_READ)
        while True:
            ready = sel.select(HOLD_SECONDS if first.holding else None)
            if not ready:  # the start of an answer that never came: keys (a lone escape)
                send(first.flush())
            for key, _ in ready:
                if key.fd != master:
                    keys = os.read(fin, CHUNK)
                    if keys:
                        send(first.feed(keys))
                    else:
                        sel.unregister(fin)
                    continue
                data = _read_program(master)
                if not data:
                    return
                _write_all(fout, screen.feed(data))


def _read_program(master: int) -> bytes:
    """What the program wrote next (empty: its side is closed)."""
    try:
        return os.read(master, CHUNK)
    except OSError as exc:  # EIO: the program's side is closed
        if exc.errno != errno.EIO:
            raise
        return b""


def _ask(fin: int, fout: int) -> float | None:
    """Ask the person's terminal the first question (when it is one, in raw mode); when."""
    if not (os.isatty(fin) and os.isatty(fout)):
        return None
    _write_all(fout, QUERY)
    return time.monotonic()


def _drain(fin: int, fout: int, first: FirstAnswer, asked: float | None) -> None:
    """Read, and drop, what the person's terminal still answers to the program, up to the
    answer to :data:`BARRIER` (not asked of a terminal that answers none)."""
    if asked is None or not os.isatty(fin):
        return
    plan = barrier_deadline(first.answered, asked, time.monotonic())
    if plan is None:
        return
    deadline, owed = plan
    _write_all(fout, BARRIER)
    seen = first.flush()  # the start of the first answer, when the program ended before its rest
    with selectors.DefaultSelector() as sel:
        sel.register(fin, selectors.EVENT_READ)
        while owed:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            data = os.read(fin, CHUNK)
            if not data:
                break
            seen += data
            while owed and (answer := BARRIER_ANSWER.search(seen)) is not None:
                seen, owed = seen[answer.end():], owed - 1
                if owed:  # the first question's: the terminal answers; the barrier's next
                    deadline = time.monotonic() + LEARN_SECONDS
            seen = seen[-64:]


def run_filtered(argv: list[str], *, stdin: int | None = None, stdout: int | None = None,
                 stderr: IO[bytes] | int | None = None, raw: bool = True,
                 typed: bytes = b"", sent: bytearray | None = None,
                 probe: Probe | None = None) -> int:
    """Run ``argv`` on a pseudo-terminal, its output filtered; its exit status. ``raw``:
    put the person's terminal in raw mode for it (False: the caller has). ``typed``: keys
    read before it started, handed to it first; ``sent``: the first keys it was handed.
    ``probe``: what earlier tries of the same attach learnt of the terminal; the end is
    then the caller's (:func:`_settle`), once no try is left: a try the engine refused may
    have written (the pseudo-terminal echoing the keys handed to it), and settling then
    read the person's next keys as the terminal's answers and dropped them (an Enter typed
    during a hold never reached the shell)."""
    fin = sys.stdin.fileno() if stdin is None else stdin
    fout = sys.stdout.fileno() if stdout is None else stdout
    sized = fout if os.isatty(fout) else fin
    master, slave = os.openpty()
    _copy_size(sized, slave)
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=stderr,
                                start_new_session=True)
    finally:
        os.close(slave)
    try:
        with _resizes_told(sized, master, proc):
            with _raw(fin) if raw else contextlib.nullcontext():
                state = Probe() if probe is None else probe
                if not state.began:
                    state.asked, state.began = _ask(fin, fout), True
                _relay(master, fin, fout, state.first, typed=typed, sent=sent)
                state.settled = False
                if probe is None:
                    _settle(fin, fout, state)
            return proc.wait()
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.terminate()
            proc.wait()


@contextlib.contextmanager
def _resizes_told(sized: int, master: int, proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """The program on ``master`` told of each resize of the terminal ``sized``."""

    def resized(*_: object) -> None:
        # The pseudo-terminal is not the program's controlling one: it is told itself.
        _copy_size(sized, master)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGWINCH)

    try:  # only the main thread may take a signal; elsewhere the size stays as it began
        previous, taken = signal.signal(signal.SIGWINCH, resized), True
    except ValueError:
        previous, taken = None, False
    try:
        yield
    finally:
        if taken:
            signal.signal(signal.SIGWINCH, previous or signal.SIG_DFL)


def _settle(fin: int, fout: int, probe: Probe) -> None:
    """The end of an attach: the person's modes back, and the terminal's last answers read."""
    if os.isatty(fout):  # the modes the program left are not the person's
        _write_all(fout, RESTORE)
        _drain(fin, fout, probe.first, probe.asked)
    probe.settled = True


def _refused_for_hold(errors: Path) -> bool:
    """Whether ``errors`` (the program's stderr) is the engine's refusal for a hold: one
    short line (a program that ran may have written more; that is not a refusal)."""
    data = errors.read_bytes() if errors.stat().st_size <= 4096 else b""
    return HELD in data


def _keys_within(fin: int, seconds: float) -> bytes:
    """What the person types within ``seconds`` (empty when nothing, or no terminal)."""
    with selectors.DefaultSelector() as sel:
        try:
            sel.register(fin, selectors.EVENT_READ)
        except (ValueError, OSError):
            time.sleep(seconds)
            return b""
        return os.read(fin, CHUNK) if sel.select(seconds) else b""


@contextlib.contextmanager
def stderr_file() -> Iterator[Path]:
    """A path for an attach's stderr (its detach message, a refusal), gone afterwards."""
    with tempfile.TemporaryDirectory(prefix="clauderon-attach-") as tmp:
        yield Path(tmp) / "stderr"


def run_attach_filtered(argv: list[str], errors: Path) -> int:
    """:func:`run_filtered` with its stderr in ``errors``, asked again while the engine
    refuses it because the container is held still (see the module's notes). What the
    person types while it waits goes to the program once it runs; ctrl-c, ctrl-d or
    ctrl-q stops the waiting (the refusal's status)."""
    fin, out = sys.stdin.fileno(), sys.stdout.fileno()
    told, typed, probe = False, b"", Probe()
    # Raw throughout: keys typed while waiting are read here, not lost to a flush.
    with _raw(fin):
        try:
            for _ in range(HOLD_TRIES):
                sent = bytearray()
                with errors.open("wb") as sink:
                    status = run_filtered(argv, stderr=sink, raw=False, typed=typed, sent=sent,
                                          probe=probe)
                if status == 0 or not _refused_for_hold(errors):
                    return status
                if not told:
                    _write_all(out, WAITING)
                    told = True
                # A refused attempt never connected: what it was handed is handed again,
                # and the terminal's answer to the first question is no key.
                typed = bytes(sent) + probe.first.feed(_keys_within(fin, HOLD_WAIT))
                if GIVE_UP.intersection(typed):
                    return status
                typed = typed[:TYPE_AHEAD]
            return status
        finally:
            if not probe.settled:
                _settle(fin, out, probe)
