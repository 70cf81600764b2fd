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
  waits for all, reads one more and hangs up mid-stream), on a fresh process of ours run
  under ``proxy_probe`` (tracemalloc on): after each wave, RSS (raw and after
  ``malloc_trim``), the traced Python heap, live objects, descriptors and tasks, then the
  slope of each over the second half of the waves and a verdict (``proxy_memory``);
- the meter's cost: keep-alive POSTs and model-like SSE streams on a metered path
  (``/v1/messages``) against the same answers on an unmetered one, on one process of ours;
- 100 SSE streams whose upstream goes silent after the first event, each client hanging
  up then: how soon the proxy releases them (it must notice without the upstream's help).

``--only-streams`` runs just the waves, ``--no-mitm`` leaves mitmdump out, ``--details``
adds heap-snapshot comparisons between waves.

It prints and never asserts. Ratios are against the direct column of the same run; with
two cores, a figure above ~10,000 req/s measures the machine more than the proxy.
Neighbours: ``proxy_upstream`` (the fake upstream), ``proxy_client`` (the load client),
``proxy_targets`` (starting mitmdump and ours), ``proxy_memory`` (the waves) and
``proxy_probe`` (ours with a memory probe).
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import proxy_client as client
from proxy_client import Target
from proxy_memory import report_silent_hang_ups, report_streams
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


def report_metering(ours: Target, n_rounds: int, per_round: int, streams: int) -> None:
    """The meter's cost: the same answer on a metered path (``/v1/messages``) and an
    unmetered one (``/v1/plain``), alternating on one process of ours."""
    print(f"\n== metering: keep-alive POST, metered /v1/messages vs unmetered /v1/plain, "
          f"{n_rounds}x{per_round} requests each")
    got: dict[str, list[list[float]]] = {"/v1/plain": [], "/v1/messages": []}
    for _ in range(n_rounds):
        for path, runs in got.items():
            runs.append(client.post_latency(ours, path, per_round))
    p50 = {p: statistics.median(statistics.median(r) for r in runs) for p, runs in got.items()}
    for path, runs in got.items():
        p99 = statistics.median(client.percentile(r, 0.99) for r in runs)
        print(f"{path:16}p50 {ms(p50[path])} ms   p99 {ms(p99)} ms")
    print(f"{'':16}metering adds {ms(p50['/v1/messages'] - p50['/v1/plain'])} ms at p50")
    print(f"\n== metering: SSE POST (usage in the first and last of 5 events, 50 ms apart), "
          f"{streams} streams each")
    firsts: dict[str, list[float]] = {"/sse/plain": [], "/sse/v1/messages": []}
    for _ in range(2):
        for path, values in firsts.items():
            values.extend(client.sse_post_first_byte(ours, path, streams // 2)[1])
    for path, values in firsts.items():
        print(f"{path:16}first event p50 {ms(statistics.median(values))} ms "
              f"(p99 {ms(client.percentile(values, 0.99))} ms)")


def measure(
    args: argparse.Namespace, workdir: Path, upstream: Any, procs: Processes,
    targets: list[Target],
) -> None:
    """Every workload but the streams waves, on direct, ours and mitmdump."""
    quick = args.quick
    if not args.no_ours:
        try:
            targets.append(start_ours(workdir, upstream, procs))
        except Exception as exc:
            print(f"ours: not measured: {exc}")
    mitm_stream: Target | None = None
    if not args.no_mitm:
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
    report_sse(targets + ([mitm_stream] if mitm_stream else []), 5 if quick else 10)
    ours = next((t for t in targets if t.name == "ours"), None)
    if ours is not None:
        report_metering(ours, 3, 300 if quick else 1000, 10 if quick else 20)
    print(
        "\nRSS after these workloads:",
        ", ".join(f"{t.name} {client.rss_mib(t.pid) or 0:.1f} MiB" for t in targets[1:]),
    )


def _on_sigterm(*_: object) -> None:
    # The load clients first: exiting joins them, and they would wait on a gone proxy.
    for child in multiprocessing.active_children():
        child.kill()
    sys.exit(143)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter runs")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--waves", type=int, default=10, help="rounds of concurrent streams")
    parser.add_argument("--no-ours", action="store_true", help="baseline only")
    parser.add_argument("--no-mitm", action="store_true", help="leave mitmdump out")
    parser.add_argument("--no-streams", action="store_true",
                        help="leave the concurrent-streams memory waves out")
    parser.add_argument(
        "--only-streams", action="store_true", help="only the concurrent-streams memory waves"
    )
    parser.add_argument(
        "--trace-frames", type=int, default=1,
        help="tracemalloc frames for the streams waves (0: no tracemalloc, RSS and counts only)",
    )
    parser.add_argument(
        "--no-trim", action="store_true",
        help="do not call malloc_trim(0) in the proxy after each wave (raw RSS only)",
    )
    parser.add_argument(
        "--details", action="store_true",
        help="dump heap snapshots; print the top allocation sites between waves 2, 4, 8, 12",
    )
    args = parser.parse_args()
    # A SIGTERM (``timeout``) unwinds like Ctrl-C: every process started here is stopped.
    signal.signal(signal.SIGTERM, _on_sigterm)
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        sys.exit("bench: nginx (the fake upstream) is missing: run `sh bench/setup.sh`")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="clauderon-bench-") as tmp:
        workdir = Path(tmp)
        with FakeUpstream(workdir) as upstream, Processes() as procs:
            direct = Target(name="direct", connect_port=upstream.port, trust=upstream.ca_pem)
            targets = [direct]
            if not args.only_streams:
                measure(args, workdir, upstream, procs, targets)
            if not args.no_ours and not args.no_streams:
                # A fresh process of ours under the memory probe (tracemalloc slows it a
                # little, so the figures above come from one without it).
                probed = start_ours(
                    workdir, upstream, procs, probe=workdir / "probe", name="ours-probed",
                    trace_frames=args.trace_frames, snapshots=args.details,
                    trim=not args.no_trim,
                )
                report_streams(probed, args.streams, args.waves, details=args.details)
                report_silent_hang_ups(probed, 100)
    print(f"\nwhole run: {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
