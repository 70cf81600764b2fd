"""Carrying out a :class:`~appliance.agents.boot.BootPlan` through a backend's ``exec``.

The thin trio shell around the pure plan: check the tools, write the files, start the
agent. A missing tool fails with :class:`InvalidInput` naming it (permanent: retrying the
same image cannot help); a step that fails otherwise is a :class:`BackendError` quoting what
the container said. Also here: the host side of an agent's home folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import trio

from appliance.agents.boot import (
    MISSING_TOOLS,
    ROOT,
    BootPlan,
    check_argv,
    check_then_argv,
    write_argv,
)
from appliance.backends.base import ExecResult
from appliance.errors import BackendError, InvalidInput
from appliance.quoted import quote

log = logging.getLogger(__name__)

BOOT_TIMEOUT_SECONDS = 120.0
#: Notes when a boot step begins (``checked``, ``settings``, ``tmux``, ``booted``).
Mark = Callable[[str], None]
_NOT_FOUND_CODES = (126, 127)


class Execs(Protocol):
    async def exec(self, backend_id: str, argv: list[str], *, stdin: bytes | None = None,
                   user: str | None = None, seconds: float | None = None) -> ExecResult: ...


def _said(result: ExecResult) -> str:
    printed = result.stderr.strip() or result.stdout
    return f"exit status {result.exit_code}, {quote('the container', printed)}"


async def boot(backend: Execs, backend_id: str, plan: BootPlan, *, image: str,
               mark: Mark | None = None) -> None:
    try:
        with trio.fail_after(BOOT_TIMEOUT_SECONDS):
            await _boot(backend, backend_id, plan, image=image,
                        mark=mark or (lambda _step: None))
    except trio.TooSlowError:
        raise BackendError(
            f"starting the agent took more than {BOOT_TIMEOUT_SECONDS:.0f}s") from None


def _check(checked: ExecResult, plan: BootPlan, image: str, *, status: int = 0) -> None:
    """A missing tool (named on stdout with exit ``status``; no ``sh`` at all) fails the
    create for good, naming it: only the tools it was asked about are named (what else the
    image printed is its words, never the appliance's: quoted, :mod:`appliance.quoted`)."""
    printed = checked.stdout.decode(errors="replace").split() \
        if checked.exit_code == status else []
    missing = ", ".join(t for t in plan.tools if t in printed)
    if printed and not missing:
        missing = f"none of the tools it asked for ({quote('the check', checked.stdout)}):"
    if checked.exit_code in _NOT_FOUND_CODES and not checked.stdout.strip():
        missing = "sh"
    if missing:
        raise InvalidInput(
            f"the image {image} cannot run the agent: {missing} not found on PATH "
            f"(an agent image needs {', '.join(plan.tools)}; see images/agent/README.md)",
            field="image")


async def _boot(backend: Execs, backend_id: str, plan: BootPlan, *, image: str,
                mark: Mark) -> None:
    if plan.files:
        checked = await backend.exec(backend_id, check_argv(plan.tools))
        _check(checked, plan, image)
        if checked.exit_code != 0:
            raise BackendError(f"checking the image {image} failed: {_said(checked)}")
        mark("settings")
        for f in plan.files:
            wrote = await backend.exec(backend_id, write_argv(f), stdin=f.content,
                                       user=ROOT if f.as_root else None)
            if wrote.exit_code != 0:
                raise BackendError(
                    f"could not write {f.path} in the container: {_said(wrote)}")
        start = list(plan.start)
    else:
        # Nothing to write (the warm start wrote it before the start): one round trip.
        start = check_then_argv(plan.tools, plan.start)
    mark("tmux")
    started = await backend.exec(backend_id, start)
    if not plan.files:  # the start checked the tools first
        _check(started, plan, image, status=MISSING_TOOLS)
    if started.exit_code != 0:
        raise BackendError(f"could not start the agent: {_said(started)}")
    mark("booted")


def prepare_home(path: Path, uid: int, gid: int) -> None:
    """The session's agent home on the host, owned by the container's user."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.geteuid() == 0 and (path.stat().st_uid, path.stat().st_gid) != (uid, gid):
        os.chown(path, uid, gid)
