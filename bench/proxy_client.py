"""The load client for ``bench/proxy.py``: keep-alive ``http.client`` over ``ssl``.

A plain standard-library client on one connection per thread or process is much faster
than any async client here (measured: ~33,000 req/s direct against nginx), so it can
measure a proxy without becoming the bottleneck itself. A :class:`Target` says how to
reach the fake upstream: directly, or through a proxy with a CONNECT (and proxy
credentials). Each workload returns plain numbers; the caller prints them.
"""

from __future__ import annotations

import base64
import http.client
import multiprocessing
import os
import socket
import ssl
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy_upstream import BENCH_HOST, MIB


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    name: str
    connect_port: int  # the upstream itself (direct) or the proxy
    trust: Path  # CA the client trusts for the TLS it sees
    tunnel: str | None = None  # "host:port" to CONNECT to, None when direct
    proxy_auth: tuple[str, str] | None = None  # (user, password) for Proxy-Authorization
    pid: int | None = None  # the proxy process, for CPU and RSS figures
    probe: Path | None = None  # where ``proxy_probe`` writes its reports (SIGUSR2)
    log: Path | None = None  # what the proxy wrote, quoted when it fails to report


class BenchConnection(http.client.HTTPConnection):
    """HTTP/1.1 over TLS, optionally through a CONNECT tunnel; SNI is always BENCH_HOST."""

    def __init__(self, target: Target, context: ssl.SSLContext, timeout: float = 30) -> None:
        super().__init__("127.0.0.1", target.connect_port, timeout=timeout)
        self._target = target
        self._context = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.settimeout(self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._target.tunnel is not None:
            head = f"CONNECT {self._target.tunnel} HTTP/1.1\r\nHost: {self._target.tunnel}\r\n"
            if self._target.proxy_auth is not None:
                raw = ":".join(self._target.proxy_auth).encode()
                head += f"Proxy-Authorization: Basic {base64.b64encode(raw).decode()}\r\n"
            sock.sendall((head + "\r\n").encode())
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("proxy closed the connection during CONNECT")
                reply += chunk
            status = reply.split(b"\r\n", 1)[0]
            if b" 200" not in status:
                raise ConnectionError(f"CONNECT refused: {status.decode(errors='replace')}")
        self.sock = self._context.wrap_socket(sock, server_hostname=BENCH_HOST)


HEADERS = {"Host": BENCH_HOST, "Authorization": "Bearer placeholder", "User-Agent": "bench"}


def client_context(target: Target) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(target.trust))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def connect(target: Target) -> BenchConnection:
    conn = BenchConnection(target, client_context(target))
    conn.connect()
    return conn


def get(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("GET", path, headers=HEADERS)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status} {body[:200]!r}")
    return len(body)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- workloads ------------------------------------------------------------------------


def latency(target: Target, count: int) -> list[float]:
    """Seconds per keep-alive GET /small on one connection (after a warm-up)."""
    conn = connect(target)
    for _ in range(20):
        get(conn, "/small")
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        get(conn, "/small")
        out.append(time.perf_counter() - t0)
    conn.close()
    return out


def new_connection_latency(target: Target, count: int) -> list[float]:
    """Seconds for TCP + (CONNECT) + TLS + one GET, each on a fresh connection."""
    ctx = client_context(target)
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        conn = BenchConnection(target, ctx)
        get(conn, "/small")
        out.append(time.perf_counter() - t0)
        conn.close()
    return out


def bulk(target: Target, count: int) -> tuple[float, float]:
    """(download, upload) MB/s for 1 MiB bodies on one keep-alive connection."""
    conn = connect(target)
    get(conn, "/1mib")
    t0 = time.perf_counter()
    for _ in range(count):
        get(conn, "/1mib")
    down = count * MIB / (time.perf_counter() - t0) / 1e6
    payload = b"u" * MIB
    t0 = time.perf_counter()
    for _ in range(count):
        conn.request("POST", "/upload", body=payload, headers=HEADERS)
        conn.getresponse().read()
    up = count * MIB / (time.perf_counter() - t0) / 1e6
    conn.close()
    return down, up


def post_latency(target: Target, path: str, count: int) -> list[float]:
    """Seconds per keep-alive POST of a small JSON body to ``path`` (after a warm-up)."""
    conn = connect(target)
    body = b'{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[]}'
    headers = {**HEADERS, "Content-Type": "application/json"}
    out = []
    for i in range(count + 20):
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"POST {path}: {resp.status} {data[:200]!r}")
        if i >= 20:
            out.append(time.perf_counter() - t0)
    conn.close()
    return out


