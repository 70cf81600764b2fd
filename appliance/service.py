"""What every daemon's ``main()`` shares: JSON logging and graceful, bounded shutdown.

Each service is an ``async def serve(..., task_status)``. :func:`run_until_signalled` starts
it and waits for SIGTERM or SIGINT; then it calls the service's ``drain`` (stop taking new
work, let in-flight work finish) under a deadline, and cancels whatever is left. supervisord
sends SIGTERM and waits ``stopwaitsecs``; our grace is shorter, so nothing is ever killed.
"""

from __future__ import annotations

import json
import logging
import resource
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import trio

from appliance.errors import ClauderonError, first_leaf

ServeFn = Callable[..., Awaitable[None]]


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, msg, plus ``session`` when given."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("session", "service"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


@contextmanager
def ends_clearly(log: logging.Logger) -> Iterator[None]:
    """A :class:`ClauderonError` that stops a service (a configuration it cannot serve, a
    port another program holds) ends it with the error's message as one log line and the
    error's exit code, never a traceback; also when it leaves a nursery inside a group."""
    try:
        yield
    except* ClauderonError as group:
        exc = first_leaf(group)
        log.error("%s", exc.message)
        raise SystemExit(exc.exit_code) from None


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


#: Enough descriptors for every session's share of connections (``[docker]
#: max_connections`` each) with room to spare; a workstation's default soft limit (1024)
#: would run out with a few sessions' worth.
OPEN_FILES = 65536


def raise_open_files(want: int = OPEN_FILES) -> int:
    """Raise this process's soft limit on open files towards ``want`` (never above the hard
    limit, never lower than it was) and return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


async def run_until_signalled(
    serve: ServeFn,
    *,
    drain: Callable[[float], Awaitable[None]] | None = None,
    grace: float = 10.0,
    name: str = "service",
) -> None:
    log = logging.getLogger(name)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve)
            log.info("%s ready", name)
            async for signum in signals:
                log.info("%s got %s; shutting down (grace %.0fs)", name,
                         signal.Signals(signum).name, grace)
                break
            if drain is not None:
                with trio.move_on_after(grace):
                    await drain(grace)
            nursery.cancel_scope.cancel()
    log.info("%s stopped", name)
