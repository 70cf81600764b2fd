"""Run a terminal program (an attach) whose output the agent controls, between the person's
terminal and :class:`cli.escapes.TerminalFilter` (I/O shell).

The program gets a pseudo-terminal of its own, sized like the person's and resized with it
(SIGWINCH, passed on); keys go to it untouched, in raw mode; what it writes reaches the person's
terminal only through the filter. Its stderr goes where the caller says (the TUI reads the
detach message there). The exit status is the program's.

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
import termios
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cli.escapes import TerminalFilter

CHUNK = 65536
#: In what the engine says when it refuses to attach to, or run in, a container held still
#: ("You cannot attach to a paused container, unpause it first"; "Container … is paused,
#: unpause the container before exec").
HELD = b"unpause"
#: How often, and how long apart, an attach refused for a hold is asked again: a minute in
#: all, far past one git read of a worktree.
HOLD_TRIES, HOLD_WAIT = 120, 0.5
WAITING = b"the session's container is held still while its files are read; waiting\r\n"


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


def _relay(master: int, fin: int, fout: int) -> None:
    """Keys to the program, its output through the filter, until its side closes."""
    screen = TerminalFilter()
    with selectors.DefaultSelector() as sel:
        sel.register(master, selectors.EVENT_READ)
        with contextlib.suppress(ValueError, OSError):
            sel.register(fin, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                if key.fd != master:
                    keys = os.read(fin, CHUNK)
                    if keys:
                        _write_all(master, keys)
                    else:
                        sel.unregister(fin)
                    continue
                try:
                    data = os.read(master, CHUNK)
                except OSError as exc:  # EIO: the program's side is closed
                    if exc.errno != errno.EIO:
                        raise
                    data = b""
                if not data:
                    return
                _write_all(fout, screen.feed(data))


def run_filtered(argv: list[str], *, stdin: int | None = None, stdout: int | None = None,
                 stderr: IO[bytes] | int | None = None, raw: bool = True) -> int:
    """Run ``argv`` on a pseudo-terminal, its output filtered; its exit status. ``raw``:
    put the person's terminal in raw mode for it (False: the caller has)."""
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

    def resized(*_: object) -> None:
        # The pseudo-terminal is not the program's controlling one: it is told itself.
        _copy_size(sized, master)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGWINCH)

    try:  # only the main thread may take a signal; elsewhere the size stays as it began
        previous = signal.signal(signal.SIGWINCH, resized)
        taken = True
    except ValueError:
        previous, taken = None, False
    try:
        with _raw(fin) if raw else contextlib.nullcontext():
            _relay(master, fin, fout)
        return proc.wait()
    finally:
        if taken:
            signal.signal(signal.SIGWINCH, previous or signal.SIG_DFL)
        os.close(master)
        if proc.poll() is None:
            proc.terminate()
            proc.wait()


def _refused_for_hold(errors: Path) -> bool:
    """Whether ``errors`` (the program's stderr) is the engine's refusal for a hold: one
    short line (a program that ran may have written more; that is not a refusal)."""
    data = errors.read_bytes() if errors.stat().st_size <= 4096 else b""
    return HELD in data


def run_attach_filtered(argv: list[str], errors: Path, *, fout: int | None = None) -> int:
    """:func:`run_filtered` with its stderr in ``errors``, asked again while the engine
    refuses it because the container is held still (see the module's notes)."""
    out = sys.stdout.fileno() if fout is None else fout
    told = False
    # Raw throughout: what the person types while waiting is kept for the program.
    with _raw(sys.stdin.fileno()):
        for _ in range(HOLD_TRIES):
            with errors.open("wb") as sink:
                status = run_filtered(argv, stdout=fout, stderr=sink, raw=False)
            if status == 0 or not _refused_for_hold(errors):
                return status
            if not told:
                _write_all(out, WAITING)
                told = True
            time.sleep(HOLD_WAIT)
    return status