def sse_post_first_byte(target: Target, path: str, count: int
                        ) -> tuple[list[float], list[float]]:
    """(headers, first event) seconds for a model-like stream POSTed to ``path``."""
    return sse_first_byte(target, count, "POST", path, b"{}",
                          {**HEADERS, "Content-Type": "application/json"})


def sse_first_byte(target: Target, count: int, method: str = "GET",
                   path: str = "/sse?n=5&gap_ms=50", body: bytes | None = None,
                   headers: dict[str, str] = HEADERS) -> tuple[list[float], list[float]]:
    """(headers, first event) seconds after the request, for a 5-event stream 50 ms apart
    (by default)."""
    conn = connect(target)
    heads, firsts = [], []
    for _ in range(count):
        t0 = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        heads.append(time.perf_counter() - t0)
        resp.read1(65536)
        firsts.append(time.perf_counter() - t0)
        resp.read()
    conn.close()
    return heads, firsts


def _throughput_worker(target: Target, duration: float, barrier: Any, results: Any) -> None:
    try:
        conn = connect(target)
        for _ in range(20):
            get(conn, "/small")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")
        barrier.abort()
        return
    barrier.wait()
    deadline = time.perf_counter() + duration
    done = 0
    try:
        while time.perf_counter() < deadline:
            get(conn, "/small")
            done += 1
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")
        return
    results.put(done)
    conn.close()


def throughput(target: Target, connections: int, duration: float) -> tuple[float, float | None]:
    """(requests/s over ``connections`` processes, proxy CPU share) for GET /small."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(connections + 1)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_throughput_worker, args=(target, duration, barrier, results))
        for _ in range(connections)
    ]
    for w in workers:
        w.start()
    try:
        barrier.wait(timeout=30)
        cpu0, t0 = cpu_seconds(target.pid), time.perf_counter()
        got = [results.get(timeout=duration + 30) for _ in workers]
        cpu1, t1 = cpu_seconds(target.pid), time.perf_counter()
    except threading.BrokenBarrierError:
        raise RuntimeError(f"a client could not start: {results.get(timeout=5)}") from None
    finally:
        for w in workers:
            w.join(5)
            if w.is_alive():
                w.kill()
    errors = [g for g in got if isinstance(g, str)]
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed: {errors[0]}")
    share = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / (t1 - t0)
    return sum(got) / duration, share


def _stream_holder(
    target: Target, index: int, opened: Any, firsts: list[float], go: threading.Event
) -> None:
    try:
        conn = BenchConnection(target, client_context(target), timeout=60)
        t0 = time.perf_counter()
        conn.request("GET", STREAM_PATH, headers=HEADERS)
        resp = conn.getresponse()
        resp.read1(65536)
        firsts[index] = time.perf_counter() - t0
    except (OSError, http.client.HTTPException):
        firsts[index] = -1.0
        opened.release()
        return
    opened.release()
    go.wait(120)
    resp.read1(65536)  # one more event, then hang up mid-stream
    conn.close()


#: What each held stream asks for: an event a second keeps 500 streams busy without
#: making the bench a throughput test (10 events/s each saturated two cores).
STREAM_PATH = "/sse?n=120&gap_ms=1000"


def hold_streams(target: Target, streams: int, ready: Any, proceed: Any, results: Any) -> None:
    """Open ``streams`` SSE streams at once; report when all are open; close them."""
    opened = threading.Semaphore(0)
    go = threading.Event()
    firsts = [0.0] * streams
    threads = [
        threading.Thread(target=_stream_holder, args=(target, i, opened, firsts, go))
        for i in range(streams)
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for _ in range(streams):
        opened.acquire(timeout=120)
    ramp = time.perf_counter() - t0
    ready.put(ramp)
    proceed.get(timeout=120)
    go.set()
    for t in threads:
        t.join(60)
    ok = [f for f in firsts if f > 0]
    results.put(
        {
            "ok": len(ok),
            "failed": streams - len(ok),
            "ramp_s": ramp,
            "first_p50_ms": statistics.median(ok) * 1e3 if ok else None,
            "first_p99_ms": percentile(ok, 0.99) * 1e3 if ok else None,
        }
    )


def open_and_hang_up(target: Target, count: int, path: str) -> int:
    """Open ``count`` streams at once, read each one's first event, hang up; how many opened."""
    opened = [False] * count

    def one(index: int) -> None:
        try:
            conn = BenchConnection(target, client_context(target), timeout=60)
            conn.request("GET", path, headers=HEADERS)
            conn.getresponse().read1(65536)
            opened[index] = True
            conn.close()
        except (OSError, http.client.HTTPException):
            return

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return sum(opened)


# --- the proxy process, from /proc ------------------------------------------------------


def cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
