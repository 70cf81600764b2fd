"""The proxy service with a memory probe, for the streams waves of ``bench/proxy.py``.

Run exactly like ``python -m proxy`` (same environment), plus ``CLAUDERON_PROBE_DIR``: a
folder the probe writes its reports to. ``CLAUDERON_PROBE_FRAMES`` (default 1; 0 turns it
off) starts ``tracemalloc`` with that many frames per allocation before the proxy builds
anything. Each SIGUSR2 runs a full garbage collection and writes ``probe-N.json``
(then renames it into place, so a reader never sees half a file):

- process figures: RSS, open descriptors, live trio tasks, ``sys.getallocatedblocks()``;
- Python heap: ``tracemalloc`` traced bytes now and at peak, and its own overhead;
- live objects by type (``gc.get_objects()``), the 40 most numerous;
- the size of everything the proxy keeps between requests (found through the garbage
  collector, so the proxy needs no hook): the leaf-certificate cache, the upstream pool,
  the session cache, the idle scopes, the Codex token overlay;
- with ``CLAUDERON_PROBE_TRIM=1``, RSS again after glibc's ``malloc_trim(0)``: the pages
  the allocator keeps free for reuse go back to the system, what stays is in use;
- with ``CLAUDERON_PROBE_SNAPSHOTS=1``, a ``tracemalloc`` snapshot dumped beside the
  report (``snapshot-N.tracemalloc``), for the bench to compare in its own process.

``bench/proxy.py`` sends the signal after each wave and prints the figures; nothing here
changes how the proxy behaves (apart from tracemalloc's own cost, which the bench says).
Neighbours: ``proxy_targets`` starts this instead of ``python -m proxy`` when asked to.
"""

from __future__ import annotations

import os
import tracemalloc

# Before anything else is imported, so the proxy's own modules are traced too.
FRAMES = int(os.environ.get("CLAUDERON_PROBE_FRAMES", "1"))
if FRAMES > 0:
    tracemalloc.start(FRAMES)

import ctypes  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import ssl  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# This folder's ``proxy.py`` (the bench) would hide the ``proxy`` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(REPO))

import trio  # noqa: E402

from appliance.config import Settings, load_settings  # noqa: E402
from appliance.service import configure_logging  # noqa: E402
from proxy.__main__ import run  # noqa: E402
from proxy.certs import CertStore  # noqa: E402
from proxy.directory import StoreDirectory  # noqa: E402
from proxy.state import ProxyState  # noqa: E402
from proxy.upstream import Pool  # noqa: E402

TOP_TYPES = 40


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _task_count() -> int:
    count = 0
    todo = [trio.lowlevel.current_root_task()]
    while todo:
        task = todo.pop()
        count += 1
        for nursery in task.child_nurseries:
            todo.extend(nursery.child_tasks)
    return count


def _proxy_holdings(objects: list[object]) -> dict[str, int]:
    """Sizes of every container the proxy keeps across requests."""
    out: dict[str, int] = {}
    for obj in objects:
        if isinstance(obj, ProxyState):
            out["idle_scopes"] = out.get("idle_scopes", 0) + len(obj.idle_scopes)
            out["codex_refreshed"] = out.get("codex_refreshed", 0) + len(obj._refreshed)
        elif isinstance(obj, CertStore):
            out["leaf_cert_cache"] = out.get("leaf_cert_cache", 0) + len(obj)
        elif isinstance(obj, Pool):
            out["pool_keys"] = out.get("pool_keys", 0) + len(obj._idle)
            out["pool_idle_conns"] = out.get("pool_idle_conns", 0) + sum(
                len(conns) for conns in obj._idle.values()
            )
        elif isinstance(obj, StoreDirectory):
            last = obj._last  # every session as the last read of the store found them
            out["session_cache"] = out.get("session_cache", 0) + (
                len(last.sessions) if last is not None else 0) + len(obj._missed)
        elif isinstance(obj, ssl.SSLContext):
            # OpenSSL's own TLS session cache lives outside the Python heap.
            out["ssl_contexts"] = out.get("ssl_contexts", 0) + 1
            out["tls_session_cache"] = out.get("tls_session_cache", 0) + obj.session_stats()[
                "number"
            ]
    return out


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None on another C library."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


class Probe:
    def __init__(self, folder: Path, *, snapshots: bool, trim: bool) -> None:
        self.folder = folder
        self.snapshots = snapshots
        self.trim = _malloc_trim() if trim else None
        self.count = 0
        self.types_before: Counter[str] | None = None

    def report(self) -> dict[str, Any]:
        self.count += 1
        collected = gc.collect()
        objects = gc.get_objects()
        types = Counter(type(obj).__qualname__ for obj in objects)
        out: dict[str, Any] = {
            "n": self.count,
            "rss_kib": _rss_kib(),
            "fds": len(os.listdir("/proc/self/fd")),
            "tasks": _task_count(),
            "allocated_blocks": sys.getallocatedblocks(),
            "gc_collected": collected,
            "gc_objects": len(objects),
            "types": dict(types.most_common(TOP_TYPES)),
            "types_diff": {},
            "holdings": _proxy_holdings(objects),
        }
        del objects
        if self.types_before is not None:
            diff = types.copy()
            diff.subtract(self.types_before)
            out["types_diff"] = {k: v for k, v in diff.items() if v}
        self.types_before = types
        if self.trim is not None:
            # Hands the allocator's free pages back: what is left is memory in use.
            self.trim(0)
            out["rss_trimmed_kib"] = _rss_kib()
        if tracemalloc.is_tracing():
            current, peak = tracemalloc.get_traced_memory()
            out |= {
                "traced_kib": current / 1024,
                "traced_peak_kib": peak / 1024,
                "tracemalloc_overhead_kib": tracemalloc.get_tracemalloc_memory() / 1024,
            }
            tracemalloc.reset_peak()
            if self.snapshots:
                # Written out and dropped at once: a snapshot kept here would be part of
                # the memory being measured.
                snap = tracemalloc.take_snapshot()
                snap.dump(str(self.folder / f"snapshot-{self.count}.tracemalloc"))
                del snap
        return out

    def write(self) -> None:
        data = self.report()
        tmp = self.folder / f".probe-{data['n']}.json"
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.folder / f"probe-{data['n']}.json")


async def _probed(settings: Settings, env: dict[str, str], folder: Path) -> None:
    probe = Probe(
        folder,
        snapshots=os.environ.get("CLAUDERON_PROBE_SNAPSHOTS") == "1",
        trim=os.environ.get("CLAUDERON_PROBE_TRIM") == "1",
    )
    async with trio.open_nursery() as nursery:

        async def listen() -> None:
            with trio.open_signal_receiver(signal.SIGUSR2) as signals:
                async for _ in signals:
                    probe.write()

        nursery.start_soon(listen)
        await run(settings, env, None)  # loopback only, as the bench configures it
        nursery.cancel_scope.cancel()


def main() -> None:
    configure_logging()
    settings = load_settings()
    settings.ensure_layout()
    folder = Path(os.environ["CLAUDERON_PROBE_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    trio.run(_probed, settings, dict(os.environ), folder)


if __name__ == "__main__":
    main()
