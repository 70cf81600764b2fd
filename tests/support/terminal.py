"""A command run on a real pseudo-terminal, as a person runs it, its screen read back."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import struct
import termios
from collections.abc import Callable, Mapping, Sequence


def _read_until(fd: int, seen: bytes, marker: bytes | None = None) -> bytes:
    """What the terminal showed, read until ``marker`` shows or the command closes it."""
    while marker is None or marker not in seen:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen


def on_a_terminal(argv: Sequence[str], env: Mapping[str, str], *, asks: bytes | None = None,
                  answer: Callable[[], str] = lambda: "", columns: int = 0) -> tuple[int, str]:
    """``argv`` on a pseudo-terminal (``columns`` wide, when given); once it shows ``asks``,
    what ``answer`` returns is typed with Enter. Its exit code and all it showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, on the terminal
        if columns:
            fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        os.execve(argv[0], list(argv), {**env, "TERM": "xterm-256color"})
    try:
        seen = b""
        if asks is not None:
            seen = _read_until(fd, seen, asks)
            assert asks in seen, seen.decode(errors="replace")
            os.write(fd, answer().encode() + b"\r")
        seen = _read_until(fd, seen)
        _, status = os.waitpid(pid, 0)
    finally:
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")
