"""Asking the audit writer to reopen ``audit.jsonl`` after a rotation.

The proxy reopens its :class:`appliance.audit.AuditLog` on SIGHUP. Under supervisord the
shipper does not know the proxy's pid, so it asks supervisord (XML-RPC on the socket named
by ``SUPERVISOR_SERVER_URL``, which supervisord gives every child) to send the signal.
A failure is logged by the caller and retried: until the writer reopens it keeps appending
to the rotated file, which the shipper keeps reading, so nothing is lost meanwhile.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Protocol

import trio
from supervisor.xmlrpc import SupervisorTransport

from appliance.errors import ServiceUnavailable

TIMEOUT = 10.0


class Reopener(Protocol):
    async def reopen(self) -> None:
        """Make the writer reopen the audit log, or raise ServiceUnavailable."""


class SupervisorReopener:
    def __init__(self, server_url: str, program: str) -> None:
        self._url = server_url
        self._program = program

    def _signal(self) -> None:
        transport = SupervisorTransport(None, None, serverurl=self._url)
        with xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport) as server:
            server.supervisor.signalProcess(self._program, "HUP")

    async def reopen(self) -> None:
        try:
            with trio.fail_after(TIMEOUT):
                await trio.to_thread.run_sync(self._signal, abandon_on_cancel=True)
        except (OSError, xmlrpc.client.Error, trio.TooSlowError) as exc:
            raise ServiceUnavailable(
                f"cannot ask supervisord to send SIGHUP to {self._program!r}: {exc}"
            ) from exc
