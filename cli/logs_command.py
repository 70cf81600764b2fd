"""``clauderon logs [SERVICE] [-f]``: the services' logs as supervisord writes them.

``clauderon daemon`` runs the four services under supervisord, which writes each one's
output to ``<home>/logs/<service>.log`` (``supervisord.conf``) and its own to
``supervisord.log``. This reads those files directly (no API: the logs matter most when the
API is down): the last lines of one service, or of each with a header, and with ``-f``
what is appended after, across supervisord's rotation (the file replaced or truncated).

Log lines can carry what an agent chose (a host, a path) and reach the user's terminal, so
control characters are shown escaped (``\\x1b``), never sent to the terminal as they are
(the services log JSON, which escapes them already; supervisord's own lines and anything a
library prints raw do not).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from appliance.config import load_settings
from appliance.errors import NotFound
from cli.table import Command, arg, fit

SERVICES = ("api", "proxy", "reconciler", "shipper")
CHOICES = (*SERVICES, "supervisord")
#: How often ``-f`` looks for more (a person reading; not a race).
POLL_SECONDS = 0.2
_BLOCK = 64 * 1024
#: C0 controls but tab and newline, DEL, and C1 controls (ESC, CSI, OSC ... sequences).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(data: bytes) -> bytes:
    """``data`` safe for a terminal: invalid UTF-8 and control characters escaped (pure)."""
    text = data.decode("utf-8", errors="backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text).encode()


def last_lines(data: bytes, count: int) -> bytes:
    """The last ``count`` lines of ``data`` (a final line without newline counts) (pure)."""
    if count <= 0:
        return b""
    return b"".join(data.splitlines(keepends=True)[-count:])


def tail(path: Path, count: int) -> tuple[bytes, int]:
    """The last ``count`` lines of the file and its size then, reading only the end."""
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        start, data = size, b""
        while start > 0 and data.count(b"\n") <= count:
            start = max(0, start - _BLOCK)
            f.seek(start)
            data = f.read(size - start)
    return last_lines(data, count), size


@dataclass
class _Followed:
    name: str
    path: Path
    inode: int | None
    offset: int


def _more(f: _Followed) -> bytes:
    """What was appended to ``f`` since last read; from the start after a rotation."""
    try:
        st = f.path.stat()
    except FileNotFoundError:
        return b""
    if st.st_ino != f.inode or st.st_size < f.offset:
        f.inode, f.offset = st.st_ino, 0
    if st.st_size == f.offset:
        return b""
    with f.path.open("rb") as handle:
        handle.seek(f.offset)
        data = handle.read(st.st_size - f.offset)
    # Only whole lines: a line being written is printed once it ends.
    cut = data.rfind(b"\n") + 1
    f.offset += cut
    return data[:cut]


def _write(data: bytes) -> None:
    """``data`` :func:`printable`, in the rows of the terminal (:func:`cli.table.fit`): a
    line of the agent's words that wrapped at the edge drew what followed where a line of
    the log begins (its service's name)."""
    sys.stdout.write(fit(printable(data).decode()))
    sys.stdout.flush()


def _prefixed(name: str, data: bytes) -> bytes:
    return b"".join(f"{name:<10} | ".encode() + line for line in data.splitlines(keepends=True))


def follow(items: Sequence[_Followed], *, prefix: bool) -> None:
    """Print what is appended to each file until interrupted."""
    while True:
        for f in items:
            data = _more(f)
            if data:
                _write(_prefixed(f.name, data) if prefix else data)
        time.sleep(POLL_SECONDS)


def cmd_logs(args: argparse.Namespace) -> int:
    folder = load_settings().logs_dir
    names = [args.service] if args.service else list(SERVICES)
    paths = {n: folder / f"{n}.log" for n in names}
    present = {n: p for n, p in paths.items() if p.is_file()}
    if not present:
        raise NotFound(f"no log in {folder} for {', '.join(names)}: the services write their "
                       "logs there when the appliance runs under `clauderon daemon` "
                       "(supervisord); is it running?")
    followed = []
    for name, path in present.items():
        text, size = tail(path, args.lines)
        if len(names) > 1 and not args.follow:
            _write(f"==> {name} ({path}) <==\n".encode() + text)
        else:
            _write(_prefixed(name, text) if len(names) > 1 else text)
        followed.append(_Followed(name, path, path.stat().st_ino, size))
    if args.follow:
        with contextlib.suppress(KeyboardInterrupt):
            follow(followed, prefix=len(names) > 1)
    return 0


TABLE = (Command(
    name="logs", help="print the services' logs (supervisord's files under the home's logs "
    "folder); -f follows them", handler=cmd_logs, json=False, args=(
        arg("service", nargs="?", choices=CHOICES,
            help="one service (default: the four, each under a header)"),
        arg("-n", "--lines", type=int, default=50, metavar="N",
            help="how many of the last lines to print (default 50)"),
        arg("-f", "--follow", action="store_true",
            help="keep printing what is appended (Ctrl-C ends)"))),)
