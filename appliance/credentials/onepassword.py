"""1Password: resolving ``op://vault/item/field`` references with the ``op`` CLI.

The contract we rely on is ``op read <reference>``: the value on stdout and exit 0, or a
message on stderr (``[ERROR] <time> could not read secret ...``) and a non-zero exit. ``op``
is wrapped with the ``sh`` library; every reference is started at once in the background
and each is waited for with its own deadline, so one slow or failing item costs a warning
naming its credential and nothing else. ``op`` missing altogether is one warning per
credential that wanted it. The caller (:mod:`appliance.credentials.loader`) decides the
precedence; this module only turns references into values.

Authentication (``OP_SERVICE_ACCOUNT_TOKEN``, ``OP_SESSION_*``, the desktop app
integration) is ``op``'s business: we pass it the environment we were given.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sh

log = logging.getLogger(__name__)
# sh logs the first bytes of every stdout chunk at DEBUG, and op's stdout is a secret: its
# loggers are held at INFO whatever level the root logger runs at.
_SH_LOG = logging.getLogger("sh")

REF_PREFIX = "op://"
DEFAULT_TIMEOUT_SECONDS = 10.0
_STDERR_LIMIT = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    values: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def is_reference(value: str) -> bool:
    return value.startswith(REF_PREFIX)


def resolve(refs: Mapping[str, str], *, op_path: str, env: Mapping[str, str],
            timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Resolved:
    """Read each ``name -> op://...`` reference; values for those that worked, warnings else."""
    out = Resolved()
    if not refs:
        return out
    executable = shutil.which(op_path, path=env.get("PATH"))
    if executable is None:
        for name, ref in refs.items():
            out.warnings.append(f"{name}: 1Password CLI {op_path!r} not found, cannot read {ref}")
        return out
    if _SH_LOG.level < logging.INFO:
        _SH_LOG.setLevel(logging.INFO)
    op = sh.Command(executable)
    running: dict[str, tuple[str, Any]] = {}
    for name, ref in refs.items():
        try:
            running[name] = (ref, op("read", ref, _bg=True, _bg_exc=False, _timeout=timeout,
                                     _tty_out=False, _in="", _env=dict(env)))
        except (sh.ErrorReturnCode, sh.ForkException, OSError) as exc:
            out.warnings.append(f"{name}: could not start 1Password CLI for {ref} ({exc!s:.100})")
    for name, (ref, proc) in running.items():
        _collect(out, name, ref, proc, timeout)
    log.debug("1Password resolved %d of %d references", len(out.values), len(refs))
    return out


def _collect(out: Resolved, name: str, ref: str, proc: Any, timeout: float) -> None:
    """Wait for ``proc`` (``op read ref``): its value into ``out``, or a warning naming
    ``name``."""
    try:
        proc.wait()
    except sh.TimeoutException:
        out.warnings.append(f"{name}: 1Password CLI timed out after {timeout:g} s reading {ref}")
        return
    except sh.ErrorReturnCode as exc:
        # Only stderr is quoted: stdout is where a value would be.
        out.warnings.append(f"{name}: 1Password could not read {ref}: {_first_line(exc.stderr)}")
        return
    value = _decode(proc.stdout).rstrip()
    if value:
        out.values[name] = value
    else:
        out.warnings.append(f"{name}: 1Password returned an empty value for {ref}")


def _decode(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _first_line(raw: bytes | str) -> str:
    text = _decode(raw).strip()
    return (text.splitlines()[0] if text else "no message")[:_STDERR_LIMIT]
