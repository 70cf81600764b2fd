"""Wakes supervisord the moment one of its services dies, so the service comes back at once.

supervisord notices a dead child when its poll wakes (the child's pipes closing do that)
and reaps it, but starts the replacement only on its next turn, and that turn's poll waits
up to a second for something to happen. Nothing does on an idle appliance: a crashed
service came back a second late, every time. This watcher, started by ``clauderon daemon``
beside supervisord, holds a pidfd for each running service; when one ends it makes a few
calls to supervisord's RPC socket, and each call is something happening: the next turn
runs now and starts the service again. It ends when supervisord does.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

#: How long one watch lasts before the services are asked for again (new pids after a
#: restart or an update are picked up then, or at once after a death).
PATIENCE_MS = 5000
#: Calls after a death, a little apart: the first may land before the reap.
NUDGES = 3


def _rpc(socket: Path) -> Any:
    transport = SupervisorTransport(None, None, f"unix://{socket}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def running_pids(socket: Path) -> set[int]:
    """The pids of the processes supervisord runs now (none when it does not answer)."""
    try:
        with _rpc(socket) as rpc:
            infos = rpc.supervisor.getAllProcessInfo()
    except (OSError, xmlrpc.client.Error):
        return set()
    return {int(i["pid"]) for i in infos if i.get("pid")}


def nudge(socket: Path) -> None:
    for _ in range(NUDGES):
        with contextlib.suppress(OSError, xmlrpc.client.Error), _rpc(socket) as rpc:
            rpc.supervisor.getState()
        time.sleep(0.02)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except OSError:  # gone already, or not ours to watch
        return None


def watch(supervisor_pid: int, socket: Path) -> int:
    """Watch until supervisord (``supervisor_pid``) ends; 0 then."""
    own = _pidfd(supervisor_pid)
    if own is None:
        return 0
    try:
        while True:
            fds = {fd: pid for pid in running_pids(socket) if (fd := _pidfd(pid)) is not None}
            try:
                poller = select.poll()
                poller.register(own, select.POLLIN)
                for fd in fds:
                    poller.register(fd, select.POLLIN)
                ready = {fd for fd, _ in poller.poll(PATIENCE_MS)}
            finally:
                for fd in fds:
                    os.close(fd)
            if own in ready:
                return 0
            if ready:
                nudge(socket)
    finally:
        os.close(own)
