"""``clauderon backup PATH`` and ``clauderon restore PATH``: the database, with SQLite's
online backup (``appliance/backup.py``).

A backup runs against the live appliance. A restore replaces the database under the
services' feet, so it refuses while any of them could be running: the API's socket answers,
or supervisord's does (``clauderon daemon``), and says how to stop them.
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from appliance import backup
from appliance.config import load_settings
from appliance.errors import Conflict
from cli.table import Command, arg, emit


def _answers(path: Path) -> bool:
    """Whether something listens on the Unix socket ``path`` (a refused or missing socket
    is a stale file: nothing runs)."""
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(2.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def running_services(home: Path, api_socket: Path) -> list[str]:
    """What of the appliance answers now, by the sockets it listens on."""
    found = []
    if _answers(api_socket):
        found.append(f"the API ({api_socket})")
    if _answers(home / "supervisor.sock"):
        found.append(f"supervisord ({home / 'supervisor.sock'})")
    return found


def _summary(args: argparse.Namespace, done: backup.Copied, verb: str) -> int:
    return emit(args, {"path": str(done.path), "sessions": done.sessions,
                       "schema": done.schema, "bytes": done.size},
                f"{verb} {done.path}: {done.sessions} session(s), schema {done.schema}, "
                f"{done.size} bytes")


def cmd_backup(args: argparse.Namespace) -> int:
    settings = load_settings()
    target = Path(args.path).expanduser().absolute()
    return _summary(args, backup.backup(settings.db_path, target), "backed up to")


def cmd_restore(args: argparse.Namespace) -> int:
    settings = load_settings()
    running = running_services(settings.home, settings.socket_path)
    if running:
        raise Conflict(f"the appliance is running ({', '.join(running)}): a restore would "
                       "replace the database under it. Stop it first (end `clauderon "
                       "daemon`, or `supervisorctl stop all`), run the restore, then start "
                       "it again")
    source = Path(args.path).expanduser().absolute()
    done = backup.restore(source, settings.db_path, force=args.force)
    return _summary(args, done, "restored into")


TABLE = (
    Command(name="backup", help="copy the live database (sessions, events, usage, sign-in) "
            "to PATH with SQLite's online backup; the appliance keeps running",
            handler=cmd_backup,
            args=(arg("path", metavar="PATH", help="the backup file to write (replaced)"),)),
    Command(name="restore", help="replace the database with a backup made by `clauderon "
            "backup` (the appliance must be stopped)", handler=cmd_restore, args=(
        arg("path", metavar="PATH", help="the backup file to read"),
        arg("--force", action="store_true", help="replace a database that holds sessions"))),
)
