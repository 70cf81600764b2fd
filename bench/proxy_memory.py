"""The memory part of ``bench/proxy.py``: waves of concurrent SSE streams, and a verdict.

Each wave opens ``streams`` SSE streams through the proxy at once (``proxy_client.
hold_streams``: every client reads its first event, waits for all, reads one more and hangs
up mid-stream). Then the bench waits until the proxy holds no more descriptors than when
idle (how long that takes is printed: the proxy notices a hang-up at its next write, or
within a second of silence), reads its RSS from ``/proc`` and, as the proxy runs under
``proxy_probe``, sends it SIGUSR2 for a report: RSS again after ``malloc_trim(0)``, the
Python heap traced by ``tracemalloc``, live objects, descriptors, trio tasks and the size
of every cache the proxy keeps. A leak shows as a heap, object, descriptor or trimmed-RSS
figure that grows with the waves; memory the allocator merely keeps for reuse shows as raw
RSS that rises while the others stay flat. The verdict is the least-squares slope of each
figure over the second half of the waves (the first waves warm caches and arenas up): a
figure is GROWING only when it rises faster than its limit *and* the rise stands out of the
figure's own wave-to-wave noise (the slope exceeds its one-sided 95% margin, from the
scatter around the fitted line). A figure that falls, or that swings up and down by more
than its limit without a trend (the allocator's arenas, a few MiB either way), is flat; the
line says which, and how wide the noise was. The traced heap and the object count move by
a few KiB and a few dozen objects between waves, so they are the fine instruments.
``--details`` adds the allocation sites that changed most between the heap snapshots
taken after waves 2, 4, 8 and 12, and the live objects by type that changed.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import os
import signal
import time
import tracemalloc
from pathlib import Path
from typing import Any

import proxy_client as client
from proxy_client import Target

#: Slopes over the second half under which a figure counts as flat, per wave of 500
#: streams: a leak of one small object (~100 B) per stream would add ~500 objects and
#: ~50 KiB a wave; the limits sit well below that and above the noise measured here
#: (weak-reference sets compacting now and then move the object count by ~170).
FLAT_RSS_KIB = 256.0
FLAT_HEAP_KIB = 32.0
FLAT_OBJECTS = 100.0
#: Seconds a fresh proxy is left alone before its idle figures are taken.
IDLE_SETTLE = 2.0
#: How long the silent hang-ups may take to be released before the bench says so.
SILENT_PATIENCE = 10.0


#: One-sided 95% quantiles of Student's t, by degrees of freedom (points minus two).
_T95 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860,
        9: 1.833, 10: 1.812}


def slope_margin(values: list[float]) -> float:
    """How far the least-squares slope of ``values`` can sit from zero by noise alone
    (one-sided 95%: t times the slope's standard error; 0 for fewer than three values)."""
    n = len(values)
    if n < 3:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    per_step = slope(values)
    scatter = sum((v - mean_y - per_step * (i - mean_x)) ** 2 for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    error: float = math.sqrt(scatter / (n - 2) / den)
    return _T95.get(n - 2, 1.7) * error


def slope(values: list[float]) -> float:
    """Least-squares slope of ``values`` per step (0 for fewer than two values)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def probe(target: Target, seen: int, timeout: float = 30.0) -> dict[str, Any] | None:
    """Ask the probed proxy for report number ``seen + 1`` and wait for it."""
    if target.probe is None or target.pid is None:
        return None
    os.kill(target.pid, signal.SIGUSR2)
    path = target.probe / f"probe-{seen + 1}.json"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            tail = target.log.read_text(errors="replace")[-2000:] if target.log else ""
            raise RuntimeError(f"the proxy wrote no {path.name} within {timeout:g} s; its "
                               f"log ends:\n{tail}")
        time.sleep(0.05)
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def open_fds(pid: int | None) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def settle(pid: int | None, baseline: int, timeout: float = 15.0) -> float | None:
    """Seconds until the proxy holds no more descriptors than ``baseline`` (None: never).

    The clients are gone by now; each of their connections is released once the proxy
    notices (its next write fails, or a hang-up check finds it) and closes both sockets.
    """
    t0 = time.monotonic()
    while open_fds(pid) > baseline:
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(0.02)
    return time.monotonic() - t0


def _wave(target: Target, streams: int) -> tuple[dict[str, Any], float, float, float]:
    """One wave: (holder stats, ramp seconds, proxy CPU share, RSS MiB with all open)."""
    ctx = multiprocessing.get_context("fork")
    ready, proceed, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    holder = ctx.Process(
        target=client.hold_streams, args=(target, streams, ready, proceed, results)
    )
    cpu0, t0 = client.cpu_seconds(target.pid), time.perf_counter()
    holder.start()
    ramp = ready.get(timeout=150)
    cpu1, t1 = client.cpu_seconds(target.pid), time.perf_counter()
    share = (cpu1 - cpu0) / (t1 - t0) if cpu0 is not None and cpu1 is not None else 0.0
    peak = client.rss_mib(target.pid) or 0.0
    proceed.put(True)
    stats = results.get(timeout=150)
    holder.join(30)
    return stats, ramp, share, peak


def _mib(kib: float | None) -> str:
    return "      -" if kib is None else f"{kib / 1024:7.1f}"


def _row(label: str, report: dict[str, Any] | None, rss_kib: float, extra: str) -> None:
    r = report or {}
    print(
        f"  {label:>6} {extra} {_mib(rss_kib)} {_mib(r.get('rss_trimmed_kib'))}"
        f" {_mib(r.get('traced_kib'))} {_mib(r.get('tracemalloc_overhead_kib'))}"
        f" {r.get('gc_objects', '-'):>8} {r.get('fds', '-'):>4} {r.get('tasks', '-'):>5}"
    )


def judge(values: list[float], limit: float) -> tuple[bool, str]:
    """(flat?, the word for it) for a figure after each wave, over the second half."""
    half = values[len(values) // 2 :]
    per_wave, margin = slope(half), slope_margin(half)
    if per_wave > limit and per_wave > margin:
        return False, "GROWING"
    if per_wave > limit:
        return True, f"flat (the rise is within its noise, +-{margin:.0f}/wave)"
    if per_wave < -limit:
        return True, "flat (falling)"
    return True, "flat"


def _verdict_line(name: str, values: list[float], unit: str, limit: float) -> bool:
    per_wave = slope(values[len(values) // 2 :])
    ok, word = judge(values, limit)
    print(
        f"    {name:26}{values[0]:10.0f} -> {values[-1]:10.0f} {unit:3}"
        f" slope {per_wave:+8.1f} {unit}/wave  {word} (limit {limit:g})"
    )
    return ok


def _site(trace: Any) -> str:
    frame = trace.traceback[0]
    name = frame.filename
    if "/site-packages/" in name:
        name = name.split("/site-packages/", 1)[1]
    elif "/lib/python3" in name:
        name = "stdlib/" + name.split("/lib/python3", 1)[1].split("/", 1)[1]
    else:
        name = name.replace(str(Path(__file__).resolve().parent.parent) + "/", "")
    return f"{name}:{frame.lineno}"


def compare_snapshots(folder: Path, waves: list[int], top: int = 8) -> None:
    """Top allocation sites by size difference between the snapshots after ``waves``."""
    snaps = {}
    for wave in waves:
        path = folder / f"snapshot-{wave + 1}.tracemalloc"  # report 1 is before wave 1
        if path.exists():
            snaps[wave] = tracemalloc.Snapshot.load(str(path)).filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
    order = sorted(snaps)
    for a, b in itertools.pairwise(order):
        stats = snaps[b].compare_to(snaps[a], "lineno")
        total = sum(s.size_diff for s in stats)
        blocks = sum(s.count_diff for s in stats)
        print(f"  traced heap, wave {a} -> wave {b}: {total / 1024:+.1f} KiB, {blocks:+d} blocks;"
              " top sites by size difference:")
        for s in stats[:top]:
            print(f"    {s.size_diff / 1024:+8.1f} KiB {s.count_diff:+6d} blocks"
                  f"  (now {s.size / 1024:8.1f} KiB)  {_site(s)}")


def report_silent_hang_ups(target: Target, count: int) -> None:
    """Clients hanging up while their stream is silent: how soon the proxy lets go."""
    baseline = open_fds(target.pid)
    ok = client.open_and_hang_up(target, count, "/sse?n=2&gap_ms=120000")
    released = settle(target.pid, baseline, timeout=SILENT_PATIENCE)
    left = max(0, open_fds(target.pid) - baseline)
    verdict = (f"all released in {released:.2f} s" if released is not None else
               f"{left} descriptors still held after {SILENT_PATIENCE:g} s")
    print(f"\n== {ok} SSE streams whose upstream then stays silent for 2 minutes; each client"
          f" hangs up after the first event: {verdict}")


def report_streams(target: Target, streams: int, waves: int, *, details: bool = False) -> bool:
    """Run the waves, print a row per wave and the verdict; True when memory stayed flat."""
    if waves < 1:
        return True
    print(f"\n== {streams} concurrent SSE streams through {target.name}, {waves} waves"
          " (every client hangs up mid-stream)")
    seen = 0
    # The idle figures are taken once start-up has settled: right after the port opens,
    # the connection that found it open may still be held, and the task count is not yet
    # the idle one (a run read 6 tasks there, against 8 at idle before and after waves).
    time.sleep(IDLE_SETTLE)
    baseline_fds = open_fds(target.pid)
    before = probe(target, seen)
    seen += before is not None
    print("                                                  ---------------- MiB ----------------")
    print("    wave  open  ramp s  proxy CPU  1st event p50  released   RSS trimmed  py heap"
          " tm own  objects  fds tasks")
    _row("before", before, (client.rss_mib(target.pid) or 0.0) * 1024, " " * 48)
    rss: list[float] = []
    reports: list[dict[str, Any]] = []
    for wave in range(1, waves + 1):
        stats, ramp, share, _ = _wave(target, streams)
        released = settle(target.pid, baseline_fds)
        time.sleep(0.5)
        after = (client.rss_mib(target.pid) or 0.0) * 1024
        report = probe(target, seen)
        if report is not None:
            seen += 1
            reports.append(report)
        rss.append(after)
        gone = "never" if released is None else f"{released:4.2f} s"
        first = stats["first_p50_ms"] or 0.0
        extra = (f"{stats['ok']:5d} {ramp:7.2f} {share * 100:8.0f}% {first:11.0f} ms"
                 f" {gone:>9}")
        _row(str(wave), report, after, extra)
    first_half = waves - len(rss[len(rss) // 2 :]) + 1
    print("  RSS: once every connection was released (trimmed: then after malloc_trim(0));"
          " py heap: traced by tracemalloc; tm own: tracemalloc's own memory (part of RSS)")
    print(f"  memory after each wave, least-squares slope over waves {first_half}-{waves}:")
    ok = True
    rss_ok = _verdict_line("RSS (KiB)", rss, "KiB", FLAT_RSS_KIB)
    trimmed = [float(r["rss_trimmed_kib"]) for r in reports if "rss_trimmed_kib" in r]
    if len(trimmed) == len(rss):
        ok &= _verdict_line("RSS after malloc_trim (KiB)", trimmed, "KiB", FLAT_RSS_KIB)
    else:
        ok &= rss_ok
    if reports and "traced_kib" in reports[0]:
        heap = [float(r["traced_kib"]) for r in reports]
        ok &= _verdict_line("Python heap (KiB)", heap, "KiB", FLAT_HEAP_KIB)
    if reports:
        objects = [float(r["gc_objects"]) for r in reports]
        ok &= _verdict_line("live objects", objects, "", FLAT_OBJECTS)
        idle = before or reports[0]
        back = all(r["fds"] <= idle["fds"] and r["tasks"] <= idle["tasks"] for r in reports)
        ok &= back
        print(f"    descriptors and trio tasks back to the idle count after every wave: "
              f"{'yes' if back else 'NO'}")
        holdings = ", ".join(f"{k} {v}" for k, v in sorted(reports[-1]["holdings"].items()))
        print(f"    what the proxy keeps: {holdings}")
    note = ""
    if ok and not rss_ok:
        note = (" (raw RSS still rose: pages the allocator keeps for reuse, returned by "
                "malloc_trim; not memory in use)")
    print(f"  memory verdict: {'FLAT' if ok else 'GROWING'}{note}")
    if details and target.probe is not None:
        compare_snapshots(target.probe, [w for w in (2, 4, 8, 12, 16) if w <= waves] or [waves])
        for r_a, r_b in itertools.pairwise(reports):
            changed = {k: v for k, v in r_b["types_diff"].items() if abs(v) >= 5}
            if changed:
                print(f"  live objects by type, wave {r_a['n'] - 1} -> {r_b['n'] - 1}: {changed}")
    return ok
