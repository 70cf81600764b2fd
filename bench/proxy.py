"""Benchmark: our TLS-intercepting proxy against mitmproxy's ``mitmdump`` and no proxy at all.

Run: ``.venv/bin/python bench/proxy.py`` (``--quick`` for a shorter run); ``sh bench/setup.sh``
first installs what it needs (nginx, and mitmproxy in its own virtualenv). One run starts a
fake upstream on loopback (nginx with a trustme certificate, plus a paced SSE source behind
it), ``mitmdump``, and ours (``python -m proxy`` with a temporary ``CLAUDERON_HOME``), then
measures the same workloads on each, alternating between them round by round:

- keep-alive GETs of 200 bytes on one connection: p50/p99 latency, and what the proxy adds;
- a new connection per GET (TCP + CONNECT + TLS + GET);
- requests/s with N client processes, each with one keep-alive connection, and the proxy
  process's CPU share while they ran;
- 1 MiB bodies both ways on one connection: MB/s;
- an SSE stream (5 events, 50 ms apart): time to the response head and to the first event;
- 500 concurrent SSE streams through ours, in waves (each client reads its first event,
  waits for all, reads one more and hangs up mid-stream): proxy RSS before, with all open,
  after; flat memory shows as the same figures wave after wave.

It prints and never asserts. Ratios are against the direct column of the same run; with
two cores, a figure above ~10,000 req/s measures the machine more than the proxy.
Neighbours: ``proxy_upstream`` (the fake upstream), ``proxy_client`` (the load client),
``proxy_targets`` (starting mitmdump and ours).
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import proxy_client as client
from proxy_client import Target
from proxy_targets import Processes, start_mitmdump, start_ours
from proxy_upstream import FakeUpstream


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.2f}"


def rounds(targets: list[Target], count: int, fn: Callable[[Target], Any]) -> dict[str, list[Any]]:
    """Run ``fn`` on each target in turn, ``count`` times, alternating targets."""
    out: dict[str, list[Any]] = {t.name: [] for t in targets}
    for _ in range(count):
        for t in targets:
            try:
                out[t.name].append(fn(t))
            except Exception as exc:  # a proxy failing is a finding, not a crash
                print(f"  ! {t.name}: {type(exc).__name__}: {exc}")
    return out


def report_latency(targets: list[Target], n_rounds: int, per_round: int) -> None:
    print(f"\n== keep-alive GET /small (200 B), 1 connection, {n_rounds}x{per_round} requests")
    got = rounds(targets, n_rounds, lambda t: client.latency(t, per_round))
    base: tuple[float, float] | None = None
    print(f"{'':16}{'p50 ms':>9}{'p99 ms':>9}{'+p50 ms':>9}{'+p99 ms':>9}")
    for t in targets:
        if not got[t.name]:
            continue
        # median over rounds of each round's percentile
        p50 = statistics.median(statistics.median(r) for r in got[t.name])
        p99 = statistics.median(client.percentile(r, 0.99) for r in got[t.name])
        if base is None:
            base = (p50, p99)
        print(f"{t.name:16}{ms(p50)} {ms(p99)} {ms(p50 - base[0])} {ms(p99 - base[1])}")


def report_new_connections(targets: list[Target], count: int) -> None:
    print(f"\n== new connection per GET (TCP + CONNECT + TLS + GET), {count} each")
    got = rounds(targets, 1, lambda t: client.new_connection_latency(t, count))
    base = None
    for t in targets:
        if got[t.name]:
            p50 = statistics.median(got[t.name][0])
            base = p50 if base is None else base
            print(f"{t.name:16}p50 {ms(p50)} ms   added {ms(p50 - base)} ms")


def report_throughput(targets: list[Target], conns: int, duration: float) -> None:
    print(f"\n== requests/s, GET /small, {conns} processes x 1 keep-alive connection, {duration} s")
    got = rounds(targets, 1, lambda t: client.throughput(t, conns, duration))
    base = None
    for t in targets:
        if not got[t.name]:
            continue
        rps, cpu = got[t.name][0]
        base = rps if base is None else base
        cpu_s = f"{cpu * 100:5.0f}% of a core" if cpu is not None else "   (no proxy)"
        per_req = f"{cpu / rps * 1e3:.3f} ms CPU/req" if cpu is not None else ""
        print(
            f"{t.name:16}{rps:10.0f} req/s  x{rps / base:6.3f} of direct  proxy {cpu_s} {per_req}"
        )
    named = {t.name: got[t.name][0][0] for t in targets if got[t.name]}
    if "ours" in named and "mitmdump" in named:
        print(f"{'':16}ours / mitmdump = x{named['ours'] / named['mitmdump']:.2f}")


def report_bulk(targets: list[Target], count: int) -> None:
    print(f"\n== 1 MiB bodies on one keep-alive connection, {count} each way")
    got = rounds(targets, 1, lambda t: client.bulk(t, count))
    base = None
    for t in targets:
        if got[t.name]:
            down, up = got[t.name][0]
            base = (down, up) if base is None else base
            print(
                f"{t.name:16}down {down:8.1f} MB/s (x{down / base[0]:.2f})   "
                f"up {up:8.1f} MB/s (x{up / base[1]:.2f})"
            )


def report_sse(targets: list[Target], count: int) -> None:
    print(f"\n== SSE, 5 events 50 ms apart, keep-alive, {count} streams each")
    got = rounds(targets, 1, lambda t: client.sse_first_byte(t, count))
    base = None
    for t in targets:
        if got[t.name]:
            heads, firsts = got[t.name][0]
            p50 = statistics.median(firsts)
            base = p50 if base is None else base
            print(
                f"{t.name:16}head p50 {ms(statistics.median(heads))} ms   first event p50 "
                f"{ms(p50)} ms (p99 {ms(client.percentile(firsts, 0.99))} ms)   "
                f"added {ms(p50 - base)} ms"
            )


def report_streams(target: Target, streams: int, waves: int) -> None:
    print(f"\n== {streams} concurrent SSE streams through {target.name}, {waves} waves")
    ctx = multiprocessing.get_context("fork")
    print(f"  RSS before: {client.rss_mib(target.pid):.1f} MiB")
    for wave in range(1, waves + 1):
        ready, proceed, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
        holder = ctx.Process(
            target=client.hold_streams, args=(target, streams, ready, proceed, results)
        )
        cpu0, t0 = client.cpu_seconds(target.pid), time.perf_counter()
        holder.start()
        ramp = ready.get(timeout=150)
        cpu1, t1 = client.cpu_seconds(target.pid), time.perf_counter()
        share = (cpu1 - cpu0) / (t1 - t0) if cpu0 is not None and cpu1 is not None else 0.0
        peak = client.rss_mib(target.pid)
        proceed.put(True)
        stats = results.get(timeout=150)
        holder.join(30)
        time.sleep(1.0)
        after = client.rss_mib(target.pid)
        print(
            f"  wave {wave}: {stats['ok']} open ({stats['failed']} failed) in {ramp:.2f} s "
            f"(proxy {share * 100:.0f}% of a core); "
            f"first event p50 {stats['first_p50_ms'] or 0:.1f} ms p99 "
            f"{stats['first_p99_ms'] or 0:.1f} ms; RSS all open {peak:.1f} MiB, "
            f"after close {after:.1f} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter runs")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--waves", type=int, default=3, help="rounds of concurrent streams")
    parser.add_argument("--no-ours", action="store_true", help="baseline only")
    args = parser.parse_args()
    quick = args.quick
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        sys.exit("bench: nginx (the fake upstream) is missing: run `sh bench/setup.sh`")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="clauderon-bench-") as tmp:
        workdir = Path(tmp)
        with FakeUpstream(workdir) as upstream, Processes() as procs:
            direct = Target(name="direct", connect_port=upstream.port, trust=upstream.ca_pem)
            targets = [direct]
            ours: Target | None = None
            if not args.no_ours:
                try:
                    ours = start_ours(workdir, upstream, procs)
                    targets.append(ours)
                except Exception as exc:
                    print(f"ours: not measured: {exc}")
            mitm_stream: Target | None = None
            try:
                targets.append(start_mitmdump(workdir, upstream, procs))
                mitm_stream = start_mitmdump(workdir, upstream, procs, stream=True)
            except Exception as exc:
                print(f"mitmdump: not measured: {exc}")
            print("targets:", ", ".join(t.name for t in targets))
            report_latency(targets, 3, 300 if quick else 1000)
            report_new_connections(targets, 20 if quick else 50)
            report_throughput(targets, args.connections, 1.5 if quick else 3.0)
            report_bulk(targets, 10 if quick else 30)
            sse_targets = targets + ([mitm_stream] if mitm_stream else [])
            report_sse(sse_targets, 5 if quick else 10)
            if ours is not None:
                report_streams(ours, args.streams, args.waves)
            print(
                "\nRSS at the end:",
                ", ".join(f"{t.name} {client.rss_mib(t.pid) or 0:.1f} MiB" for t in targets[1:]),
            )
    print(f"\nwhole run: {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
